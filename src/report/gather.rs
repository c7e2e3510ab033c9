//! `Results` from what the run came to: every target built, or Nix failed, or the run was
//! cancelled. After a failure or a cancel, what failed comes from what Nix said
//! (`run::failure`), and the store and the `.drv`s are asked which targets were built all
//! the same, which failed derivation held up each, and which builds were still running.

use super::graph::Graph;
use super::known::Known;
use super::results::{
    BuildResult, BuildState, FailedDrv, Results, TargetOutcome, TargetResult, is_build, shows_nix,
};
use crate::built::{Built, Method};
use crate::error::{Error, Result};
use crate::process::CommandLine;
use crate::request::Request;
use crate::run::failure::{Kind, Seen};
use crate::run::{Attempted, Build, Failure};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// At most this many failed derivations get their logs read, one `nix-store` each.
const MAX_LOGS: usize = 20;

/// The results of a run that built every target.
pub fn built<'a>(request: &'a Request, built: &[Built], builds: &[Build]) -> Results<'a> {
    let mut targets: Vec<(usize, TargetResult)> = Vec::with_capacity(request.targets.len());
    for b in built {
        let outputs: Vec<(String, PathBuf)> = b
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.path.clone()))
            .collect();
        let links: Vec<(String, PathBuf)> = b
            .outputs
            .iter()
            .filter_map(|o| Some((o.name.clone(), o.link.clone()?)))
            .collect();
        for &index in &b.targets {
            targets.push((
                index,
                TargetResult {
                    target: &request.targets[index],
                    drv: Some(b.drv_path.clone()),
                    outcome: TargetOutcome::Built {
                        outputs: outputs.clone(),
                        links: links.clone(),
                    },
                    seconds: None,
                },
            ));
        }
    }
    targets.sort_by_key(|(index, _)| *index);
    let method = built.first().map_or(Method::Realise, |b| b.method);
    let mut results = Results::new(method, targets.into_iter().map(|(_, t)| t).collect());
    let graph = (!builds.is_empty()).then(|| graph_of(&results.targets));
    let states = vec![BuildState::Built; builds.len()];
    account(&mut results, builds, &states, graph.as_ref());
    results
}

/// The results of a run that failed, or was cancelled while Nix ran. Fails only if the run
/// is cancelled meanwhile.
pub fn failed<'a>(request: &'a Request, failure: &Failure<'a>) -> Result<Results<'a>> {
    match failure {
        Failure::Nix {
            seen,
            builds,
            attempted,
            method,
            ..
        } => explain(request, seen, builds, attempted, *method, None),
        Failure::Cancelled {
            signal,
            seen,
            builds,
            attempted,
            method,
        } => explain(request, seen, builds, attempted, *method, Some(*signal)),
        // Nix succeeded, having built nothing: the one line of `error` says why.
        Failure::NoDerivation {
            error,
            attempted,
            index,
        } => {
            let targets = attempted.iter().enumerate().map(|(i, a)| {
                let kind = match i == *index {
                    true => Kind::MissingAttribute,
                    false => Kind::Cancelled,
                };
                let outcome = TargetOutcome::Failed {
                    kind,
                    causes: Vec::new(),
                };
                TargetResult {
                    seconds: Some(0.0),
                    ..target_result(a, outcome)
                }
            });
            Ok(Results {
                nix_said: vec![error.to_string()],
                ..Results::new(Method::Evaluate, targets.collect())
            })
        }
    }
}

/// The results of a run cancelled when Nix was not running: nothing was building.
pub fn cancelled(request: &Request, signal: i32) -> Results<'_> {
    let outcome = || TargetOutcome::Cancelled {
        building: Vec::new(),
    };
    Results {
        cancelled: Some(signal),
        ..Results::new(Method::Realise, each(request, outcome))
    }
}

/// The results of a run that failed for a reason of our own, `error`, once Nix had been
/// asked for the targets: each failed so.
pub fn errored<'a>(request: &'a Request, error: &Error) -> Results<'a> {
    let outcome = || TargetOutcome::Failed {
        kind: Kind::Unknown,
        causes: Vec::new(),
    };
    Results {
        nix_said: vec![error.to_string()],
        ..Results::new(Method::Realise, each(request, outcome))
    }
}

/// Every target of `request`, each with `outcome`.
fn each(request: &Request, outcome: impl Fn() -> TargetOutcome) -> Vec<TargetResult<'_>> {
    let target = |target| TargetResult {
        target,
        drv: target.drv_path.clone(),
        outcome: outcome(),
        seconds: None,
    };
    request.targets.iter().map(target).collect()
}

fn target_result<'a>(attempted: &Attempted<'a>, outcome: TargetOutcome) -> TargetResult<'a> {
    TargetResult {
        target: attempted.target,
        drv: attempted.drv.clone(),
        outcome,
        seconds: None,
    }
}

/// What failed, what was built all the same, and what was still building at a cancel.
fn explain<'a>(
    request: &'a Request,
    seen: &Seen,
    builds: &[Build],
    attempted: &[Attempted<'a>],
    method: Method,
    cancelled: Option<i32>,
) -> Result<Results<'a>> {
    // The builds' outputs tell which had not ended when Nix stopped (at a cancel, or as
    // something else failed); and a failure Nix named no derivation for is placed among them.
    let mut drvs: Vec<&Path> = attempted.iter().filter_map(|a| a.drv.as_deref()).collect();
    drvs.extend(builds.iter().map(|b| b.drv.as_path()));
    let known = Known::read(request, drvs, cancelled.is_some())?;
    let mut failed = failed_drvs(seen, &known);
    let failed_here: HashSet<&Path> = failed.iter().filter_map(|f| f.drv.as_deref()).collect();
    let state = |b: &Build| match (
        failed_here.contains(b.drv.as_path()),
        known.complete(&b.drv),
    ) {
        (true, _) => BuildState::Failed,
        (false, Some(true)) => BuildState::Built,
        (false, Some(false)) if cancelled.is_some() => BuildState::Cancelled,
        (false, Some(false)) => BuildState::Stopped,
        (false, None) => BuildState::Ended,
    };
    let states: Vec<BuildState> = builds.iter().map(state).collect();

    let transient = seen.transient().is_some();
    let graph = (!failed.is_empty() || !builds.is_empty())
        .then(|| Graph::below(attempted.iter().filter_map(|a| a.drv.as_deref())));
    // For each derivation that failed, the derivations that need it.
    let above_failed: Vec<HashSet<&Path>> = failed
        .iter()
        .map(|f| match (&graph, &f.drv) {
            (Some(graph), Some(drv)) => graph.above(drv),
            _ => HashSet::new(),
        })
        .collect();
    let running: Vec<usize> = (0..builds.len())
        .filter(|&i| states[i] == BuildState::Cancelled)
        .collect();
    let above_running: Vec<HashSet<&Path>> = running
        .iter()
        .map(|&i| match &graph {
            Some(graph) => graph.above(&builds[i].drv),
            None => HashSet::new(),
        })
        .collect();

    let mut targets: Vec<TargetResult> = Vec::with_capacity(attempted.len());
    for a in attempted {
        let outcome = match &a.drv {
            None if transient => TargetOutcome::Failed {
                kind: Kind::Transient,
                causes: Vec::new(),
            },
            None if cancelled.is_some() => TargetOutcome::Cancelled {
                building: Vec::new(),
            },
            None => TargetOutcome::Failed {
                kind: Kind::EvaluationError,
                causes: Vec::new(),
            },
            Some(drv) => {
                let building = running
                    .iter()
                    .zip(&above_running)
                    .filter(|(i, above)| builds[**i].drv == *drv || above.contains(drv.as_path()))
                    .map(|(i, _)| *i)
                    .collect();
                outcome(
                    drv,
                    &failed,
                    &above_failed,
                    seen,
                    &known,
                    cancelled,
                    building,
                )
            }
        };
        if let TargetOutcome::Failed { causes, .. } = &outcome {
            let name = a.target.describe();
            for &i in causes {
                // A target known only by its `.drv` is already named.
                let drv = failed[i].drv.as_ref().map(|d| d.display().to_string());
                if drv.as_ref() != Some(&name) && !failed[i].needed_by.contains(&name) {
                    failed[i].needed_by.push(name.clone());
                }
            }
        }
        targets.push(target_result(a, outcome));
    }

    // After a cancel the step is being stopped: what Nix quoted of a log will do.
    if request.log_lines > 0 && cancelled.is_none() {
        read_logs(request, seen, &mut failed)?;
    }
    let mut results = Results {
        failed,
        logs: request.log_lines > 0,
        cancelled,
        ..Results::new(method, targets)
    };
    let unexplained = results.targets.iter().any(|t| {
        matches!(&t.outcome, TargetOutcome::Failed { kind, causes } if causes.is_empty() && shows_nix(kind))
    });
    // Nix failed, though every target is built (a transient failure after the builds).
    let nothing_failed = results.failed.is_empty() && results.failing().next().is_none();
    if cancelled.is_none() && (unexplained || nothing_failed) {
        results.nix_said = seen.excerpt(request.log_lines);
    }
    account(&mut results, builds, &states, graph.as_ref());
    Ok(results)
}

/// The builds (each once, as `run` reports them, so that an index into `builds` is one into
/// `results.builds`), each in its state, with the targets that needed them; and each
/// target's seconds: what the builds it needed took, 0 if none ran, unknown if one's time is.
fn account(results: &mut Results, builds: &[Build], states: &[BuildState], graph: Option<&Graph>) {
    // Each target's place, by its .drv: a lookup per derivation that needs a build.
    let mut by_drv: HashMap<&Path, Vec<usize>> = HashMap::with_capacity(results.targets.len());
    for (index, target) in results.targets.iter().enumerate() {
        if let Some(drv) = &target.drv {
            by_drv.entry(drv).or_default().push(index);
        }
    }
    // Each target's seconds so far: none while no build it needed ran.
    let mut seconds_of: Vec<Option<f64>> = vec![Some(0.0); results.targets.len()];
    let mut builds_of = Vec::with_capacity(builds.len());
    for (build, &state) in builds.iter().zip(states) {
        let seconds = match state {
            // Still running when the run was cancelled: for as long as it had run then.
            BuildState::Cancelled => Some(build.so_far()),
            _ => build.took(),
        };
        // To the millisecond: what a log or a timer can tell apart anyway.
        let seconds = seconds.map(|s| s.as_millis() as f64 / 1000.0);
        let above = graph.map(|g| g.above(&build.drv)).unwrap_or_default();
        let mut needed_by: Vec<usize> = std::iter::once(build.drv.as_path())
            .chain(above)
            .filter_map(|drv| by_drv.get(drv))
            .flatten()
            .copied()
            .collect();
        needed_by.sort_unstable();
        for &index in &needed_by {
            seconds_of[index] = seconds_of[index].zip(seconds).map(|(sum, s)| sum + s);
        }
        builds_of.push(BuildResult {
            drv: build.drv.clone(),
            started: build.started,
            seconds,
            state,
            needed_by,
        });
    }
    results.builds = builds_of;
    for (target, seconds) in results.targets.iter_mut().zip(seconds_of) {
        target.seconds = seconds;
    }
}

/// The graph below the targets' `.drv`s.
fn graph_of(targets: &[TargetResult]) -> Graph {
    Graph::below(targets.iter().filter_map(|t| t.drv.as_deref()))
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

/// What became of the target whose derivation is `drv`: built all the same, or why not and
/// the failed derivations that explain it; after a cancel, with nothing failed to explain
/// it, the running builds it was waiting for.
fn outcome(
    drv: &Path,
    failed: &[FailedDrv],
    above_failed: &[HashSet<&Path>],
    seen: &Seen,
    known: &Known,
    cancelled: Option<i32>,
    building: Vec<usize>,
) -> TargetOutcome {
    let failure = |kind: Kind, causes: Vec<usize>| TargetOutcome::Failed { kind, causes };
    let which = |test: &dyn Fn(usize) -> bool| -> Vec<usize> {
        (0..failed.len()).filter(|&i| test(i)).collect()
    };
    let own = which(&|i| failed[i].drv.as_deref() == Some(drv));
    if let Some(&first) = own.first() {
        return failure(failed[first].kind.clone(), own);
    }
    let deps = which(&|i| above_failed[i].contains(drv));
    if !deps.is_empty() {
        return failure(Kind::DependencyFailed, deps);
    }
    if let Some(outputs) = known.built(drv) {
        return TargetOutcome::Built {
            outputs: outputs
                .into_iter()
                .filter_map(|o| Some((o.name, o.path?)))
                .collect(),
            links: Vec::new(),
        };
    }
    // Nix said a dependency failed, but not which (one it could not substitute).
    if seen.failed.iter().any(|f| f.drv == drv) {
        return failure(Kind::DependencyFailed, Vec::new());
    }
    let unnamed = which(&|i| failed[i].drv.is_none());
    if let Some(&first) = unnamed.first() {
        return failure(failed[first].kind.clone(), unnamed);
    }
    if cancelled.is_some() {
        return TargetOutcome::Cancelled { building };
    }
    let kind = if seen.transient().is_some() {
        Kind::Transient
    } else if !failed.is_empty() {
        Kind::Cancelled
    } else {
        Kind::Unknown
    };
    failure(kind, Vec::new())
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

fn last(lines: &[String], n: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(n)..].to_vec()
}
