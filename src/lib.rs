//! nix-buildkite-build: build CI targets from the `.drv`s their pipeline recorded, falling
//! back to re-evaluating their attribute paths when the garbage collector took a `.drv`.
//!
//! The flow, one module per step: `cli` (the command line) → `request` (checked targets,
//! from the command line or a `drvmap`) → `build`, which decides: `realise` the recorded
//! `.drv`s, or `evaluate` the attribute paths → `built` (what Nix made, verified) →
//! `stdout` (paths or JSON) or `exec`.
//!
//! Running Nix: `command` is the one place that starts a process (Nix; git for `worktree`
//! and `buildkite-agent` for `summary`); `pipes` reads Nix's output until it exits;
//! `signals` passes a cancel on to Nix. The rest: `attr` (attribute paths), `drv` (reading
//! a `.drv`), `links` (out-links), `store` (store paths), `log` (our stderr lines), `error`
//! (exit statuses).

pub mod attr;
mod build;
mod built;
mod cli;
mod collector;
mod command;
mod drv;
mod drvmap;
mod error;
mod evaluate;
mod exec;
mod failure;
mod links;
mod log;
mod pipes;
mod realise;
mod request;
mod signals;
mod stdout;
mod store;
mod summary;
mod worktree;

pub use cli::Args;
pub use error::{Error, Result};
pub use signals::die_by;

use request::{Form, Request};

/// Does what `args` ask. `stdout_closed` says that stdout was closed when we were started.
pub fn run(args: Args, stdout_closed: bool) -> Result<()> {
    if let Some(shell) = args.generate_completions {
        return stdout::write(&cli::completions(shell));
    }
    if args.generate_man {
        let page = cli::man_page().map_err(|e| Error::io("cannot render the man page", e))?;
        return stdout::write(&page);
    }
    let request = Request::from_args(args)?;
    if stdout_closed && !matches!(request.form, Form::Exec(_)) {
        return Err(stdout::closed());
    }
    let Some(built) = build::build(&request)? else {
        return Ok(());
    };
    // A cancel that came after Nix finished still cancels the step.
    if let Some(signal) = signals::received() {
        return Err(Error::Cancelled(signal));
    }
    match &request.form {
        Form::Paths => stdout::print_paths(&built),
        Form::Json => stdout::print_json(&built),
        Form::Exec(args) => exec::exec(&built, args, request.log_groups),
    }
}
