//! What the store knows of the targets once Nix has failed: each derivation's outputs and
//! which of them are valid (a target built all the same), and which failed derivations each
//! target needs.

use super::{Attempted, FailedDrv, store_name};
use crate::error::{Error, Result};
use crate::log;
use crate::process::CommandLine;
use crate::request::Request;
use crate::store::drv::{self, Output};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The outputs of some derivations, and which of them Nix has: a failed build can leave an
/// invalid output in the store, so a file there is no proof.
pub struct Known<'a> {
    outputs: HashMap<&'a Path, Vec<Output>>,
    valid: HashSet<PathBuf>,
    /// The outputs asked for (`--output`); all if empty.
    wanted: &'a [String],
}

impl<'a> Known<'a> {
    pub fn read(request: &'a Request, drvs: Vec<&'a Path>) -> Result<Self> {
        let mut outputs = HashMap::new();
        for drv in drvs {
            if !outputs.contains_key(drv)
                && let Ok(Some(outs)) = drv::read_outputs(drv)
            {
                outputs.insert(drv, outs);
            }
        }
        let paths = outputs
            .values()
            .flat_map(|outs| outs.iter().filter_map(|o| o.path.as_deref()));
        let valid = valid_paths(request, paths.collect())?;
        Ok(Known {
            outputs,
            valid,
            wanted: &request.outputs,
        })
    }

    /// The outputs of `drv` asked for, if Nix has every one.
    pub fn built(&self, drv: &Path) -> Option<Vec<Output>> {
        let outs = drv::select(self.outputs.get(drv)?.clone(), self.wanted, drv).ok()?;
        let all = outs
            .iter()
            .all(|o| o.path.as_ref().is_some_and(|p| self.valid.contains(p)));
        all.then_some(outs)
    }

    /// The one derivation with an output named as `output` is, if only one has.
    pub fn named(&self, output: &Path) -> Option<PathBuf> {
        let name = store_name(output);
        let named: Vec<&Path> = self
            .outputs
            .iter()
            .filter(|(_, outs)| {
                outs.iter()
                    .any(|o| o.path.as_deref().map(store_name) == Some(name))
            })
            .map(|(drv, _)| *drv)
            .collect();
        match named[..] {
            [one] => Some(one.to_path_buf()),
            _ => None,
        }
    }
}

/// How many paths one `nix-store --check-validity` is given: about 90 KiB of command line,
/// well under the kernel's limit (a quarter of the stack limit, 2 MiB by default).
const VALIDITY_CHUNK: usize = 1000;

/// Which of `paths` are valid in the store, a `nix-store` per `VALIDITY_CHUNK`; none, with a
/// warning, if it cannot tell.
fn valid_paths(request: &Request, paths: Vec<&Path>) -> Result<HashSet<PathBuf>> {
    let mut valid = HashSet::new();
    for chunk in paths.chunks(VALIDITY_CHUNK) {
        let mut command = CommandLine::new("nix-store");
        command
            .args(["--check-validity", "--print-invalid"])
            .args(chunk);
        match command.run(request.verbose, || (), &mut |_| {}) {
            Ok(finished) if finished.status.success() => {
                let stdout = finished.stdout.unwrap_or_default();
                let invalid: HashSet<&[u8]> = stdout.split(|b| *b == b'\n').collect();
                valid.extend(
                    chunk
                        .iter()
                        .filter(|p| !invalid.contains(p.as_os_str().as_bytes()))
                        .map(|p| p.to_path_buf()),
                );
            }
            Err(cancelled @ Error::Cancelled(_)) => return Err(cancelled),
            _ => {
                log::warn(
                    "cannot tell which targets were built all the same: nix-store \
                     --check-validity failed",
                );
                return Ok(HashSet::new());
            }
        }
    }
    Ok(valid)
}

/// For each derivation a target needs (the targets too), the failed derivations it needs,
/// directly or not, as indices into `failed`, in order. One walk down from the targets that
/// did not fail of themselves, reading each `.drv` once, then one up from each failed
/// derivation: linear in the graph, however many targets share it.
pub fn failed_below(attempted: &[Attempted], failed: &[FailedDrv]) -> HashMap<PathBuf, Vec<usize>> {
    let failed_drvs: HashSet<&Path> = failed.iter().filter_map(|f| f.drv.as_deref()).collect();
    let mut below: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    if failed_drvs.is_empty() {
        return below;
    }
    let mut needed_by: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    let mut queue: Vec<PathBuf> = attempted
        .iter()
        .filter_map(|a| a.drv.clone())
        .filter(|drv| !failed_drvs.contains(drv.as_path()))
        .collect();
    let mut read: HashSet<PathBuf> = queue.iter().cloned().collect();
    while let Some(drv) = queue.pop() {
        for input in drv::read_input_drvs(&drv).unwrap_or_default() {
            needed_by
                .entry(input.clone())
                .or_default()
                .push(drv.clone());
            if read.insert(input.clone()) {
                queue.push(input);
            }
        }
    }
    for (i, drv) in failed.iter().enumerate() {
        let Some(drv) = &drv.drv else { continue };
        let mut marked: HashSet<&Path> = HashSet::new();
        let mut up = vec![drv.as_path()];
        while let Some(next) = up.pop() {
            for parent in needed_by.get(next).into_iter().flatten() {
                if marked.insert(parent) {
                    below.entry(parent.clone()).or_default().push(i);
                    up.push(parent);
                }
            }
        }
    }
    below
}
