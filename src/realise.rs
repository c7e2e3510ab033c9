//! The usual path: realise the `.drv` the pipeline recorded, evaluating nothing.

use crate::built::{self, Built, Expected, Method, Printed};
use crate::drv::Output;
use crate::error::Result;
use crate::links;
use crate::nix::NixCommand;
use crate::request::Request;
use std::path::PathBuf;

pub enum Outcome {
    Built(Vec<Built>),
    /// Nix failed and these `.drv`s are gone: the garbage collector took them after we
    /// read them. The caller re-evaluates.
    Vanished(Vec<PathBuf>),
}

/// Realises every target in one `nix-store --realise`, so Nix builds them in parallel.
/// `targets` holds each recorded `.drv` with the outputs to build.
pub fn realise(request: &Request, targets: Vec<Expected>) -> Result<Outcome> {
    if let Some(base) = &request.out_link {
        for (index, target) in targets.iter().enumerate() {
            for Output { name, .. } in &target.outputs {
                links::check(&request.store, &links::link_name(base, index, name))?;
            }
        }
    }

    let mut command = NixCommand::new("nix-store");
    command.arg("--realise");
    command.args(targets.iter().map(|t| &t.drv_path));
    if let Some(base) = &request.out_link {
        command.arg("--add-root").arg(base).arg("--indirect");
    }
    let finished = command.run(request.verbose)?;

    if !finished.status.success() {
        let vanished: Vec<PathBuf> = targets
            .iter()
            .filter(|t| !t.drv_path.exists())
            .map(|t| t.drv_path.clone())
            .collect();
        if !vanished.is_empty() {
            return Ok(Outcome::Vanished(vanished));
        }
        return Err(command.failed(finished.status));
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
    .map(Outcome::Built)
}
