//! Paths as Nix treats them: made absolute, and `.` and `..` resolved, without following
//! symlinks (Nix's `absPath` and `canonPath`), so that the link we expect is the link Nix
//! makes.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// `path` made absolute against the working directory, then `canonical`.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(canonical(path));
    }
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot find the working directory", e))?;
    Ok(canonical(&cwd.join(path)))
}

/// An absolute `path` with `.`, `..` and repeated slashes resolved lexically.
pub fn canonical(path: &Path) -> PathBuf {
    let mut normal = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::ParentDir => {
                normal.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_resolves_dots_like_nix() {
        for (path, expected) in [
            ("/a/./b/../c", "/a/c"),
            ("/a//b/", "/a/b"),
            ("/..", "/"),
            ("/a/b/..", "/a"),
        ] {
            assert_eq!(absolute(Path::new(path)).unwrap(), Path::new(expected));
        }
    }
}
