//! What Nix built, checked against what was asked before any of it reaches stdout.

use crate::command::NixCommand;
use crate::drv::Output;
use crate::error::{Error, Result};
use crate::links::link_name;
use crate::store;
use std::ffi::{OsStr, OsString};
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
                (Printed::Links, Some(link), _) => Line::Exact(link.clone()),
                (_, _, Some(path)) => Line::Exact(path.clone()),
                (_, _, None) => Line::Named(output_name(&target.drv_path, &output.name)),
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
            .filter_map(|i| Some((i, wanted[i].0.matches(store, rest)?)))
            .max_by_key(|&(_, len)| len);
        let Some((i, len)) = matched else {
            let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
            return Err(unverified(format!(
                "printed {:?}, which is not an output asked for",
                OsStr::from_bytes(line)
            )));
        };
        reported[i] = true;
        if let Line::Named(_) = wanted[i].0 {
            wanted[i].0 = Line::Exact(PathBuf::from(OsStr::from_bytes(&rest[..len])));
        }
        rest = &rest[len + 1..];
    }

    let mut wanted = wanted.into_iter().zip(reported);
    let mut built = Vec::with_capacity(expected.len());
    for target in expected {
        let mut outputs = Vec::with_capacity(target.outputs.len());
        for output in target.outputs {
            let Some(((Line::Exact(line), link), true)) = wanted.next() else {
                return Err(unverified(format!(
                    "did not report output {} of {}",
                    output.name,
                    target.drv_path.display()
                )));
            };
            let path = match &link {
                Some(link) => {
                    let expected = match &output.path {
                        Some(path) => Line::Exact(path.clone()),
                        None => Line::Named(output_name(&target.drv_path, &output.name)),
                    };
                    read_result_link(store, link, &expected).map_err(|why| {
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
    Ok(built)
}

/// What Nix must print for one output.
enum Line {
    /// Exactly this path (a link, or a store path known from the derivation).
    Exact(PathBuf),
    /// A store path with this name: a content-addressed output, whose hash is only known
    /// once built.
    Named(OsString),
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Exact(path) => write!(f, "{}", path.display()),
            Line::Named(name) => write!(f, "a store path named {}", name.to_string_lossy()),
        }
    }
}

impl Line {
    /// The length of the line at the start of `rest` if it is this one (and ends there).
    fn matches(&self, store: &Path, rest: &[u8]) -> Option<usize> {
        let len = match self {
            Line::Exact(path) => path.as_os_str().len(),
            Line::Named(_) => rest.iter().position(|b| *b == b'\n')?,
        };
        let line = Path::new(OsStr::from_bytes(rest.get(..len)?));
        let found = match self {
            Line::Exact(path) => line == path,
            Line::Named(name) => store_name(store, line) == Some(name.as_os_str()),
        };
        (found && rest.get(len) == Some(&b'\n')).then_some(len)
    }
}

/// The name Nix gives `output` of the derivation at `drv_path`: `NAME` or `NAME-OUTPUT`.
fn output_name(drv_path: &Path, output: &str) -> OsString {
    let file = drv_path.file_name().unwrap_or_default().as_bytes();
    // `<32-char hash>-<name>.drv`, as `request::check_drv_path` ensured.
    let name = file
        .get(33..file.len().saturating_sub(4))
        .unwrap_or_default();
    let mut name = OsStr::from_bytes(name).to_owned();
    if output != "out" {
        name.push("-");
        name.push(output);
    }
    name
}

/// The name part of a store path (after `<hash>-`), if `path` is one.
fn store_name<'a>(store: &Path, path: &'a Path) -> Option<&'a OsStr> {
    let name = path.file_name()?.as_bytes();
    store::is_store_path(store, path).then(|| OsStr::from_bytes(&name[33..]))
}

/// The store path `link` points to, which must be the one expected.
fn read_result_link(store: &Path, link: &Path, expected: &Line) -> Result<PathBuf, String> {
    let target = std::fs::read_link(link).map_err(|e| format!("but it cannot be read: {e}"))?;
    let mut line = target.as_os_str().as_bytes().to_vec();
    line.push(b'\n');
    match expected.matches(store, &line) {
        Some(_) => Ok(target),
        None if !store::is_store_path(store, &target) => Err(format!(
            "but it points to {}, not a store path",
            target.display()
        )),
        None => Err(format!(
            "but it points to {}, not {}",
            target.display(),
            expected
        )),
    }
}
