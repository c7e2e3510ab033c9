//! After Nix failed: what failed and why, for a person. Each derivation that failed of
//! itself, with its `.drv`, the kind of failure (`failure` reads it from Nix's messages),
//! the targets that needed it and the last lines of its build log; then each target that
//! failed for another reason. Shown on stderr, in a group that opens; under Buildkite also
//! as an annotation (`buildkite-agent annotate`); with `--json` as the array on stdout.

mod annotation;
mod json;
mod known;
mod text;

use crate::built::Method;
use crate::error::{Error, Result};
use crate::process::CommandLine;
use crate::request::{Form, Request};
use crate::run::failure::{Kind, Seen};
use crate::run::{Attempted, Failure};
use crate::store::drv::Output;
use crate::{log, store};
use known::{Known, failed_below};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Explains `failure` on stderr, in an annotation and in `--json`, then returns the error
/// the run ends with: Nix's status, passed on (or the cancel that came meanwhile).
pub fn explain(request: &Request, failure: Failure) -> Error {
    match failure {
        Failure::Nix {
            error,
            seen,
            attempted,
            method,
        } => {
            log::expand_failed(request.log_groups);
            let summary = match Summary::new(request, &seen, attempted, method) {
                Ok(summary) => summary,
                Err(cancelled) => return cancelled,
            };
            log::raw(&summary.text(request.log_groups));
            summary.publish(request).err().unwrap_or(error)
        }
        // The one line of `error` is the summary on stderr, but the annotation and `--json`
        // say it too.
        Failure::NoDerivation {
            error,
            attempted,
            index,
        } => {
            let targets = attempted
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let kind = match i == index {
                        true => Kind::MissingAttribute,
                        false => Kind::Cancelled,
                    };
                    TargetOutcome::failed(a, kind, vec![])
                })
                .collect();
            let summary = Summary {
                method: Method::Evaluate,
                failed: Vec::new(),
                targets,
                nix_said: vec![error.to_string()],
                logs: false,
            };
            summary.publish(request).err().unwrap_or(error)
        }
    }
}

/// At most this many failed derivations get their logs read, one `nix-store` each.
const MAX_LOGS: usize = 20;

/// A derivation that failed of itself, not for a dependency.
struct FailedDrv {
    /// `None` where Nix did not say which (Nix 2.34's timeouts, several builds running).
    drv: Option<PathBuf>,
    kind: Kind,
    /// The targets that needed it, as a person names them.
    needed_by: Vec<String>,
    /// What Nix quoted with the failure besides the log (a hash mismatch's hashes).
    detail: Vec<String>,
    /// The last lines of its build log; `None` where there is none to show.
    log: Option<Vec<String>>,
}

impl FailedDrv {
    fn name(&self) -> String {
        match &self.drv {
            Some(drv) => drv_name(drv),
            None => "a build (Nix did not say which)".into(),
        }
    }
}

struct TargetOutcome {
    label: Option<String>,
    name: String,
    drv: Option<PathBuf>,
    /// Its outputs, if it was built all the same; else why not, and the failed derivations
    /// (indices into `Summary::failed`) that explain it.
    outcome: std::result::Result<Vec<Output>, (Kind, Vec<usize>)>,
}

impl TargetOutcome {
    fn failed(attempted: &Attempted, kind: Kind, causes: Vec<usize>) -> Self {
        TargetOutcome {
            label: attempted.target.label.clone(),
            name: attempted.target.describe(),
            drv: attempted.drv.clone(),
            outcome: Err((kind, causes)),
        }
    }
}

struct Summary {
    method: Method,
    failed: Vec<FailedDrv>,
    targets: Vec<TargetOutcome>,
    /// What Nix said, for targets no derivation explains (an evaluation error).
    nix_said: Vec<String>,
    /// Whether build logs were asked for (`--log-lines` is not 0).
    logs: bool,
}

impl Summary {
    fn new(
        request: &Request,
        seen: &Seen,
        attempted: Vec<Attempted>,
        method: Method,
    ) -> Result<Self> {
        // The builds that started, if a failure Nix named no derivation for needs placing.
        let mut drvs: Vec<&Path> = attempted.iter().filter_map(|a| a.drv.as_deref()).collect();
        if !seen.unnamed.is_empty() {
            drvs.extend(seen.started.iter().map(PathBuf::as_path));
        }
        let known = Known::read(request, drvs)?;
        let mut failed = failed_drvs(seen, &known);

        let transient = seen.transient().is_some();
        let below = failed_below(&attempted, &failed);
        let mut shown: HashSet<&Path> = HashSet::new();
        let mut targets: Vec<TargetOutcome> = Vec::with_capacity(attempted.len());
        for a in &attempted {
            // Targets that are one derivation are built once, and shown once, as on success.
            if let Some(drv) = &a.drv
                && !shown.insert(drv)
            {
                continue;
            }
            let outcome = match &a.drv {
                None if transient => Err((Kind::Transient, Vec::new())),
                None => Err((Kind::EvaluationError, Vec::new())),
                Some(drv) => outcome(drv, &failed, seen, &known, &below),
            };
            if let Err((_, causes)) = &outcome {
                let name = a.target.describe();
                for &i in causes {
                    // A target known only by its `.drv` is already named.
                    let drv = failed[i].drv.as_ref().map(|d| d.display().to_string());
                    if drv.as_ref() != Some(&name) {
                        failed[i].needed_by.push(name.clone());
                    }
                }
            }
            targets.push(TargetOutcome {
                label: a.target.label.clone(),
                name: a.target.describe(),
                drv: a.drv.clone(),
                outcome,
            });
        }

        if request.log_lines > 0 {
            read_logs(request, seen, &mut failed)?;
        }
        let unexplained = targets.iter().any(
            |t| matches!(&t.outcome, Err((kind, causes)) if causes.is_empty() && shows_nix(kind)),
        );
        // Nix failed, though every target is built (a transient failure after the builds).
        let nothing_failed = failed.is_empty() && targets.iter().all(|t| t.outcome.is_ok());
        let nix_said = match unexplained || nothing_failed {
            true => seen.excerpt(request.log_lines),
            false => Vec::new(),
        };
        Ok(Summary {
            method,
            failed,
            targets,
            nix_said,
            logs: request.log_lines > 0,
        })
    }

    /// The line that heads the summary.
    fn title(&self) -> String {
        if self.failed.is_empty() && self.failing_targets().next().is_none() {
            return "Nix failed, though every target is built".into();
        }
        let (count, what, names): (usize, &str, Vec<String>) = if self.failed.is_empty() {
            let names = self
                .failing_targets()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>();
            (names.len(), "target", names)
        } else {
            (
                self.failed.len(),
                "derivation",
                self.failed.iter().map(FailedDrv::name).collect(),
            )
        };
        let mut shown: Vec<String> = names.iter().take(3).cloned().collect();
        if names.len() > 3 {
            shown.push("…".into());
        }
        let plural = if count == 1 { "" } else { "s" };
        format!("{count} {what}{plural} failed: {}", shown.join(", "))
    }

    fn failing_targets(&self) -> impl Iterator<Item = &TargetOutcome> {
        self.targets.iter().filter(|t| t.outcome.is_err())
    }

    /// Targets whose failure no failed derivation explains, grouped by kind.
    fn unexplained(&self) -> Vec<(&Kind, Vec<&str>)> {
        let mut groups: Vec<(&Kind, Vec<&str>)> = Vec::new();
        for target in &self.targets {
            let Err((kind, causes)) = &target.outcome else {
                continue;
            };
            if !causes.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, names)) => names.push(&target.name),
                None => groups.push((kind, vec![&target.name])),
            }
        }
        groups
    }

    /// The annotation, under Buildkite, and `--json`. A `buildkite-agent` that is missing or
    /// fails changes nothing but a warning; the error is a cancel that came meanwhile.
    fn publish(&self, request: &Request) -> Result<(), Error> {
        if let Some(context) = &request.annotation {
            annotation::annotate(request, context, self.markdown())?;
        }
        if let Form::Json = request.form {
            let mut json = self.json().to_string().into_bytes();
            json.push(b'\n');
            if let Err(e) = crate::report::stdout::write(&json) {
                if let Error::Cancelled(_) = e {
                    return Err(e);
                }
                log::warn(&e.to_string());
            }
        }
        Ok(())
    }
}

/// The derivations that failed of themselves, from what Nix said. One Nix named no
/// derivation for is placed if it can be: by the output Nix named (2.3's hash mismatch names
/// where the output would be, had it its wrong hash: a path with the output's name), else
/// as the one build that started and neither finished nor failed otherwise.
fn failed_drvs(seen: &Seen, known: &Known) -> Vec<FailedDrv> {
    let failed = |drv: Option<PathBuf>, kind: &Kind, quoted: &[String]| FailedDrv {
        drv,
        kind: kind.clone(),
        needed_by: Vec::new(),
        detail: match kind {
            Kind::HashMismatch => quoted.to_vec(),
            _ => Vec::new(),
        },
        log: None,
    };
    let mut all: Vec<FailedDrv> = seen
        .failed
        .iter()
        .filter(|f| f.kind != Kind::DependencyFailed)
        .map(|f| failed(Some(f.drv.clone()), &f.kind, &f.quoted))
        .collect();
    for unnamed in &seen.unnamed {
        let drv = match &unnamed.output {
            Some(output) => known.named(output),
            None => {
                let unexplained: Vec<&PathBuf> = seen
                    .started
                    .iter()
                    .filter(|d| {
                        !seen.failed.iter().any(|f| &f.drv == *d) && known.built(d).is_none()
                    })
                    .collect();
                match unexplained[..] {
                    [one] => Some(one.clone()),
                    _ => None,
                }
            }
        };
        let drv = drv.filter(|d| !all.iter().any(|f| f.drv.as_ref() == Some(d)));
        all.push(failed(drv, &unnamed.kind, &unnamed.quoted));
    }
    all
}

/// Why the target whose derivation is `drv` was not built, and the failed derivations that
/// explain it; or its outputs, if it was built all the same.
fn outcome(
    drv: &Path,
    failed: &[FailedDrv],
    seen: &Seen,
    known: &Known,
    below: &HashMap<PathBuf, Vec<usize>>,
) -> std::result::Result<Vec<Output>, (Kind, Vec<usize>)> {
    let which = |test: &dyn Fn(&FailedDrv) -> bool| -> Vec<usize> {
        (0..failed.len()).filter(|&i| test(&failed[i])).collect()
    };
    let own = which(&|f| f.drv.as_deref() == Some(drv));
    if let Some(&first) = own.first() {
        return Err((failed[first].kind.clone(), own));
    }
    if let Some(deps) = below.get(drv) {
        return Err((Kind::DependencyFailed, deps.clone()));
    }
    if let Some(outputs) = known.built(drv) {
        return Ok(outputs);
    }
    // Nix said a dependency failed, but not which (one it could not substitute).
    if seen.failed.iter().any(|f| f.drv == drv) {
        return Err((Kind::DependencyFailed, Vec::new()));
    }
    let unnamed = which(&|f| f.drv.is_none());
    if let Some(&first) = unnamed.first() {
        return Err((failed[first].kind.clone(), unnamed));
    }
    let kind = if seen.transient().is_some() {
        Kind::Transient
    } else if !failed.is_empty() {
        Kind::Cancelled
    } else {
        Kind::Unknown
    };
    Err((kind, Vec::new()))
}

/// Reads the build log of each failed derivation that has one, up to `MAX_LOGS`; without a
/// log file (`keep-build-log = false`), takes what Nix quoted of it, if anything.
fn read_logs(request: &Request, seen: &Seen, failed: &mut [FailedDrv]) -> Result<()> {
    let with_logs = failed
        .iter_mut()
        .filter(|f| is_build(&f.kind) && f.drv.is_some());
    for f in with_logs.take(MAX_LOGS) {
        let Some(drv) = &f.drv else { continue };
        f.log = match read_log(request, drv)? {
            Some(lines) => Some(lines),
            None => seen
                .failed
                .iter()
                .find(|s| &s.drv == drv && s.kind != Kind::HashMismatch)
                .map(|s| last(&s.quoted, request.log_lines))
                .filter(|lines| !lines.is_empty()),
        };
    }
    Ok(())
}

/// The last `lines` lines of `drv`'s build log, or `None` if Nix has none.
fn read_log(request: &Request, drv: &Path) -> Result<Option<Vec<String>>> {
    let mut command = CommandLine::new("nix-store");
    command.arg("--read-log").arg(drv);
    match command.run_for_tail(request.verbose, request.log_lines) {
        Ok((status, lines)) if status.success() => Ok(Some(lines)),
        Err(cancelled @ Error::Cancelled(_)) => Err(cancelled),
        _ => Ok(None),
    }
}

/// Whether a target's failure of this kind, with no failed derivation to explain it, is
/// explained by what Nix said last.
fn shows_nix(kind: &Kind) -> bool {
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
fn is_build(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::BuildFailed(_) | Kind::TimedOut | Kind::HashMismatch | Kind::NotDeterministic
    )
}

/// `STORE/HASH-NAME` → `NAME`.
fn store_name(path: &Path) -> &[u8] {
    store::name_part(path.file_name().unwrap_or_default()).as_bytes()
}

/// `STORE/HASH-NAME.drv` → `NAME`.
fn drv_name(drv: &Path) -> String {
    let name = store_name(drv);
    String::from_utf8_lossy(name.strip_suffix(b".drv").unwrap_or(name)).into_owned()
}

/// "The last line", "The last 25 lines".
fn last_lines(n: usize) -> String {
    match n {
        1 => "The last line".into(),
        n => format!("The last {n} lines"),
    }
}

fn lines(n: usize) -> String {
    match n {
        1 => "1 line".into(),
        n => format!("{n} lines"),
    }
}

fn last(lines: &[String], n: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(n)..].to_vec()
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
