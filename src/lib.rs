//! nix-buildkite-build: build one CI target from the `.drv` its pipeline recorded, falling
//! back to re-evaluating its attribute path when the garbage collector took the `.drv`.
//!
//! The flow, one module per step: `cli` arguments → `request` (checked targets) →
//! `realise` the recorded `.drv`s, or `evaluate` the attribute paths → `built` (what Nix
//! made, verified) → `stdout`. `nix` is the one place that runs Nix.

pub mod attr;
pub mod built;
pub mod cli;
pub mod drv;
pub mod error;
pub mod evaluate;
pub mod links;
pub mod nix;
pub mod realise;
pub mod request;
pub mod signals;
pub mod stdout;
pub mod store;

pub use cli::Args;
pub use error::{Error, Result};

use built::{Built, Expected};
use realise::Outcome;
use request::Request;

pub fn run(args: Args) -> Result<()> {
    stdout::check_open()?;
    let request = Request::from_args(args)?;
    let built = build(&request)?;
    stdout::print_paths(&built)
}

/// Realises the recorded `.drv`s when all are present; otherwise, or if one vanishes before
/// Nix reads it, evaluates every target.
fn build(request: &Request) -> Result<Vec<Built>> {
    let mut recorded = Vec::with_capacity(request.targets.len());
    let mut gone = Vec::new();
    for drv_path in request.targets.iter().filter_map(|t| t.drv_path.as_ref()) {
        match drv::read_outputs(drv_path)? {
            Some(outputs) => recorded.push(Expected {
                drv_path: drv_path.clone(),
                outputs,
            }),
            None => gone.push(drv_path.clone()),
        }
    }
    if recorded.len() == request.targets.len() {
        match realise::realise(request, recorded)? {
            Outcome::Built(built) => return Ok(built),
            Outcome::Vanished(drvs) => gone = drvs,
        }
    }
    for drv_path in &gone {
        re_evaluating(request, drv_path)?;
    }
    evaluate::evaluate(request)
}

/// Says that `drv_path` is gone and what will be evaluated instead, or fails if nothing can.
fn re_evaluating(request: &Request, drv_path: &std::path::Path) -> Result<()> {
    let target = request
        .targets
        .iter()
        .find(|t| t.drv_path.as_deref() == Some(drv_path));
    match target.and_then(|t| t.attr_path.as_ref()) {
        Some(attr_path) => {
            note(&format!(
                "{} is gone (garbage-collected); re-evaluating {attr_path}",
                drv_path.display()
            ));
            Ok(())
        }
        None => Err(Error::NoFallback(format!(
            "{} is gone (garbage-collected) and cannot be re-evaluated: \
             give its attribute path (--attr or -A)",
            drv_path.display()
        ))),
    }
}

/// One line on stderr, marked as ours among Nix's.
pub fn note(message: &str) {
    use std::io::Write;
    // Not `eprintln!`: a stderr whose reader went away must not stop the build.
    let _ = writeln!(std::io::stderr(), "nix-buildkite-build: {message}");
}
