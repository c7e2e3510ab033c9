//! Our lines on stderr, told apart from Nix's by their prefix, and Buildkite's log groups.
//!
//! Not `eprintln!`: it panics when stderr's reader has gone, and a lost log line must not
//! stop the build.

use std::io::Write;

/// One line of ours on stderr.
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "nix-buildkite-build: {message}");
}

pub fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "nix-buildkite-build: warning: {message}");
}

/// Starts a collapsible group in Buildkite's log (`--- title`), when groups are on.
pub fn group(on: bool, title: &str) {
    if on {
        let _ = writeln!(std::io::stderr(), "--- {title}");
    }
}

/// Opens the group that just failed, so the error is in view in Buildkite's log.
pub fn expand_failed(on: bool) {
    if on {
        let _ = writeln!(std::io::stderr(), "^^^ +++");
    }
}
