//! A clean work tree: an out-link inside a git work tree that git does not ignore would make
//! a later "is the tree clean?" check fail, so we warn once. git runs while Nix builds, so
//! the check costs no time.

use crate::log;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

pub struct Check {
    /// What `git check-ignore` printed, or `None` if git could not tell.
    git: JoinHandle<Option<Vec<u8>>>,
    links: Vec<PathBuf>,
    top: PathBuf,
}

impl Check {
    /// Starts `git check-ignore` on `links` if they lie in a git work tree. They all share
    /// one directory (`LINK`, `LINK-dev`, `LINK-2`, …). git is started from a thread: a
    /// spawn blocks its caller until git's execve is done, which would hold up Nix's start.
    pub fn start(links: Vec<PathBuf>) -> Option<Check> {
        let dir = links.first()?.parent()?.to_path_buf();
        let top = dir
            .ancestors()
            .find(|d| d.join(".git").exists())?
            .to_path_buf();
        let mut input = Vec::new();
        for link in &links {
            input.extend_from_slice(link.as_os_str().as_bytes());
            input.push(0);
        }
        let git = std::thread::spawn(move || check_ignore(&dir, &input));
        Some(Check { git, links, top })
    }

    /// Warns about the links git does not ignore. Says nothing if git could not tell.
    pub fn finish(self) {
        let Some(ignored) = self.git.join().ok().flatten() else {
            return;
        };
        let ignored: Vec<&[u8]> = ignored.split(|b| *b == 0).collect();
        let visible: Vec<String> = self
            .links
            .iter()
            .filter(|l| !ignored.contains(&l.as_os_str().as_bytes()))
            .map(|l| shown(&self.top, l))
            .collect();
        if !visible.is_empty() {
            log::warn(&format!(
                "out-link {} is in the git work tree {} and not ignored by git, so the tree \
                 is no longer clean (add it to .gitignore, or give an absolute --out-link \
                 outside the tree)",
                visible.join(", "),
                self.top.display()
            ));
        }
    }
}

/// The NUL-separated paths of `input` that git ignores, or `None` if git could not tell.
fn check_ignore(dir: &Path, input: &[u8]) -> Option<Vec<u8>> {
    let mut git = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["check-ignore", "-z", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Closing stdin (by dropping it) tells git the list is complete.
    let written = git.stdin.take()?.write_all(input);
    let mut ignored = Vec::new();
    let read = git.stdout.take()?.read_to_end(&mut ignored);
    // check-ignore exits 0 if some path is ignored, 1 if none is, 128 on error.
    let status = git.wait().ok()?.code();
    match (written, read, status) {
        (Ok(()), Ok(_), Some(0 | 1)) => Some(ignored),
        _ => None,
    }
}

fn shown(top: &Path, link: &Path) -> String {
    link.strip_prefix(top).unwrap_or(link).display().to_string()
}
