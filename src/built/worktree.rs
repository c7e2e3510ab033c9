//! A clean work tree: an out-link inside a git work tree that git does not ignore would make
//! a later "is the tree clean?" check fail, so we warn once. On the usual path git is
//! started once Nix has been, from our one thread, and runs while Nix builds, so the check
//! costs no wall time.

use crate::log;
use crate::process;
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Check {
    git: Child,
    links: Vec<PathBuf>,
    top: PathBuf,
}

impl Check {
    /// Starts `git check-ignore` on `links` if they lie in a git work tree (`None` if not, or
    /// if git cannot be started). They all share one directory (`LINK`, `LINK-dev`,
    /// `LINK-2`, …). Starting git waits for its exec, about a millisecond: call this once
    /// Nix runs, not before.
    pub fn start(links: Vec<PathBuf>) -> Option<Check> {
        let dir = links.first()?.parent()?;
        let top = dir
            .ancestors()
            .find(|d| d.join(".git").exists())?
            .to_path_buf();
        let git = process::spawn(
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["check-ignore", "-z", "--stdin"])
                .stdin(listing(&links)?)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .ok()?;
        Some(Check { git, links, top })
    }

    /// Warns about the links git does not ignore. Says nothing if git could not tell.
    pub fn finish(self) {
        let Some(ignored) = ignored(self.git) else {
            return;
        };
        let ignored: HashSet<&[u8]> = ignored.split(|b| *b == 0).collect();
        let visible: Vec<String> = self
            .links
            .iter()
            .filter(|l| !ignored.contains(l.as_os_str().as_bytes()))
            .map(|l| shown(&self.top, l))
            .collect();
        if !visible.is_empty() {
            log::warn(&format!(
                "out-link {} is in the git work tree {} and not ignored by git, so the tree \
                 is no longer clean (add it to .gitignore, or give an absolute --out-link \
                 outside the tree)",
                log::some_of(&visible),
                self.top.display()
            ));
        }
    }
}

/// `links` NUL-separated, for git's stdin, which can then print its answer into its pipe
/// while we wait for Nix. `None` if it cannot be made.
fn listing(links: &[PathBuf]) -> Option<File> {
    let mut text = Vec::new();
    for link in links {
        text.extend_from_slice(link.as_os_str().as_bytes());
        text.push(0);
    }
    process::file_holding(&text).ok()
}

/// The NUL-separated links that git ignores, or `None` if git could not tell.
fn ignored(mut git: Child) -> Option<Vec<u8>> {
    let mut ignored = Vec::new();
    let read = git.stdout.take()?.read_to_end(&mut ignored);
    // check-ignore exits 0 if some path is ignored, 1 if none is, 128 on error.
    match (read, git.wait().map(|status| status.code())) {
        (Ok(_), Ok(Some(0 | 1))) => Some(ignored),
        _ => None,
    }
}

fn shown(top: &Path, link: &Path) -> String {
    link.strip_prefix(top).unwrap_or(link).display().to_string()
}
