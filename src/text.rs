//! Bytes from Nix, a build log or a name, as text that is safe to show anywhere: on our
//! stderr, in a summary, an annotation, JSON or XML.

use std::borrow::Cow;

/// How much of one line is shown.
pub const LINE_SHOWN: usize = 500;
/// The most lines of a log that a summary shows (the bound of `--log-lines`).
pub const MAX_LINES_SHOWN: usize = 1000;

/// A line of Nix's, or of a build log, as text that is safe to show anywhere: terminal
/// escapes removed, bytes that are not UTF-8 and other control characters replaced.
pub fn printable(raw: &[u8]) -> String {
    let mut bytes = without_escapes(raw);
    // A line ended by CR LF (ssh's messages) ends at the CR.
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| match c {
            '\t' => c,
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// `raw` without its terminal escape sequences, as Nix prints a message where stderr is no
/// terminal; every other byte as it is.
pub fn without_escapes(raw: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b {
            i += escape_len(&raw[i..]);
            continue;
        }
        bytes.push(raw[i]);
        i += 1;
    }
    bytes
}

/// The length of the terminal escape sequence at the start of `bytes` (which starts with
/// ESC): a CSI (`ESC [ … final`), an OSC (`ESC ] … BEL` or `ESC ] … ESC \`), or ESC and
/// one more byte.
fn escape_len(bytes: &[u8]) -> usize {
    match bytes.get(1) {
        Some(b'[') => bytes[2..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
            .map_or(bytes.len(), |end| end + 3),
        Some(b']') => {
            let mut i = 2;
            while i < bytes.len() {
                match bytes[i] {
                    0x07 => return i + 1,
                    0x1b if bytes.get(i + 1) == Some(&b'\\') => return i + 2,
                    _ => i += 1,
                }
            }
            bytes.len()
        }
        Some(_) => 2,
        None => 1,
    }
}

/// `text`, cut to what one line of a summary shows.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(LINE_SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), tabs kept: a name with a
/// line break or a terminal escape in it (an attribute name, a label) cannot start a line
/// of its own, which Buildkite might read as a group header (`+++ …`).
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let escaped = text.chars().map(|c| match c {
        '\t' => c.to_string(),
        c if c.is_control() => c.escape_default().to_string(),
        c => c.to_string(),
    });
    Cow::Owned(escaped.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_stays_one_line() {
        assert_eq!(one_line("a\tb"), "a\tb");
        assert_eq!(
            one_line("a\"\n+++ b\"\r\u{1b}[31m"),
            "a\"\\n+++ b\"\\r\\u{1b}[31m"
        );
    }

    #[test]
    fn odd_bytes_are_shown_safely() {
        assert_eq!(
            printable(
                b"bad \xff\xfe bytes \x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x07 nul\x00 cr\r"
            ),
            "bad \u{fffd}\u{fffd} bytes red link\u{fffd} nul\u{fffd} cr"
        );
        let long = "x".repeat(LINE_SHOWN + 10);
        assert_eq!(shorten(&long).chars().count(), LINE_SHOWN + 1);
    }
}
