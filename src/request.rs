//! What the command line asks for, checked and made absolute before anything runs.

use crate::attr::AttrPath;
use crate::cli::Args;
use crate::error::{Error, Result};
use crate::store;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// One thing to build: a recorded `.drv`, an attribute path to evaluate, or both.
#[derive(Clone, Debug)]
pub struct Target {
    pub drv_path: Option<PathBuf>,
    pub attr_path: Option<AttrPath>,
}

impl Target {
    /// How to name this target to a person.
    pub fn describe(&self) -> String {
        match (&self.attr_path, &self.drv_path) {
            (Some(attr), _) => attr.to_string(),
            (None, Some(drv)) => drv.display().to_string(),
            (None, None) => "(nothing)".into(),
        }
    }
}

#[derive(Debug)]
pub struct Request {
    pub targets: Vec<Target>,
    /// Absolute and normalised as Nix normalises it; `None` for `--no-out-link`.
    pub out_link: Option<PathBuf>,
    /// The expression root, absolute.
    pub root: PathBuf,
    /// `--arg`/`--argstr` for the root function, as nix-build takes them.
    pub root_args: Vec<OsString>,
    pub verbose: bool,
    pub store: PathBuf,
}

impl Request {
    pub fn from_args(args: Args) -> Result<Self> {
        let store = store::store_dir();
        let attr_path = match (&args.attr_path, args.attr.is_empty()) {
            (Some(text), _) => Some(AttrPath::parse_os(text).map_err(Error::Usage)?),
            (None, false) => Some(AttrPath::from_names(&args.attr)),
            (None, true) => None,
        };
        if let Some(drv) = &args.drv_path {
            check_drv_path(&store, drv)?;
        }
        if args.drv_path.is_none() && attr_path.is_none() {
            return Err(Error::Usage(
                "nothing to build: give --drv-path, an attribute path (--attr or -A), or both"
                    .into(),
            ));
        }
        let mut root_args = Vec::new();
        for (flag, values) in [("--arg", &args.arg), ("--argstr", &args.argstr)] {
            for pair in values.chunks(2) {
                root_args.push(flag.into());
                root_args.extend(pair.iter().cloned());
            }
        }
        Ok(Request {
            targets: vec![Target {
                drv_path: args.drv_path,
                attr_path,
            }],
            out_link: match args.no_out_link {
                true => None,
                false => Some(absolute(&args.out_link)?),
            },
            root: absolute(&args.file)?,
            root_args,
            verbose: args.verbose,
            store,
        })
    }
}

/// Checks the shape of a recorded `.drv` path; whether it still exists is decided later.
fn check_drv_path(store: &Path, drv: &Path) -> Result<()> {
    if !store::is_store_path(store, drv) {
        return Err(Error::Usage(format!(
            "--drv-path {} is not a path in the Nix store ({})",
            drv.display(),
            store.display()
        )));
    }
    if drv.extension().is_none_or(|e| e != "drv") {
        return Err(Error::Usage(format!(
            "--drv-path {} does not name a derivation (.drv)",
            drv.display()
        )));
    }
    Ok(())
}

/// `path` made absolute against the working directory, with `.` and `..` resolved without
/// following symlinks, as Nix's `absPath` does, so the link we expect is the link Nix makes.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot find the working directory", e))?;
        cwd.join(path)
    };
    let mut normal = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::ParentDir => {
                normal.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(normal)
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
