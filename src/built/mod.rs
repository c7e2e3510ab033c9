//! What Nix made: the outputs it reports, checked against what was asked before any of
//! them reaches stdout (`verify`); the out-links, named as Nix names them and checked before
//! Nix runs (`links`); and, once Nix is done, that a garbage collection did not take them
//! (`collector`) and that git ignores the links (`worktree`).

pub mod collector;
pub mod links;
pub mod worktree;

use crate::error::{Error, Result};
use crate::process::CommandLine;
use crate::store::{self, drv::Output};
use links::link_name;
use std::collections::HashMap;
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

impl Method {
    /// As `--json` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Realise => "realise",
            Method::Evaluate => "evaluate",
        }
    }
}

/// One derivation, built: the targets it stands for (indices into the request's, in order;
/// targets naming one derivation share it, as Nix builds and links it once).
#[derive(Debug)]
pub struct Built {
    pub targets: Vec<usize>,
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
    /// The targets it stands for, as `Built::targets`.
    pub targets: Vec<usize>,
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
    command: &CommandLine,
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
        unverified(format!(
            "printed over {} MiB on stdout, which is no list of paths",
            command.stdout_limit_mib()
        ))
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
    // The line that reported each output.
    let mut reported: Vec<Option<PathBuf>> = vec![None; wanted.len()];
    let mut unreported = Unreported::new(&wanted);
    let mut rest = &stdout[..];
    while !rest.is_empty() {
        let Some((i, len)) = unreported.take(store, rest) else {
            let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
            return Err(unverified(format!(
                "printed {:?}, which is not an output asked for",
                OsStr::from_bytes(line)
            )));
        };
        reported[i] = Some(PathBuf::from(OsStr::from_bytes(&rest[..len])));
        rest = &rest[len + 1..];
    }

    let mut wanted = wanted.into_iter().zip(reported);
    let mut built = Vec::with_capacity(expected.len());
    for target in expected {
        let mut outputs = Vec::with_capacity(target.outputs.len());
        for output in target.outputs {
            let Some(((_, link), Some(line))) = wanted.next() else {
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
            targets: target.targets,
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

/// The outputs not yet reported, by the line Nix prints for each: a lookup per line, so
/// that a batch of thousands costs no more per line than a single target.
struct Unreported<'a> {
    /// Exact lines, each with the outputs (indices into `wanted`) that print it, last
    /// first, so that `pop` takes them in the order asked for. A fixed-output path can be
    /// two derivations' output.
    exact: HashMap<&'a [u8], Vec<usize>>,
    /// Names of content-addressed outputs, likewise.
    named: HashMap<&'a OsStr, Vec<usize>>,
    /// The length of the longest exact line.
    longest: usize,
}

impl<'a> Unreported<'a> {
    fn new(wanted: &'a [(Line, Option<PathBuf>)]) -> Self {
        let mut unreported = Unreported {
            exact: HashMap::with_capacity(wanted.len()),
            named: HashMap::new(),
            longest: 0,
        };
        for (i, (line, _)) in wanted.iter().enumerate().rev() {
            match line {
                Line::Exact(path) => {
                    let bytes = path.as_os_str().as_bytes();
                    unreported.longest = unreported.longest.max(bytes.len());
                    unreported.exact.entry(bytes).or_default().push(i);
                }
                Line::Named(name) => unreported.named.entry(name).or_default().push(i),
            }
        }
        unreported
    }

    /// The output reported by the line at the start of `rest`, and the line's length;
    /// that output is then taken. A link's name may hold a newline, so lines are matched
    /// whole, not split first: the longest match wins, so that `LINK` never takes the start
    /// of `LINK\n…`, and an exact line wins over a name, which another line can still
    /// match.
    fn take(&mut self, store: &Path, rest: &[u8]) -> Option<(usize, usize)> {
        let ends = rest
            .iter()
            .take(self.longest + 1)
            .enumerate()
            .filter(|&(_, b)| *b == b'\n')
            .map(|(len, _)| len);
        for len in ends.rev() {
            if let Some(i) = self.exact.get_mut(&rest[..len]).and_then(Vec::pop) {
                return Some((i, len));
            }
        }
        let len = rest.iter().position(|b| *b == b'\n')?;
        let name = store_name(store, Path::new(OsStr::from_bytes(&rest[..len])))?;
        let i = self.named.get_mut(name).and_then(Vec::pop)?;
        Some((i, len))
    }
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
    // `<32-char hash>-<name>.drv`, as `request::check_drv_path` ensured.
    let name = store::name_part(drv_path.file_name().unwrap_or_default()).as_bytes();
    let name = name.strip_suffix(b".drv").unwrap_or(name);
    let mut name = OsStr::from_bytes(name).to_owned();
    if output != "out" {
        name.push("-");
        name.push(output);
    }
    name
}

/// The name part of a store path (after `<hash>-`), if `path` is one.
fn store_name<'a>(store: &Path, path: &'a Path) -> Option<&'a OsStr> {
    let name = path.file_name()?;
    store::is_store_path(store, path).then(|| store::name_part(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "/nix/store";
    const A: &str = "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-a";
    const CA: &str = "/nix/store/z12rjmfmzq4aw7ljzyhxnzjass46zy5f-a";

    fn exact(path: &str) -> (Line, Option<PathBuf>) {
        (Line::Exact(PathBuf::from(path)), None)
    }

    /// The outputs `printed` reports, in order, each with its line's length.
    fn take_all(wanted: &[(Line, Option<PathBuf>)], printed: &str) -> Option<Vec<(usize, usize)>> {
        let mut unreported = Unreported::new(wanted);
        let mut rest = printed.as_bytes();
        let mut taken = Vec::new();
        while !rest.is_empty() {
            let (i, len) = unreported.take(Path::new(STORE), rest)?;
            taken.push((i, len));
            rest = &rest[len + 1..];
        }
        Some(taken)
    }

    #[test]
    fn a_link_holding_a_newline_is_matched_whole() {
        let wanted = [exact("/w/result"), exact("/w/result\nx"), exact("/w/x")];
        assert_eq!(
            take_all(&wanted, "/w/result\nx\n/w/result\n"),
            Some(vec![(1, 11), (0, 9)])
        );
        // Longest first; `/w/result` is then left unreported, which `verify` refuses.
        assert_eq!(
            take_all(&wanted, "/w/result\nx\n/w/x\n"),
            Some(vec![(1, 11), (2, 4)])
        );
    }

    #[test]
    fn each_output_is_reported_once() {
        let wanted = [exact(A), exact("/w/b")];
        assert_eq!(take_all(&wanted, &format!("{A}\n{A}\n")), None);
        assert_eq!(take_all(&wanted, "/w/b"), None, "a line must end");
        // A path two outputs share (fixed-output) reports both, in the order asked for.
        let shared = [exact(A), exact(A)];
        assert_eq!(
            take_all(&shared, &format!("{A}\n{A}\n")),
            Some(vec![(0, A.len()), (1, A.len())])
        );
    }

    #[test]
    fn content_addressed_outputs_are_matched_by_name() {
        let named = || (Line::Named("a".into()), None);
        let wanted = [named(), exact(A)];
        // The exact line takes its own path, leaving the name for the other.
        assert_eq!(
            take_all(&wanted, &format!("{A}\n{CA}\n")),
            Some(vec![(1, A.len()), (0, CA.len())])
        );
        assert_eq!(
            take_all(&wanted, &format!("{CA}\n{A}\n")),
            Some(vec![(0, CA.len()), (1, A.len())])
        );
        let wanted = [named()];
        for other in ["/nix/store/z12rjmfmzq4aw7ljzyhxnzjass46zy5f-b", "/tmp/x-a"] {
            assert_eq!(take_all(&wanted, &format!("{other}\n")), None, "{other}");
        }
    }
}
