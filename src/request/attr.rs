//! Attribute paths: the `-A` syntax people type, and the Nix string literals the generated
//! expression uses, so that no name can break out of its string.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A path of attribute names from the root expression to a target. Names are byte strings:
/// Nix accepts any bytes in an attribute name, and so do we.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrPath(pub Vec<Vec<u8>>);

impl AttrPath {
    /// One name per `--attr`, taken literally.
    pub fn from_names(names: &[OsString]) -> Self {
        AttrPath(names.iter().map(|n| n.as_bytes().to_vec()).collect())
    }

    /// Parses `-A` syntax: names separated by `.`; a name or part of one in double quotes
    /// is taken literally, except that `\` there escapes the next byte (so `\"` and `\\`
    /// can be written). This is `nix-build -A` syntax extended so every name can be
    /// written. The empty string is the root itself.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let mut names = Vec::new();
        if text.is_empty() {
            return Ok(AttrPath(names));
        }
        let mut name = Vec::new();
        // Whether `name` so far was written at all (`""` writes an empty name).
        let mut written = false;
        let mut bytes = text.iter().copied();
        let error = |what: &str| {
            format!(
                "{what} in attribute path '{}'",
                String::from_utf8_lossy(text)
            )
        };
        while let Some(b) = bytes.next() {
            match b {
                b'.' => {
                    if !written {
                        return Err(error("empty attribute name (write \"\" for one)"));
                    }
                    names.push(std::mem::take(&mut name));
                    written = false;
                }
                b'"' => {
                    written = true;
                    loop {
                        match bytes.next() {
                            None => return Err(error("missing closing quote")),
                            Some(b'"') => break,
                            Some(b'\\') => match bytes.next() {
                                Some(escaped) => name.push(escaped),
                                None => return Err(error("missing closing quote")),
                            },
                            Some(b) => name.push(b),
                        }
                    }
                }
                b => {
                    written = true;
                    name.push(b);
                }
            }
        }
        if !written {
            return Err(error("empty attribute name (write \"\" for one)"));
        }
        names.push(name);
        Ok(AttrPath(names))
    }

    pub fn parse_os(text: &OsStr) -> Result<Self, String> {
        Self::parse(text.as_bytes())
    }

    /// The path in `-A` syntax; `parse` gives back exactly this path.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            if !name.is_empty() && name.iter().all(|b| is_plain(*b)) {
                out.extend_from_slice(name);
            } else {
                out.push(b'"');
                for &b in name {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
        }
        out
    }

    /// The path as a Nix list of string literals: `[ "a" "b" ]`.
    pub fn nix_list(&self) -> Vec<u8> {
        let mut out = b"[".to_vec();
        for name in &self.0 {
            out.push(b' ');
            out.extend(nix_string(name));
        }
        out.extend_from_slice(b" ]");
        out
    }
}

/// Bytes that need no quoting in `-A` syntax, chosen so rendered paths read as Nix.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-'+".contains(&b)
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(the root)");
        }
        f.write_str(&String::from_utf8_lossy(&self.render()))
    }
}

impl From<AttrPath> for OsString {
    fn from(path: AttrPath) -> Self {
        OsString::from_vec(path.render())
    }
}

/// `bytes` as a Nix string literal that evaluates to exactly `bytes`.
///
/// Nix strings end at `"`, interpolate at `${`, escape with `\`, and turn a raw CR into LF;
/// every `$` is escaped (not only those before `{`) so that no neighbouring pair can form
/// `${` or `$${`.
pub fn nix_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' | b'\\' | b'$' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(names: &[&str]) -> AttrPath {
        AttrPath(names.iter().map(|n| n.as_bytes().to_vec()).collect())
    }

    #[test]
    fn parses_nix_build_syntax() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a", &["a"]),
            ("a.b", &["a", "b"]),
            (r#"a."c.d".e"#, &["a", "c.d", "e"]),
            (r#""""#, &[""]),
            (r#"a."""#, &["a", ""]),
            (r#"x"y.z"w"#, &["xy.zw"]),
            (r#""q\"t""#, &["q\"t"]),
            (r#""b\\s""#, &["b\\s"]),
            (r"back\slash", &["back\\slash"]),
            ("${x}", &["${x}"]),
            ("sp ace", &["sp ace"]),
        ];
        for (text, names) in cases {
            assert_eq!(AttrPath::parse(text.as_bytes()), Ok(path(names)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        for text in ["a..b", ".a", "a.", ".", "\"a", "a.\"b", "\"a\\\""] {
            let err = AttrPath::parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(text), "{err} does not name {text}");
        }
    }

    #[test]
    fn renders_what_it_parses() {
        let p = path(&["a", "c.d", "", "q\"t", "b\\s", "${x}", "new\nline", "ok-1'"]);
        assert_eq!(
            String::from_utf8(p.render()).unwrap(),
            "a.\"c.d\".\"\".\"q\\\"t\".\"b\\\\s\".\"${x}\".\"new\nline\".ok-1'"
        );
        assert_eq!(AttrPath::parse(&p.render()), Ok(p));
    }

    #[test]
    fn nix_strings_escape_everything_that_could_break_out() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", r#""plain""#),
            (b"q\"uote", r#""q\"uote""#),
            (b"${inject}", r#""\${inject}""#),
            (b"$${x}", r#""\$\${x}""#),
            (b"back\\", r#""back\\""#),
            (b"cr\r\nlf\ttab", r#""cr\r\nlf\ttab""#),
        ];
        for (input, literal) in cases {
            assert_eq!(String::from_utf8(nix_string(input)).unwrap(), *literal);
        }
    }
}
