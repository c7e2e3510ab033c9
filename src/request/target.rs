//! One thing to build: a recorded `.drv`, an attribute path to evaluate, or both.

use super::attr::AttrPath;
use crate::store;
use std::path::{Path, PathBuf};

/// One thing to build: a recorded `.drv`, an attribute path to evaluate, or both.
#[derive(Clone, Debug)]
pub struct Target {
    /// The target's label in a drvmap, when it came from one.
    pub label: Option<String>,
    pub drv_path: Option<PathBuf>,
    pub attr_path: Option<AttrPath>,
}

impl Target {
    /// How to name this target to a person, on one line.
    pub fn describe(&self) -> String {
        let name = match (&self.label, &self.attr_path, &self.drv_path) {
            (Some(label), _, _) => label.clone(),
            (None, Some(attr), _) => attr.to_string(),
            (None, None, Some(drv)) => drv.display().to_string(),
            (None, None, None) => "(nothing)".into(),
        };
        crate::text::one_line(&name).into_owned()
    }
}

/// Checks the shape of a recorded `.drv` path; whether it still exists is decided later.
pub fn check_drv_path(store: &Path, drv: &Path) -> Result<(), String> {
    if !store::is_store_path(store, drv) {
        return Err(format!(
            "{} is not a path in the Nix store ({})",
            drv.display(),
            store.display()
        ));
    }
    if drv.extension().is_none_or(|e| e != "drv") {
        return Err(format!(
            "{} does not name a derivation (.drv)",
            drv.display()
        ));
    }
    Ok(())
}
