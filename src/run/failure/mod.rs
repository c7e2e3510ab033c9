//! What Nix said went wrong, read from its stderr as it streams past: which derivations
//! failed and how, and whether another attempt may succeed (a transient failure).
//!
//! Nix's exit status cannot tell these apart (a failed build exits 100 single-user, 1
//! through a daemon since Nix 2.4, and 1 for a lost connection too), so the kind comes from
//! Nix's messages. Their wording differs between versions; the tests below hold each
//! version's, copied from its source (`scanner`'s tests). Only the patterns are kept, never the whole log, so
//! memory stays bounded however much Nix prints.

use crate::text::{printable, shorten};
use std::collections::VecDeque;
use std::path::PathBuf;

/// Why a derivation, or a target, failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The builder failed; Nix's words for how, e.g. "failed with exit code 3".
    BuildFailed(String),
    TimedOut,
    HashMismatch,
    NotDeterministic,
    /// Something it needs failed.
    DependencyFailed,
    /// Nix would not build it here; its reason (e.g. "local builds are disabled").
    CannotBuild(String),
    /// The attribute path did not evaluate.
    EvaluationError,
    /// The attribute path names nothing, or no derivation.
    MissingAttribute,
    /// Neither built nor failed: Nix stopped first, when something else failed.
    Cancelled,
    /// Failed in a way another attempt may fix: a lost connection, a download, a busy store.
    Transient,
    /// Nix failed without saying why in words we know.
    Unknown,
}

impl Kind {
    /// The kind's name in JSON.
    pub fn slug(&self) -> &'static str {
        match self {
            Kind::BuildFailed(_) => "build-failed",
            Kind::TimedOut => "timed-out",
            Kind::HashMismatch => "hash-mismatch",
            Kind::NotDeterministic => "not-deterministic",
            Kind::DependencyFailed => "dependency-failed",
            Kind::CannotBuild(_) => "cannot-build",
            Kind::EvaluationError => "evaluation-error",
            Kind::MissingAttribute => "missing-attribute",
            Kind::Cancelled => "cancelled",
            Kind::Transient => "transient",
            Kind::Unknown => "unknown",
        }
    }

    /// The kind for a person.
    pub fn describe(&self) -> String {
        match self {
            Kind::BuildFailed(how) => format!("build failed: the builder {how}"),
            Kind::TimedOut => "timed out".into(),
            Kind::HashMismatch => "hash mismatch (fixed-output derivation)".into(),
            Kind::NotDeterministic => "not deterministic".into(),
            Kind::DependencyFailed => "a dependency failed".into(),
            Kind::CannotBuild(why) => format!("cannot be built here: {why}"),
            Kind::EvaluationError => "evaluation error".into(),
            Kind::MissingAttribute => "the attribute path names no derivation".into(),
            Kind::Cancelled => "not built: Nix stopped when something else failed".into(),
            Kind::Transient => "failed in a way another attempt may fix".into(),
            Kind::Unknown => "Nix failed".into(),
        }
    }

    /// Whether it is a build that ran and failed, which no retry may hide.
    fn is_build_failure(&self) -> bool {
        matches!(
            self,
            Kind::BuildFailed(_) | Kind::TimedOut | Kind::HashMismatch | Kind::NotDeterministic
        )
    }
}

/// One derivation that failed, as Nix reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub drv: PathBuf,
    pub kind: Kind,
    /// What Nix quoted with its error: the build log's last lines, or the hashes of a
    /// mismatch.
    pub quoted: Vec<String>,
}

/// A failure Nix named no derivation for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unnamed {
    pub kind: Kind,
    /// The output Nix named instead (2.3's hash mismatch names the output, not the `.drv`).
    pub output: Option<PathBuf>,
    pub quoted: Vec<String>,
}

/// What a run of Nix reported, kept while its stderr streams past.
#[derive(Debug, Default)]
pub struct Seen {
    /// Derivations that failed, each once, in the order Nix reported them.
    pub failed: Vec<Failed>,
    /// Failures Nix named no derivation for (2.34 says only "timed out after N seconds").
    pub unnamed: Vec<Unnamed>,
    /// Derivations Nix started to build.
    pub started: Vec<PathBuf>,
    /// The first message that says another attempt may succeed.
    transient: Option<String>,
    /// Nix's last lines, as printed (as much of each as a summary shows).
    last_lines: VecDeque<Vec<u8>>,
    /// The first lines from Nix's first `error:` on, and how many lines that is in all.
    first_error: Vec<Vec<u8>>,
    error_lines: usize,
}

impl Seen {
    /// At most `n` lines of what Nix said that explain a failure no derivation does (an
    /// evaluation error): its first error, whose message Nix 2.4+ puts first and 2.3 puts
    /// last under `--show-trace`, so its start and end if it is longer; else its last lines.
    pub fn excerpt(&self, n: usize) -> Vec<String> {
        let show = |line: &Vec<u8>| shorten(&printable(line));
        let last = |k: usize| {
            let from = self.last_lines.len().saturating_sub(k);
            self.last_lines.iter().skip(from).map(show)
        };
        if self.error_lines == 0 {
            return last(n).collect();
        }
        if self.error_lines <= n {
            return self.first_error[..self.error_lines]
                .iter()
                .map(show)
                .collect();
        }
        let head = n.div_ceil(2);
        let mut lines: Vec<String> = self.first_error[..head].iter().map(show).collect();
        if n > head {
            lines.push("…".into());
            lines.extend(last(n - head));
        }
        lines
    }

    /// Forgets the lines that start with `prefix`, which were not Nix's to show.
    pub fn forget_lines(&mut self, prefix: &[u8]) {
        self.last_lines.retain(|l| !l.starts_with(prefix));
    }

    /// Why another attempt may succeed, if it may: only when Nix reported a transient
    /// failure and no build that ran and failed.
    pub fn transient(&self) -> Option<&str> {
        let built_and_failed = self.failed.iter().any(|f| f.kind.is_build_failure())
            || self.unnamed.iter().any(|u| u.kind.is_build_failure());
        match built_and_failed {
            true => None,
            false => self.transient.as_deref(),
        }
    }
}

/// How many of Nix's last lines are kept: the most a summary shows.
const MAX_LINES: usize = crate::text::MAX_LINES_SHOWN;
/// How many derivations are remembered as failed or started.
const MAX_DRVS: usize = 10_000;

mod scanner;
pub use scanner::Scanner;
