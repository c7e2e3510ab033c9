//! Out-links: the names Nix gives them, and the check that making them destroys nothing.

use crate::error::{Error, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The link Nix makes for `output` of the `index`-th target (from 0): `LINK`, `LINK-dev`,
/// `LINK-2`, `LINK-2-dev`, … as both `nix-store --add-root` and `nix-build -o` name them.
pub fn link_name(base: &Path, index: usize, output: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    if index > 0 {
        name.push(format!("-{}", index + 1));
    }
    if output != "out" {
        name.push("-");
        name.push(output);
    }
    PathBuf::from(name)
}

/// Refuses links that Nix would have to put over a file, a directory or a symlink that
/// does not point into the store, or in the store itself (Nix refuses those too, but only
/// after building), or that cannot be created at all. They share one directory (`LINK`,
/// `LINK-dev`, `LINK-2`, …), which is checked once.
pub fn check(store: &Path, links: &[PathBuf]) -> Result<()> {
    let Some(first) = links.first() else {
        return Ok(());
    };
    // Nix makes each link, or replaces one, by renaming a new link over it, in the same
    // directory.
    check_place(store, first)?;
    for link in links {
        let refuse = |why: String| refusal(link, why);
        match std::fs::symlink_metadata(link) {
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(link) {
                Ok(target) if points_into(store, &target) => {}
                Ok(target) => refuse(format!(
                    "is a symlink to {}, outside the Nix store; not replacing it \
                     (remove it or choose another --out-link)",
                    target.display()
                ))?,
                Err(e) => refuse(format!("cannot read the existing symlink: {e}"))?,
            },
            Ok(meta) => return Err(in_the_way(link, meta.is_dir())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => refuse(format!("cannot look at it: {e}"))?,
        }
    }
    Ok(())
}

/// Refuses a place where no link can be made at all: in the store, or in a directory that
/// is missing or not writable. Alone for the fallback, where which links Nix makes is only
/// known once it has evaluated (and `evaluate.nix` checks what is in their way then).
pub fn check_place(store: &Path, link: &Path) -> Result<()> {
    if link.starts_with(store) {
        return refusal(link, IN_STORE.into());
    }
    check_directory(link).or_else(|why| refusal(link, why))
}

/// The refusal for a file or directory where `link` must go.
pub fn in_the_way(link: &Path, is_dir: bool) -> Error {
    let kind = if is_dir { "directory" } else { "file" };
    Error::OutLink(format!(
        "out-link {}: a {kind} is in the way; not replacing it \
         (remove it or choose another --out-link)",
        link.display()
    ))
}

const IN_STORE: &str = "is inside the Nix store, where Nix allows no GC roots";

fn refusal(link: &Path, why: String) -> Result<()> {
    Err(Error::OutLink(format!(
        "out-link {}: {why}",
        link.display()
    )))
}

fn points_into(store: &Path, target: &Path) -> bool {
    target.starts_with(store) && target != store
}

fn check_directory(link: &Path) -> Result<(), String> {
    let dir = link.parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) => return Err(format!("its directory {}: {e}", dir.display())),
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .map_err(|e| format!("cannot create links in {}: {}", dir.display(), e.desc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_links_as_nix_does() {
        let base = Path::new("/w/result");
        assert_eq!(link_name(base, 0, "out"), Path::new("/w/result"));
        assert_eq!(link_name(base, 0, "dev"), Path::new("/w/result-dev"));
        assert_eq!(link_name(base, 1, "out"), Path::new("/w/result-2"));
        assert_eq!(link_name(base, 1, "dev"), Path::new("/w/result-2-dev"));
    }
}
