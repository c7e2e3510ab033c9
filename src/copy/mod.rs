//! `--copy-to STORE`: once Nix has built, and what it built is verified and rooted, the
//! closure of every output goes to each store by Nix's own copy (`nix copy --to`), so that
//! no other agent, and no developer, builds it again. A copy never fails a good build: a
//! transient failure is tried again under `--retries`, then one warning names the store and
//! the reason, and the status stays the build's (unless `--copy-required`). A cancel stops
//! the copy, and the run ends by the signal; Nix writes a path's `.narinfo` last, so a cache
//! never claims a path it does not have.

mod cache;

use crate::error::{Error, Result};
use crate::log;
use crate::process::CommandLine;
use crate::request::Request;
use crate::run::nix::{self, Finished};
use crate::run::version;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// What became of the copy to one store.
pub struct Copy {
    pub store: OsString,
    /// Why it failed, in one line; `None` once the store has every path.
    pub failed: Option<String>,
}

/// Copies the closure of `paths` to each `--copy-to` store, in turn. Fails only if the run
/// is cancelled.
pub fn copy(request: &Request, paths: &[&Path]) -> Result<Vec<Copy>> {
    let mut copies = Vec::with_capacity(request.copy_to.len());
    for store in &request.copy_to {
        // Nothing new to push costs no Nix process, where the store can tell.
        let failed = match paths.is_empty() || cache::has_all(store, paths) {
            true => None,
            false => copy_to(request, store, paths)?,
        };
        if let Some(why) = &failed {
            log::warn(&format!(
                "cannot copy to {}: {why}; the build is done, the copy is not",
                store.to_string_lossy()
            ));
        }
        copies.push(Copy {
            store: store.clone(),
            failed,
        });
    }
    Ok(copies)
}

/// The error for `--copy-required`, if a copy failed.
pub fn required(request: &Request, copies: &[Copy]) -> Result<()> {
    let failed: Vec<String> = copies
        .iter()
        .filter(|c| c.failed.is_some())
        .map(|c| c.store.to_string_lossy().into_owned())
        .collect();
    match request.copy_required && !failed.is_empty() {
        true => Err(Error::CopyFailed(format!(
            "the outputs were built but not copied to {} (--copy-required)",
            log::some_of(&failed)
        ))),
        false => Ok(()),
    }
}

/// The copy commands a `--dry-run` shows, for `paths` where they are known before building
/// (else the outputs stand for what Nix will print).
pub fn dry_run(request: &Request, paths: Option<&[&Path]>) -> Vec<Vec<u8>> {
    request
        .copy_to
        .iter()
        .map(|store| {
            let mut shown = command(request, store, paths.unwrap_or_default()).display();
            if paths.is_none() {
                shown.extend_from_slice(b" # and every output nix-build prints");
            }
            shown
        })
        .collect()
}

/// Runs the copy to `store`, again after a transient failure; why it failed, if it did.
fn copy_to(request: &Request, store: &OsStr, paths: &[&Path]) -> Result<Option<String>> {
    let command = command(request, store, paths);
    log::group(
        request.log_groups,
        &format!("Copying to {}", store.to_string_lossy()),
    );
    let attempts = nix::retrying(&command, request.retries, || {
        nix::run(&command, request, || ())
    });
    let finished: Finished = match attempts {
        Ok(finished) => finished,
        Err(cancelled @ Error::Cancelled(_)) => return Err(cancelled),
        // `nix` missing, say: the copy failed, the build did not.
        Err(e) => return Ok(Some(e.to_string())),
    };
    if let Some(signal) = finished.cancelled {
        return Err(Error::Cancelled(signal));
    }
    if finished.status.success() {
        return Ok(None);
    }
    let why = finished
        .seen
        .excerpt(1)
        .into_iter()
        .next()
        .map(|line| line.trim_start_matches("error: ").to_owned())
        .unwrap_or_else(|| format!("nix copy failed with {}", finished.status));
    Ok(Some(why))
}

/// `nix copy --to STORE PATHS…`, which Nix 2.4 and later run only with the experimental
/// feature `nix-command` on.
fn command(request: &Request, store: &OsStr, paths: &[&Path]) -> CommandLine {
    let mut command = CommandLine::new("nix");
    if version::nix_version(request.verbose) >= Some((2, 4)) {
        command.args(["--extra-experimental-features", "nix-command"]);
    }
    command.arg("copy").arg("--to").arg(store);
    // A server that does not answer must not hold the step for curl's five minutes; the
    // user's own --option, after, still decides.
    command.args(["--option", "connect-timeout", "15"]);
    command.args(&request.options);
    command.args(paths.iter().map(|p| p.as_os_str()));
    command
}
