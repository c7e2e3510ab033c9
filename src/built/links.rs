//! Out-links: the names Nix gives them, and the check, before Nix runs, that making them
//! destroys nothing. A link is judged where it really lands: its directory with every
//! symlink followed, and a link already there by what it resolves to.

use super::Expected;
use crate::error::{Error, Result};
use crate::paths;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The out-links a run that builds `expected` makes under `base`: one per output of each
/// derivation, as Nix names them.
pub fn planned(base: Option<&Path>, expected: &[Expected]) -> Vec<PathBuf> {
    let Some(base) = base else {
        return Vec::new();
    };
    let per_target = expected.iter().enumerate().map(|(index, target)| {
        let outputs = target.outputs.iter();
        outputs.map(move |o| link_name(base, index, &o.name))
    });
    per_target.flatten().collect()
}

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

/// Links already there that point into the store in a way Nix does not see (a relative
/// symlink, or one through a symlinked directory): Nix replaces an existing link only if
/// its text names a store path, and refuses these after building ("already exists"). Each
/// with the store path it resolves to.
#[must_use]
pub struct Relinks(Vec<(PathBuf, PathBuf)>);

impl Relinks {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rewrites each link as the store path it already resolves to, so that Nix replaces it
    /// as it replaces any link into the store. What it points at stays the same; like Nix, a
    /// new link is renamed over the old one, so that no reader sees none.
    pub fn apply(self) -> Result<()> {
        for (link, target) in self.0 {
            let mut temporary = link.as_os_str().to_owned();
            temporary.push(format!(".tmp-nix-buildkite-build-{}", std::process::id()));
            let temporary = PathBuf::from(temporary);
            let _ = std::fs::remove_file(&temporary);
            std::os::unix::fs::symlink(&target, &temporary)
                .and_then(|()| std::fs::rename(&temporary, &link))
                .or_else(|e| {
                    let _ = std::fs::remove_file(&temporary);
                    refusal(
                        &link,
                        format!("cannot write it as {}: {e}", target.display()),
                    )
                })?;
        }
        Ok(())
    }
}

/// Refuses links that Nix would have to put over a file, a directory or a symlink that
/// does not lead into the store, or in the store itself (Nix refuses those too, but only
/// after building), or that cannot be created at all. They share one directory (`LINK`,
/// `LINK-dev`, `LINK-2`, …), which is checked once.
pub fn check(store: &Path, links: &[PathBuf]) -> Result<Relinks> {
    let Some(first) = links.first() else {
        return Ok(Relinks(Vec::new()));
    };
    // Nix makes each link, or replaces one, by renaming a new link over it, in the same
    // directory.
    let dir = check_place(store, first)?;
    let mut relinks = Vec::new();
    for link in links {
        let refuse = |why: String| refusal(link, why);
        match std::fs::symlink_metadata(link) {
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::read_link(link) {
                Ok(target) => match leads(store, &dir, link, &target) {
                    Leads::AsNixSees => {}
                    Leads::IntoTheStore(resolved) => relinks.push((link.clone(), resolved)),
                    Leads::Elsewhere => refuse(format!(
                        "is a symlink to {}, outside the Nix store; not replacing it \
                         (remove it or choose another --out-link)",
                        target.display()
                    ))?,
                },
                Err(e) => refuse(format!("cannot read the existing symlink: {e}"))?,
            },
            Ok(meta) => return Err(in_the_way(link, meta.is_dir())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => refuse(format!("cannot look at it: {e}"))?,
        }
    }
    Ok(Relinks(relinks))
}

/// Refuses a place where no link can be made at all: in the store, reached directly or
/// through a symlink, or in a directory that is missing or not writable. Returns the
/// directory, with every symlink followed. Alone for the fallback, where which links Nix
/// makes is known only once it has evaluated.
pub fn check_place(store: &Path, link: &Path) -> Result<PathBuf> {
    if link.starts_with(store) {
        return Err(refusal_error(link, IN_STORE.into()));
    }
    let dir = link.parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return refusal(link, format!("{} is not a directory", dir.display())),
        Err(e) => return refusal(link, format!("its directory {}: {e}", dir.display())),
    }
    let real = std::fs::canonicalize(dir)
        .or_else(|e| refusal(link, format!("cannot resolve its directory: {e}")))?;
    if real.starts_with(store) || real.starts_with(real_store(store)) {
        return refusal(
            link,
            format!(
                "its directory {} is {}, inside the Nix store, where Nix allows no GC roots",
                dir.display(),
                real.display()
            ),
        );
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).or_else(|e| {
        refusal(
            link,
            format!("cannot create links in {}: {}", dir.display(), e.desc()),
        )
    })?;
    Ok(real)
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

fn refusal<T>(link: &Path, why: String) -> Result<T> {
    Err(refusal_error(link, why))
}

fn refusal_error(link: &Path, why: String) -> Error {
    Error::OutLink(format!("out-link {}: {why}", link.display()))
}

/// Where an existing symlink leads.
enum Leads {
    /// Into the store, as Nix sees it: its text is a path in the store. Nix replaces it.
    AsNixSees,
    /// Into the store, to this path, by a way Nix does not see: Nix would refuse it.
    IntoTheStore(PathBuf),
    Elsewhere,
}

/// Where the symlink `link`, in the directory `dir` (symlinks followed), whose text is
/// `target`, leads. Nix replaces a symlink only if its text is a path in the store, whether
/// or not that path is there (a collected one, say).
fn leads(store: &Path, dir: &Path, link: &Path, target: &Path) -> Leads {
    if target.starts_with(store) && target != store {
        return Leads::AsNixSees;
    }
    // Resolved by the kernel, or, leading nowhere, by its text.
    let resolved =
        std::fs::canonicalize(link).unwrap_or_else(|_| paths::canonical(&dir.join(target)));
    match in_store(store, &resolved) {
        Some(path) => Leads::IntoTheStore(path),
        None => Leads::Elsewhere,
    }
}

/// `path`, a path with every symlink followed, as the store path (or a path inside one) it
/// is, written under `store` as Nix writes store paths: the store directory itself may be
/// reached through a symlink.
fn in_store(store: &Path, path: &Path) -> Option<PathBuf> {
    let inside = |root: &Path| {
        path.strip_prefix(root)
            .ok()
            .filter(|rest| !rest.as_os_str().is_empty())
            .map(|rest| store.join(rest))
    };
    inside(store).or_else(|| inside(&real_store(store)))
}

/// The store directory with every symlink followed (itself if it cannot be resolved).
fn real_store(store: &Path) -> PathBuf {
    std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf())
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

    #[test]
    fn a_path_is_in_the_store_below_it_only() {
        let store = Path::new("/nonexistent-store");
        let path = |p: &str| in_store(store, Path::new(p));
        assert_eq!(
            path("/nonexistent-store/abc-x/bin"),
            Some(PathBuf::from("/nonexistent-store/abc-x/bin"))
        );
        assert_eq!(path("/nonexistent-store"), None);
        assert_eq!(path("/nonexistent-storex/abc"), None);
    }
}
