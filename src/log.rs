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
    let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
}
