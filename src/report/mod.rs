//! What a run comes to, for whoever started it: the store paths on stdout (or `--json`), or
//! the built program run in our place (`exec`); when Nix failed, what failed and why, on
//! stderr, as a Buildkite annotation and in `--json` (`summary`).

mod exec;
pub mod stdout;
mod summary;

use crate::built::Built;
use crate::error::{Error, Result};
use crate::request::{Form, Request};
use crate::run::Failure;

/// Reports what was built, in the form asked for.
pub fn built(request: &Request, built: &[Built]) -> Result<()> {
    match &request.form {
        Form::Paths => stdout::print_paths(built),
        Form::Json => stdout::print_json(built),
        Form::Exec(args) => exec::exec(built, args, request.log_groups),
    }
}

/// Reports the command a `--dry-run` would have run.
pub fn dry_run(command: Vec<u8>) -> Result<()> {
    stdout::write_line(command)
}

/// Reports why the targets were not built, and returns the error the run ends with.
pub fn failed(request: &Request, failure: Box<Failure>) -> Error {
    summary::explain(request, *failure)
}
