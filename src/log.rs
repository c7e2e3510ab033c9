//! Our lines on stderr, told apart from Nix's by their prefix, and Buildkite's log groups.
//!
//! Not `eprintln!`: it panics when stderr's reader has gone, and a lost log line must not
//! stop the build.

use std::io::Write;

/// One line of ours on stderr.
pub fn note(message: &str) {
    line(&format!("nix-buildkite-build: {message}"));
}

pub fn warn(message: &str) {
    line(&format!("nix-buildkite-build: warning: {message}"));
}

/// `items` for a line of ours: all of a few, else the first few and how many more, so that a
/// batch of thousands does not make a line of thousands.
pub fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 5;
    if items.len() <= SHOWN {
        return items.join(", ");
    }
    format!(
        "{} and {} more",
        items[..SHOWN].join(", "),
        items.len() - SHOWN
    )
}

/// Starts a collapsible group in Buildkite's log (`--- title`), when groups are on.
pub fn group(on: bool, title: &str) {
    if on {
        line(&format!("--- {title}"));
    }
}

/// Opens the group that just failed, so the error is in view in Buildkite's log.
pub fn expand_failed(on: bool) {
    if on {
        line("^^^ +++");
    }
}

/// Writes `text`, lines of ours, in one write.
pub fn raw(text: &[u8]) {
    let _ = std::io::stderr().write_all(text);
}

/// Writes `text` and a newline in one write, so that no other writer's output lands
/// inside the line (stderr is unbuffered, and `writeln!` writes each piece by itself).
fn line(text: &str) {
    let _ = std::io::stderr().write_all(format!("{}\n", crate::text::one_line(text)).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_few_and_counts_the_rest() {
        let items = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(some_of(&items(0)), "");
        assert_eq!(some_of(&items(5)), "1, 2, 3, 4, 5");
        assert_eq!(some_of(&items(5000)), "1, 2, 3, 4, 5 and 4995 more");
    }
}
