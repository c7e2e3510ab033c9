//! Which targets need which derivations, read from the `.drv`s: one walk down from the
//! targets, reading each `.drv` once, then one up from each derivation asked about: linear
//! in the graph, however many targets share it.

use crate::store::drv;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub struct Graph {
    /// For each derivation below the targets, those that need it directly.
    needed_by: HashMap<PathBuf, Vec<PathBuf>>,
}

impl Graph {
    /// The graph below the `.drv`s of `targets`.
    pub fn below<'p>(targets: impl IntoIterator<Item = &'p Path>) -> Self {
        let mut needed_by: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        let mut queue: Vec<PathBuf> = targets.into_iter().map(Path::to_path_buf).collect();
        let mut read: HashSet<PathBuf> = queue.iter().cloned().collect();
        while let Some(drv) = queue.pop() {
            for input in drv::read_input_drvs(&drv).unwrap_or_default() {
                needed_by
                    .entry(input.clone())
                    .or_default()
                    .push(drv.clone());
                if read.insert(input.clone()) {
                    queue.push(input);
                }
            }
        }
        Graph { needed_by }
    }

    /// Every derivation that needs `drv`, directly or not; not `drv` itself.
    pub fn above(&self, drv: &Path) -> HashSet<&Path> {
        let mut marked: HashSet<&Path> = HashSet::new();
        let mut up = vec![drv];
        while let Some(next) = up.pop() {
            for parent in self.needed_by.get(next).into_iter().flatten() {
                if marked.insert(parent) {
                    up.push(parent);
                }
            }
        }
        marked
    }
}
