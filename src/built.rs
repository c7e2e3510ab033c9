//! What Nix built, checked against what was asked before any of it reaches stdout.

use crate::drv::Output;
use crate::error::{Error, Result};
use crate::links::link_name;
use crate::nix::NixCommand;
use crate::store;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The recorded `.drv` was realised; nothing was evaluated.
    Realise,
    /// The attribute path was evaluated and built.
    Evaluate,
}

/// One target, built.
#[derive(Debug)]
pub struct Built {
    pub label: Option<String>,
    pub drv_path: PathBuf,
    pub method: Method,
    pub outputs: Vec<BuiltOutput>,
}

#[derive(Debug)]
pub struct BuiltOutput {
    pub name: String,
    pub path: PathBuf,
    pub link: Option<PathBuf>,
}

/// What one target should produce: the outputs asked for, with the paths the derivation
/// gives them.
pub struct Expected {
    pub label: Option<String>,
    pub drv_path: PathBuf,
    pub outputs: Vec<Output>,
}

impl Expected {
    /// How to name this target to a person.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(label) => label.clone(),
            None => self.drv_path.display().to_string(),
        }
    }
}

/// What a Nix command prints on stdout per output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// The out-link's path (`nix-store --realise --add-root`).
    Links,
    /// The output's store path.
    StorePaths,
}

/// Checks that Nix reported exactly the outputs expected, once each, and that every
/// out-link points at its output; returns them in the order asked for. Whatever else
/// Nix printed is refused: nothing reaches stdout that was not checked here.
pub fn verify(
    command: &NixCommand,
    stdout: Option<Vec<u8>>,
    printed: Printed,
    store: &Path,
    out_link: Option<&Path>,
    expected: Vec<Expected>,
    method: Method,
) -> Result<Vec<Built>> {
    let program = command.program();
    let unverified = |why: String| Error::Unverified(format!("{program} {why}; printing nothing"));
    let stdout = stdout.ok_or_else(|| {
        unverified("printed over 1 MiB on stdout, which is no list of paths".into())
    })?;

    // What Nix should print for each output, in the order we will print them.
    let mut wanted = Vec::new();
    for (index, target) in expected.iter().enumerate() {
        for output in &target.outputs {
            let link = out_link.map(|base| link_name(base, index, &output.name));
            let line = match (printed, &link, &output.path) {
                (Printed::Links, Some(link), _) => link.clone(),
                (Printed::StorePaths, _, Some(path)) => path.clone(),
                _ => {
                    return Err(unverified(format!(
                        "built output {} of {}, whose path is only known from an out-link",
                        output.name,
                        target.drv_path.display()
                    )));
                }
            };
            wanted.push((line, link));
        }
    }
    let mut reported = vec![false; wanted.len()];
    let mut rest = &stdout[..];
    while !rest.is_empty() {
        // A link's name may hold a newline, so lines are matched whole, not split first;
        // the longest match wins so that `LINK` never takes the start of `LINK\n…`.
        let matched = (0..wanted.len())
            .filter(|&i| !reported[i])
            .filter(|&i| {
                let line = wanted[i].0.as_os_str().as_bytes();
                rest.starts_with(line) && rest.get(line.len()) == Some(&b'\n')
            })
            .max_by_key(|&i| wanted[i].0.as_os_str().len());
        let Some(i) = matched else {
            let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
            return Err(unverified(format!(
                "printed {:?}, which is not an output asked for",
                OsStr::from_bytes(line)
            )));
        };
        reported[i] = true;
        rest = &rest[wanted[i].0.as_os_str().len() + 1..];
    }

    let mut wanted = wanted.into_iter().zip(reported);
    let mut built = Vec::with_capacity(expected.len());
    for target in expected {
        let mut outputs = Vec::with_capacity(target.outputs.len());
        for output in target.outputs {
            let Some(((line, link), true)) = wanted.next() else {
                return Err(unverified(format!(
                    "did not report output {} of {}",
                    output.name,
                    target.drv_path.display()
                )));
            };
            let path = match &link {
                Some(link) => {
                    read_result_link(store, link, output.path.as_deref()).map_err(|why| {
                        unverified(format!("made out-link {}, {why}", link.display()))
                    })?
                }
                None => line,
            };
            outputs.push(BuiltOutput {
                name: output.name,
                path,
                link,
            });
        }
        built.push(Built {
            label: target.label,
            drv_path: target.drv_path,
            method,
            outputs,
        });
    }
    // A Nix that printed the right paths without building them must not pass either.
    for output in built.iter().flat_map(|b| &b.outputs) {
        if std::fs::symlink_metadata(&output.path).is_err() {
            return Err(unverified(format!(
                "reported output {} at {}, which is not in the store",
                output.name,
                output.path.display()
            )));
        }
    }
    Ok(built)
}

/// The store path `link` points to, which must be `expected` where that is known.
fn read_result_link(store: &Path, link: &Path, expected: Option<&Path>) -> Result<PathBuf, String> {
    let target = std::fs::read_link(link).map_err(|e| format!("but it cannot be read: {e}"))?;
    if !store::is_store_path(store, &target) {
        return Err(format!(
            "but it points to {}, not a store path",
            target.display()
        ));
    }
    match expected {
        Some(expected) if target != expected => Err(format!(
            "but it points to {}, not {}",
            target.display(),
            expected.display()
        )),
        _ => Ok(target),
    }
}
