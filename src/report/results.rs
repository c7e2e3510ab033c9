//! What became of each target, whatever the run came to: one account, which `--json`,
//! `--junit`, the summary on stderr and the Buildkite annotation each show their own way.

use crate::built::Method;
use crate::copy::Copy;
use crate::process::signals;
use crate::request::Target;
use crate::run::failure::Kind;
use crate::store;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct Results<'a> {
    pub method: Method,
    /// Every target, in the order given; targets naming one `.drv` each have their own.
    pub targets: Vec<TargetResult<'a>>,
    /// The derivations that failed of themselves.
    pub failed: Vec<FailedDrv>,
    /// The builds Nix ran (or started) in the run, once each, in the order they started.
    pub builds: Vec<BuildResult>,
    /// What Nix said, for failures no derivation explains (an evaluation error).
    pub nix_said: Vec<String>,
    /// Whether build logs were asked for (`--log-lines` is not 0).
    pub logs: bool,
    /// The signal that cancelled the run.
    pub cancelled: Option<i32>,
    /// The copies of the built outputs to `--copy-to` stores.
    pub copies: Vec<Copy>,
}

pub struct TargetResult<'a> {
    pub target: &'a Target,
    /// Its `.drv`: recorded, or as evaluated; `None` when evaluation failed first.
    pub drv: Option<PathBuf>,
    pub outcome: TargetOutcome,
    /// How long the builds it needed took, in seconds (0 when none ran), if Nix says.
    pub seconds: Option<f64>,
}

pub enum TargetOutcome {
    /// Built, with its outputs and out-links by output name.
    Built {
        outputs: Vec<(String, PathBuf)>,
        links: Vec<(String, PathBuf)>,
    },
    /// Not built, and why; the failed derivations (indices into `failed`) that explain it.
    Failed { kind: Kind, causes: Vec<usize> },
    /// Not built when the run was cancelled; the builds it needed that were running then
    /// (indices into `builds`).
    Cancelled { building: Vec<usize> },
}

/// A derivation that failed of itself, not for a dependency.
pub struct FailedDrv {
    /// `None` where Nix did not say which (Nix 2.34's timeouts, several builds running).
    pub drv: Option<PathBuf>,
    pub kind: Kind,
    /// The targets that needed it, as a person names them.
    pub needed_by: Vec<String>,
    /// What Nix quoted with the failure besides the log (a hash mismatch's hashes).
    pub detail: Vec<String>,
    /// The last lines of its build log; `None` where there is none to show.
    pub log: Option<Vec<String>>,
}

/// One build Nix ran.
pub struct BuildResult {
    pub drv: PathBuf,
    pub started: SystemTime,
    /// How long it took, or ran until the cancel; `None` where Nix does not say.
    pub seconds: Option<f64>,
    pub state: BuildState,
    /// The targets that needed it (indices into `targets`).
    pub needed_by: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BuildState {
    Built,
    Failed,
    /// Still building when the run was cancelled.
    Cancelled,
    /// Still building when Nix stopped, as something else had failed.
    Stopped,
    /// Ended, but how is not known (its outputs are only known once built).
    Ended,
}

impl BuildState {
    /// As `--json` names it, where known.
    pub fn slug(self) -> Option<&'static str> {
        match self {
            BuildState::Built => Some("built"),
            BuildState::Failed => Some("failed"),
            BuildState::Cancelled => Some("cancelled"),
            BuildState::Stopped => Some("stopped"),
            BuildState::Ended => None,
        }
    }
}

impl FailedDrv {
    pub fn name(&self) -> String {
        match &self.drv {
            Some(drv) => drv_name(drv),
            None => "a build (Nix did not say which)".into(),
        }
    }
}

impl TargetResult<'_> {
    pub fn name(&self) -> String {
        self.target.describe()
    }
}

impl<'a> Results<'a> {
    /// The results for `targets`, with nothing failed, built or copied besides.
    pub fn new(method: Method, targets: Vec<TargetResult<'a>>) -> Self {
        Results {
            method,
            targets,
            failed: Vec::new(),
            builds: Vec::new(),
            nix_said: Vec::new(),
            logs: false,
            cancelled: None,
            copies: Vec::new(),
        }
    }

    /// The builds running when the run was cancelled, each with the names of the targets
    /// that needed it.
    pub fn running(&self) -> impl Iterator<Item = (&BuildResult, Vec<String>)> {
        self.builds
            .iter()
            .filter(|b| b.state == BuildState::Cancelled)
            .map(|b| {
                let names = b.needed_by.iter().map(|&i| self.targets[i].name());
                (b, names.collect())
            })
    }

    /// The line that heads the summary of a failure or a cancel.
    pub fn title(&self) -> String {
        if let Some(signal) = self.cancelled {
            return self.cancel_line(signal);
        }
        if !self.failed_anything() {
            let stores: Vec<String> = self.failed_copies().map(|(store, _)| store).collect();
            return format!("built, but not copied to {}", crate::log::some_of(&stores));
        }
        if self.failed.is_empty() && self.failing().next().is_none() {
            return "Nix failed, though every target is built".into();
        }
        let (count, what, names): (usize, &str, Vec<String>) = if self.failed.is_empty() {
            let names: Vec<String> = self.failing().map(TargetResult::name).collect();
            (names.len(), "target", names)
        } else {
            let names = self.failed.iter().map(FailedDrv::name).collect();
            (self.failed.len(), "derivation", names)
        };
        let mut shown: Vec<String> = names.iter().take(3).cloned().collect();
        if names.len() > 3 {
            shown.push("…".into());
        }
        let plural = if count == 1 { "" } else { "s" };
        format!("{count} {what}{plural} failed: {}", shown.join(", "))
    }

    /// "cancelled while building: slow (41 s), other (3 s)".
    fn cancel_line(&self, signal: i32) -> String {
        let running: Vec<String> = self
            .running()
            .map(|(b, _)| {
                let secs = b.seconds.map_or(String::new(), |s| format!(" ({s:.0} s)"));
                format!("{}{secs}", drv_name(&b.drv))
            })
            .collect();
        let by = signals::name(signal);
        match running.is_empty() {
            true => format!("cancelled by {by} while no build was running"),
            false => format!(
                "cancelled by {by} while building: {}",
                crate::log::some_of(&running)
            ),
        }
    }

    /// Whether a target failed, or Nix did (not only a copy).
    pub fn failed_anything(&self) -> bool {
        !self.failed.is_empty() || self.failing().next().is_some() || !self.nix_said.is_empty()
    }

    /// Each store a copy failed to, and why.
    pub fn failed_copies(&self) -> impl Iterator<Item = (String, &str)> {
        self.copies.iter().filter_map(|c| {
            let why = c.failed.as_deref()?;
            Some((c.store.to_string_lossy().into_owned(), why))
        })
    }

    /// The targets that were not built.
    pub fn failing(&self) -> impl Iterator<Item = &TargetResult<'_>> {
        self.targets
            .iter()
            .filter(|t| !matches!(t.outcome, TargetOutcome::Built { .. }))
    }

    /// Targets that failed with no failed derivation to explain it, grouped by kind.
    pub fn unexplained(&self) -> Vec<(&Kind, Vec<String>)> {
        let mut groups: Vec<(&Kind, Vec<String>)> = Vec::new();
        for target in &self.targets {
            let TargetOutcome::Failed { kind, causes } = &target.outcome else {
                continue;
            };
            if !causes.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, names)) => names.push(target.name()),
                None => groups.push((kind, vec![target.name()])),
            }
        }
        groups
    }

    /// The targets that were not built when the run was cancelled.
    pub fn cancelled_targets(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| matches!(t.outcome, TargetOutcome::Cancelled { .. }))
            .map(TargetResult::name)
            .collect()
    }

    /// The names of the targets built, when others were not.
    pub fn built_all_the_same(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| matches!(t.outcome, TargetOutcome::Built { .. }))
            .map(TargetResult::name)
            .collect()
    }

    /// Why `target` was not built, in one line, for a person.
    pub fn why(&self, target: &TargetResult) -> String {
        match &target.outcome {
            TargetOutcome::Built { .. } => "built".into(),
            TargetOutcome::Failed { kind, causes } => {
                let names: Vec<String> = causes.iter().map(|&i| self.failed[i].name()).collect();
                match (kind, &names[..]) {
                    (_, []) => kind.describe(),
                    (Kind::DependencyFailed, names) => {
                        format!("{}: {}", kind.describe(), names.join(", "))
                    }
                    (_, names) => format!("{} ({})", kind.describe(), names.join(", ")),
                }
            }
            TargetOutcome::Cancelled { building } => {
                let by = self.cancelled.map_or("a signal".into(), signals::name);
                let names: Vec<String> = building
                    .iter()
                    .map(|&i| drv_name(&self.builds[i].drv))
                    .collect();
                match names.is_empty() {
                    true => format!("cancelled by {by} before it was built"),
                    false => format!("cancelled by {by} while building {}", names.join(", ")),
                }
            }
        }
    }
}

/// Whether a target's failure of this kind, with no failed derivation to explain it, is
/// explained by what Nix said last.
pub fn shows_nix(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::EvaluationError
            | Kind::MissingAttribute
            | Kind::Transient
            | Kind::Unknown
            | Kind::DependencyFailed
    )
}

/// Whether the kind is of a build that ran, which has a log.
pub fn is_build(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::BuildFailed(_) | Kind::TimedOut | Kind::HashMismatch | Kind::NotDeterministic
    )
}

/// `STORE/HASH-NAME` → `NAME`.
pub fn store_name(path: &Path) -> &[u8] {
    store::name_part(path.file_name().unwrap_or_default()).as_bytes()
}

/// `STORE/HASH-NAME.drv` → `NAME`.
pub fn drv_name(drv: &Path) -> String {
    let name = store_name(drv);
    String::from_utf8_lossy(name.strip_suffix(b".drv").unwrap_or(name)).into_owned()
}

/// "The last line", "The last 25 lines".
pub fn last_lines(n: usize) -> String {
    match n {
        1 => "The last line".into(),
        n => format!("The last {n} lines"),
    }
}

/// "1 line", "3 lines".
pub fn lines(n: usize) -> String {
    match n {
        1 => "1 line".into(),
        n => format!("{n} lines"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_derivation_by_its_name() {
        assert_eq!(
            drv_name(Path::new(
                "/nix/store/98r7a3nc957saavy3znrlfggxgjx6gdm-fails-t1.drv"
            )),
            "fails-t1"
        );
    }
}
