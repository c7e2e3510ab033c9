//! The usual path: realise the `.drv`s the pipeline recorded, evaluating nothing.

use super::{Attempted, Failure, Outcome, nix};
use crate::built::{self, Expected, Method, Printed};
use crate::error::Result;
use crate::log;
use crate::process::CommandLine;
use crate::request::Request;
use std::ffi::OsString;
use std::path::PathBuf;

pub enum Realised<'a> {
    Done(Outcome<'a>),
    /// Nix failed and these `.drv`s are gone: the garbage collector took them after we
    /// read them. The caller re-evaluates.
    Vanished(Vec<PathBuf>),
}

/// Realises every target in one `nix-store --realise`, so Nix builds them in parallel.
/// Each target holds a recorded `.drv` and the outputs to build. `started` is called once
/// Nix runs.
pub fn realise<'a>(
    request: &'a Request,
    targets: Vec<Expected>,
    started: impl FnOnce(),
) -> Result<Realised<'a>> {
    let mut command = CommandLine::new("nix-store");
    command.stdout_limit_for(targets.len()).arg("--realise");
    command.args(targets.iter().map(|t| {
        // `DRV!a,b` asks for only those outputs; without it Nix builds every output.
        let mut arg = OsString::from(&t.drv_path);
        if !request.outputs.is_empty() {
            let names: Vec<&str> = t.outputs.iter().map(|o| o.name.as_str()).collect();
            arg.push(format!("!{}", names.join(",")));
        }
        arg
    }));
    if let Some(base) = &request.out_link {
        command.arg("--add-root").arg(base).arg("--indirect");
    }
    command.args(&request.nix_options);
    if request.dry_run {
        let outputs = targets
            .iter()
            .flat_map(|t| &t.outputs)
            .map(|o| o.path.clone())
            .collect();
        return Ok(Realised::Done(Outcome::DryRun {
            command: command.display(),
            outputs,
        }));
    }

    let what: Vec<String> = request.targets.iter().map(|t| t.describe()).collect();
    log::group(
        request.log_groups,
        &format!("Realising {}", log::some_of(&what)),
    );
    let mut started = Some(started);
    let finished = nix::retrying(&command, request.retries, || {
        nix::run(&command, request, || started.take().map_or((), |f| f()))
    })?;

    let attempted = || {
        request
            .targets
            .iter()
            .map(|target| Attempted {
                target,
                drv: target.drv_path.clone(),
            })
            .collect()
    };
    if let Some(signal) = finished.cancelled {
        return Ok(Realised::Done(Outcome::Failed(Box::new(
            Failure::Cancelled {
                signal,
                seen: finished.seen,
                builds: finished.builds,
                attempted: attempted(),
                method: Method::Realise,
            },
        ))));
    }
    if !finished.status.success() {
        let vanished: Vec<PathBuf> = targets
            .iter()
            .filter(|t| !t.drv_path.exists())
            .map(|t| t.drv_path.clone())
            .collect();
        if !vanished.is_empty() {
            return Ok(Realised::Vanished(vanished));
        }
        return Ok(Realised::Done(Outcome::Failed(Box::new(Failure::Nix {
            error: command.failed(finished.status),
            seen: finished.seen,
            builds: finished.builds,
            attempted: attempted(),
            method: Method::Realise,
        }))));
    }
    let printed = match request.out_link {
        Some(_) => Printed::Links,
        None => Printed::StorePaths,
    };
    built::verify(
        &command,
        finished.stdout,
        printed,
        &request.store,
        request.out_link.as_deref(),
        targets,
        Method::Realise,
    )
    .map(|built| {
        Realised::Done(Outcome::Built {
            built,
            builds: finished.builds,
        })
    })
}
