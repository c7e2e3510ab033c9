//! What the store knows of some derivations once Nix has failed or been cancelled: their
//! outputs, and which of those Nix has (a failed build can leave an invalid output in the
//! store, so a file there is no proof).

use super::results::store_name;
use crate::error::{Error, Result};
use crate::log;
use crate::process::CommandLine;
use crate::request::Request;
use crate::store::drv::{self, Output};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Known<'a> {
    outputs: HashMap<&'a Path, Vec<Output>>,
    valid: HashSet<PathBuf>,
    /// The outputs asked for (`--output`); all if empty.
    wanted: &'a [String],
}

/// After a cancel, how long the store may take to say what is valid before we stop asking:
/// the step is being stopped.
const AFTER_CANCEL: Duration = Duration::from_secs(1);

impl<'a> Known<'a> {
    /// Reads the outputs of `drvs` and asks the store which it has. After a cancel too, but
    /// then for at most a second.
    pub fn read(request: &'a Request, drvs: Vec<&'a Path>, cancelled: bool) -> Result<Self> {
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
        let valid = valid_paths(request, paths.collect(), cancelled)?;
        Ok(Known {
            outputs,
            valid,
            wanted: &request.outputs,
        })
    }

    /// The outputs of `drv` asked for, if Nix has every one.
    pub fn built(&self, drv: &Path) -> Option<Vec<Output>> {
        let outs = drv::select(self.outputs.get(drv)?.clone(), self.wanted, drv).ok()?;
        self.all_valid(&outs).then_some(outs)
    }

    /// Whether Nix has every output of `drv` (not only those asked for); `None` if its
    /// outputs are not known (or, content-addressed, not known before they are built).
    pub fn complete(&self, drv: &Path) -> Option<bool> {
        let outputs = self.outputs.get(drv)?;
        if outputs.iter().any(|o| o.path.is_none()) {
            return None;
        }
        Some(self.all_valid(outputs))
    }

    fn all_valid(&self, outputs: &[Output]) -> bool {
        outputs
            .iter()
            .all(|o| o.path.as_ref().is_some_and(|p| self.valid.contains(p)))
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
fn valid_paths(request: &Request, paths: Vec<&Path>, cancelled: bool) -> Result<HashSet<PathBuf>> {
    let mut valid = HashSet::new();
    for chunk in paths.chunks(VALIDITY_CHUNK) {
        let mut command = CommandLine::new("nix-store");
        command
            .args(["--check-validity", "--print-invalid"])
            .args(chunk);
        if cancelled {
            command.despite_cancel().time_limit(AFTER_CANCEL);
        }
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
