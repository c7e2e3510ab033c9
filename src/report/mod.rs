//! What a run comes to, for whoever started it. Built: the store paths on stdout, or the
//! built program run in our place (`exec`). Nix failed, or the run was cancelled: what
//! failed or was stopped, and why, on stderr (`text`) and as a Buildkite annotation
//! (`annotation`). Either way, on request, `--json` on stdout and a JUnit file (`junit`),
//! all from one account of each target (`results`, made by `gather`).

mod annotation;
mod exec;
mod gather;
mod graph;
mod json;
mod junit;
mod known;
mod results;
pub mod stdout;
mod text;

use crate::built::Built;
use crate::copy::{self, Copy};
use crate::error::{Error, Result};
use crate::log;
use crate::request::{Form, Request};
use crate::run::{Build, Failure};
use results::{Results, TargetOutcome};
use std::path::{Path, PathBuf};

/// Reports what was built, and where it was copied, in the form asked for, in the JUnit
/// file if asked for, and in a Buildkite annotation (style `warning`) if a copy failed.
/// Under `--copy-required`, a failed copy fails the run, once the paths are printed, and
/// before `--exec` would run the program.
pub fn built(
    request: &Request,
    built: &[Built],
    builds: &[Build],
    copies: Vec<Copy>,
) -> Result<()> {
    let required = copy::required(request, &copies);
    let copy_failed = copies.iter().any(|c| c.failed.is_some());
    let annotate = copy_failed && request.annotation.is_some();
    if request.junit.is_some() || matches!(request.form, Form::Json) || annotate {
        let mut results = gather::built(request, built, builds);
        results.copies = copies;
        if let Some(file) = &request.junit
            && let Err(e) = junit::write(file, &results)
        {
            log::warn(&e.to_string());
        }
        if let (Some(context), true) = (&request.annotation, annotate) {
            annotation::annotate(request, context, &results)?;
        }
        if let Form::Json = request.form {
            // Asked to stop after Nix finished: the step is cancelled, so nothing is printed.
            if let Some(signal) = crate::process::signals::received() {
                return Err(Error::Cancelled(signal));
            }
            stdout::print_json(&json::json(&results))?;
            return required;
        }
    }
    match &request.form {
        Form::Exec(args) => required.and_then(|()| exec::exec(built, args, request.log_groups)),
        _ => stdout::print_paths(built).and(required),
    }
}

/// Reports the commands a `--dry-run` would have run: Nix's, then each copy, for `outputs`
/// where they are known before building.
pub fn dry_run(request: &Request, command: Vec<u8>, outputs: Option<&[PathBuf]>) -> Result<()> {
    let mut lines = command;
    let paths: Option<Vec<&Path>> = outputs.map(|o| o.iter().map(PathBuf::as_path).collect());
    for copy in copy::dry_run(request, paths.as_deref()) {
        lines.push(b'\n');
        lines.extend(copy);
    }
    stdout::write_line(lines)
}

/// Reports why the targets were not all built, and returns the error the run ends with:
/// Nix's status, passed on, or the cancel.
pub fn failed(request: &Request, failure: Box<Failure>) -> Error {
    // Where an attribute path names no derivation, the error's one line is the summary.
    let summarised = !matches!(*failure, Failure::NoDerivation { .. });
    if summarised {
        log::expand_failed(request.log_groups);
    }
    let mut results = match gather::failed(request, &failure) {
        Ok(results) => results,
        // Cancelled as the store was asked what failed: what Nix was asked for was stopped.
        Err(Error::Cancelled(signal)) => gather::cancelled(request, signal),
        Err(e) => return e,
    };
    if summarised {
        log::raw(&text::summary(&results, request.log_groups));
    }
    // What was built all the same is copied all the same.
    let built: Vec<&Path> = results
        .targets
        .iter()
        .filter_map(|t| match &t.outcome {
            TargetOutcome::Built { outputs, .. } => Some(outputs.iter().map(|(_, p)| p.as_path())),
            _ => None,
        })
        .flatten()
        .collect();
    // A cancel stops the copy; the report is still made, and the run then ends by it.
    if results.cancelled.is_none()
        && !built.is_empty()
        && let Ok(copies) = copy::copy(request, &built)
    {
        results.copies = copies;
    }
    let cancel = publish(request, &results);
    cancel.unwrap_or_else(|| failure.into_error())
}

/// Reports a cancel that came once every target was built (during the copy, say): they are
/// built, the run cancelled. Returns the cancel.
pub fn cancelled_after_build(
    request: &Request,
    built: &[Built],
    builds: &[Build],
    signal: i32,
) -> Error {
    let results = Results {
        cancelled: Some(signal),
        ..gather::built(request, built, builds)
    };
    publish(request, &results).unwrap_or(Error::Cancelled(signal))
}

/// Reports a cancel that came while Nix was not running, and returns it.
pub fn cancelled(request: &Request, signal: i32) -> Error {
    let results = gather::cancelled(request, signal);
    publish(request, &results).unwrap_or(Error::Cancelled(signal))
}

/// Reports, in the JUnit file, an error of our own that ended the run once its targets
/// were known; returns it.
pub fn errored(request: &Request, error: Error) -> Error {
    if let Some(file) = &request.junit {
        let results = gather::errored(request, &error);
        if let Err(e) = junit::write_error(file, &results, &error) {
            log::warn(&e.to_string());
        }
    }
    error
}

/// The JUnit file, `--json` and the annotation, each if asked for. None of them changes
/// the status: each that fails is a warning. Returns a cancel that came meanwhile.
fn publish(request: &Request, results: &Results) -> Option<Error> {
    if let Some(file) = &request.junit
        && let Err(e) = junit::write(file, results)
    {
        log::warn(&e.to_string());
    }
    if let Form::Json = request.form
        && let Err(e) = stdout::print_json(&json::json(results))
    {
        log::warn(&e.to_string());
    }
    if let Some(context) = &request.annotation
        && let Err(cancelled) = annotation::annotate(request, context, results)
    {
        return Some(cancelled);
    }
    crate::process::signals::received().map(Error::Cancelled)
}
