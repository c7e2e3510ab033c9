//! nix-buildkite-build: build CI targets from the `.drv`s their pipeline recorded, falling
//! back to re-evaluating their attribute paths when the garbage collector took a `.drv`.
//!
//! The flow, a module each: `cli` (the command line) → `request` (the targets, checked,
//! from the command line or a drvmap) → `run` (Nix: realise the recorded `.drv`s, or
//! evaluate the attribute paths) → `built` (what Nix made, verified) → `report` (paths,
//! JSON, the program run, or why it failed).
//!
//! Beneath them: `process` starts every process (Nix; git and buildkite-agent beside it),
//! `store` knows store paths and `.drv`s without asking Nix, `error` maps each failure to
//! its exit status (`status` is how a process ended), `log` writes our stderr lines and
//! `text` makes bytes safe to show.

mod built;
mod cli;
mod copy;
mod error;
mod log;
mod paths;
mod process;
mod report;
mod request;
mod run;
mod status;
mod store;
mod text;

pub use cli::Args;
pub use error::{Error, Result};
pub use process::signals::die_by;
pub use request::attr;

use request::{Form, Request};
use run::Outcome;
use std::path::Path;

/// Does what `args` ask. `stdout_closed` says that stdout was closed when we were started.
pub fn run(args: Args, stdout_closed: bool) -> Result<()> {
    if let Some(shell) = args.generate_completions {
        return report::stdout::write(&cli::completions(shell));
    }
    if args.generate_man {
        let page = cli::man_page().map_err(|e| Error::io("cannot render the man page", e))?;
        return report::stdout::write(&page);
    }
    let request = Request::from_args(args)?;
    if stdout_closed && !matches!(request.form, Form::Exec(_)) {
        return Err(report::stdout::closed());
    }
    let outcome = match run::build(&request) {
        Ok(outcome) => outcome,
        Err(Error::Cancelled(signal)) => return Err(report::cancelled(&request, signal)),
        Err(error) => return Err(report::errored(&request, error)),
    };
    match outcome {
        Outcome::DryRun { command, outputs } => {
            report::dry_run(&request, command, outputs.as_deref())
        }
        Outcome::Built { built, builds } => {
            // A cancel that came after Nix finished still cancels the step.
            if let Some(signal) = process::signals::received() {
                return Err(report::cancelled(&request, signal));
            }
            let outputs: Vec<&Path> = built
                .iter()
                .flat_map(|b| &b.outputs)
                .map(|o| o.path.as_path())
                .collect();
            let copies = match copy::copy(&request, &outputs) {
                Ok(copies) => copies,
                Err(Error::Cancelled(signal)) => {
                    return Err(report::cancelled_after_build(
                        &request, &built, &builds, signal,
                    ));
                }
                Err(e) => return Err(e),
            };
            report::built(&request, &built, &builds, copies).map_err(|e| match e {
                Error::Cancelled(_) | Error::CopyFailed(_) => e,
                e => report::errored(&request, e),
            })
        }
        Outcome::Failed(failure) => Err(report::failed(&request, failure)),
    }
}
