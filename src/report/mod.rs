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
use crate::error::{Error, Result};
use crate::log;
use crate::request::{Form, Request};
use crate::run::{Build, Failure};
use results::Results;

/// Reports what was built, in the form asked for, and in the JUnit file if asked for.
pub fn built(request: &Request, built: &[Built], builds: &[Build]) -> Result<()> {
    if request.junit.is_some() || matches!(request.form, Form::Json) {
        let results = gather::built(request, built, builds);
        if let Some(file) = &request.junit {
            junit::write(file, &results)?;
        }
        if let Form::Json = request.form {
            // Asked to stop after Nix finished: the step is cancelled, so nothing is printed.
            if let Some(signal) = crate::process::signals::received() {
                return Err(Error::Cancelled(signal));
            }
            return stdout::print_json(&json::json(&results));
        }
    }
    match &request.form {
        Form::Exec(args) => exec::exec(built, args, request.log_groups),
        _ => stdout::print_paths(built),
    }
}

/// Reports the command a `--dry-run` would have run.
pub fn dry_run(command: Vec<u8>) -> Result<()> {
    stdout::write_line(command)
}

/// Reports why the targets were not all built, and returns the error the run ends with:
/// Nix's status, passed on, or the cancel.
pub fn failed(request: &Request, failure: Box<Failure>) -> Error {
    // Where an attribute path names no derivation, the error's one line is the summary.
    let summarised = !matches!(*failure, Failure::NoDerivation { .. });
    if summarised {
        log::expand_failed(request.log_groups);
    }
    let results = match gather::failed(request, &failure) {
        Ok(results) => results,
        Err(cancelled) => return cancelled,
    };
    if summarised {
        log::raw(&text::summary(&results, request.log_groups));
    }
    let cancel = publish(request, &results);
    cancel.unwrap_or_else(|| failure.into_error())
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
