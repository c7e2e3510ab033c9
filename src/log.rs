//! Our lines on stderr, told apart from Nix's by their prefix, and Buildkite's log groups.

/// One line of ours on stderr.
pub fn note(message: &str) {
    eprintln!("nix-buildkite-build: {message}");
}

pub fn warn(message: &str) {
    eprintln!("nix-buildkite-build: warning: {message}");
}

/// Starts a collapsible group in Buildkite's log (`--- title`), when groups are on.
pub fn group(on: bool, title: &str) {
    if on {
        eprintln!("--- {title}");
    }
}

/// Opens the group that just failed, so the error is in view in Buildkite's log.
pub fn expand_failed(on: bool) {
    if on {
        eprintln!("^^^ +++");
    }
}
