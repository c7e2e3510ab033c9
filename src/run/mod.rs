//! Running Nix, and the one decision: realise the recorded `.drv`s when every one is
//! present, evaluating nothing; otherwise, or if one vanishes before Nix reads it, evaluate
//! every target's attribute path instead, in one `nix-build`. Either way the out-links are
//! checked before Nix runs, and git is asked about them while it does (`worktree`). What
//! Nix made comes back verified (`crate::built`), or why it failed, for the report.

mod build_log;
mod evaluate;
pub mod failure;
pub mod nix;
mod realise;
pub mod version;

pub use nix::Build;

use crate::built::{Built, Expected, Method, collector, links, worktree};
use crate::error::{Error, Result};
use crate::log;
use crate::process::signals;
use crate::request::{Request, Target};
use crate::store::drv;
use failure::Seen;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What running Nix came to.
pub enum Outcome<'a> {
    /// Every target, built and verified; `builds` are those Nix ran for them.
    Built {
        built: Vec<Built>,
        builds: Vec<Build>,
    },
    /// `--dry-run`: the command that would have run, shown as a person would paste it, and
    /// the outputs it would print, where they are known before building.
    DryRun {
        command: Vec<u8>,
        outputs: Option<Vec<PathBuf>>,
    },
    Failed(Box<Failure<'a>>),
}

/// Why the targets were not all built, for the report to explain.
pub enum Failure<'a> {
    /// Nix failed: `error` passes its status on, `seen` is what it said.
    Nix {
        error: Error,
        seen: Seen,
        builds: Vec<Build>,
        attempted: Vec<Attempted<'a>>,
        method: Method,
    },
    /// The run was cancelled by `signal` while Nix ran; Nix has stopped. `builds` are those
    /// it had started.
    Cancelled {
        signal: i32,
        seen: Seen,
        builds: Vec<Build>,
        attempted: Vec<Attempted<'a>>,
        method: Method,
    },
    /// The attribute path of `attempted[index]` names nothing, or no derivation, which
    /// `error` says in one line: Nix succeeded, having built nothing.
    NoDerivation {
        error: Error,
        attempted: Vec<Attempted<'a>>,
        index: usize,
    },
}

impl Failure<'_> {
    /// The error the run ends with.
    pub fn into_error(self) -> Error {
        match self {
            Failure::Nix { error, .. } | Failure::NoDerivation { error, .. } => error,
            Failure::Cancelled { signal, .. } => Error::Cancelled(signal),
        }
    }
}

/// A target as Nix was asked to build it; its `.drv` is `None` when evaluation failed first.
pub struct Attempted<'a> {
    pub target: &'a Target,
    pub drv: Option<PathBuf>,
}

/// Builds every target of `request`. A garbage collection that runs as Nix finishes can
/// take an output Nix has just built (`collector`): then the run is not done, and Nix runs
/// once more, which builds the output again and roots it, and more often under
/// `--retries`. Never is a path printed that is not in the store.
pub fn build(request: &Request) -> Result<Outcome<'_>> {
    let mut retried = 0;
    loop {
        let (built, builds) = match build_once(request)? {
            Outcome::Built { built, builds } => (built, builds),
            other => return Ok(other),
        };
        let Some(gone) = collector::taken(built.iter().flat_map(|b| &b.outputs).map(|o| &*o.path))
        else {
            return Ok(Outcome::Built { built, builds });
        };
        if retried > request.retries {
            return Err(Error::Collected(format!(
                "{} is not in the store though Nix ran {} times: a garbage collection running \
                 at the same time took it, or Nix never built it; printing nothing",
                gone.display(),
                retried + 1
            )));
        }
        // The first time at once: the collection that took it has run by now.
        let pause = match retried {
            0 => Duration::ZERO,
            _ => nix::pause_before(retried),
        };
        retried += 1;
        log::note(&format!(
            "{} was deleted by a garbage collection as Nix finished; running Nix again \
             to build and root it{}",
            gone.display(),
            match pause.as_secs() {
                0 => String::new(),
                secs => format!(" in {secs} s"),
            }
        ));
        if let Some(signal) = signals::pause(pause) {
            return Err(Error::Cancelled(signal));
        }
    }
}

/// Builds every target of `request` once, one way or the other.
fn build_once(request: &Request) -> Result<Outcome<'_>> {
    let mut recorded: Vec<Expected> = Vec::with_capacity(request.targets.len());
    let mut gone: Vec<PathBuf> = Vec::new();
    // Each .drv's place in `recorded`, `None` if it is gone: Nix builds a .drv named twice
    // once, and links it once.
    let mut seen: HashMap<&Path, Option<usize>> = HashMap::with_capacity(request.targets.len());
    for (index, target) in request.targets.iter().enumerate() {
        let Some(drv_path) = &target.drv_path else {
            continue;
        };
        match seen.get(drv_path.as_path()) {
            Some(Some(at)) => recorded[*at].targets.push(index),
            Some(None) => {}
            None => match drv::read_outputs(drv_path)? {
                Some(outputs) => {
                    seen.insert(drv_path, Some(recorded.len()));
                    recorded.push(Expected {
                        targets: vec![index],
                        drv_path: drv_path.clone(),
                        outputs: drv::select(outputs, &request.outputs, drv_path)?,
                    });
                }
                None => {
                    seen.insert(drv_path, None);
                    gone.push(drv_path.clone());
                }
            },
        }
    }

    if gone.is_empty() && request.targets.iter().all(|t| t.drv_path.is_some()) {
        let planned = links::planned(request.out_link.as_deref(), &recorded);
        let relinks = links::check(&request.store, &planned)?;
        if !request.dry_run {
            relinks.apply()?;
        }
        // git runs while Nix builds.
        let mut git = None;
        match realise::realise(request, recorded, || git = worktree::Check::start(planned))? {
            realise::Realised::Done(Outcome::Built { built, builds }) => {
                let built = finish(built, git);
                return Ok(Outcome::Built { built, builds });
            }
            realise::Realised::Done(other) => return Ok(other),
            realise::Realised::Vanished(drvs) => gone = drvs,
        }
    } else if let Some(base) = &request.out_link {
        links::check_place(&request.store, base)?;
    }

    re_evaluating(request, &gone)?;
    let (built, builds) = match evaluate::evaluate(request)? {
        Outcome::Built { built, builds } => (built, builds),
        other => return Ok(other),
    };
    // Which links the fallback made is known only now.
    let made = built
        .iter()
        .flat_map(|b| &b.outputs)
        .filter_map(|o| o.link.clone());
    let git = worktree::Check::start(made.collect());
    let built = finish(built, git);
    Ok(Outcome::Built { built, builds })
}

fn finish(built: Vec<Built>, git: Option<worktree::Check>) -> Vec<Built> {
    if let Some(git) = git {
        git.finish();
    }
    built
}

/// Says that each `.drv` of `gone` is gone and what will be evaluated instead, or fails if
/// one cannot be.
fn re_evaluating(request: &Request, gone: &[PathBuf]) -> Result<()> {
    // The first target naming each .drv, as a .drv named twice is built once.
    let mut first: HashMap<&Path, &Target> = HashMap::with_capacity(request.targets.len());
    for target in &request.targets {
        if let Some(drv_path) = &target.drv_path {
            first.entry(drv_path).or_insert(target);
        }
    }
    for drv_path in gone {
        let attr_path = first
            .get(drv_path.as_path())
            .and_then(|t| t.attr_path.as_ref());
        let Some(attr_path) = attr_path else {
            return Err(Error::NoFallback(format!(
                "{} is gone (garbage-collected) and cannot be re-evaluated: \
                 give its attribute path (--attr or -A)",
                drv_path.display()
            )));
        };
        log::note(&format!(
            "{} is gone (garbage-collected); re-evaluating {attr_path}",
            drv_path.display()
        ));
    }
    Ok(())
}
