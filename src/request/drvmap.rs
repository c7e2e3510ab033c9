//! Targets by label, from the drvmap a pipeline writes (depot's `mkDrvmap`):
//! `{ "<label>": { "drvPath": "/nix/store/….drv", "attrPath": [ "ops", "besadii" ] } }`.

use super::attr::AttrPath;
use super::target::{Target, check_drv_path};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The targets for `labels`, in the order given, each once.
pub fn targets(store: &Path, file: &Path, labels: &[String]) -> Result<Vec<Target>> {
    let text = std::fs::read(file)
        .map_err(|e| Error::Usage(format!("cannot read the drvmap {}: {e}", file.display())))?;
    let bad = |why: String| Error::Usage(format!("drvmap {}: {why}", file.display()));
    let map: serde_json::Map<String, Value> =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not a JSON object: {e}")))?;

    let mut targets: Vec<Target> = Vec::with_capacity(labels.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(labels.len());
    for label in labels {
        if !seen.insert(label) {
            continue;
        }
        let entry = map
            .get(label)
            .ok_or_else(|| bad(format!("no label {label:?}{}", suggest(&map, label))))?;
        let drv_path = entry["drvPath"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| bad(format!("{label:?} has no drvPath string")))?;
        check_drv_path(store, &drv_path).map_err(|e| bad(format!("{label:?}: drvPath {e}")))?;
        let attr_path = entry["attrPath"]
            .as_array()
            .and_then(|names| {
                names
                    .iter()
                    .map(|n| n.as_str().map(|s| s.as_bytes().to_vec()))
                    .collect::<Option<Vec<_>>>()
            })
            .map(AttrPath)
            .ok_or_else(|| bad(format!("{label:?} has no attrPath list of strings")))?;
        // No argument and no Nix string can carry a NUL byte.
        if attr_path.0.iter().any(|name| name.contains(&0)) {
            return Err(bad(format!(
                "{label:?} has an attribute name with a NUL byte"
            )));
        }
        targets.push(Target {
            label: Some(label.clone()),
            drv_path: Some(drv_path),
            attr_path: Some(attr_path),
        });
    }
    Ok(targets)
}

/// "; the closest are …", naming up to three labels most like `label`.
fn suggest(map: &serde_json::Map<String, Value>, label: &str) -> String {
    let mut scored: Vec<(f64, &String)> = map
        .keys()
        .map(|known| (strsim::jaro_winkler(label, known), known))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let closest: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, known)| format!("{known:?}"))
        .collect();
    if closest.is_empty() {
        "; the drvmap is empty".into()
    } else {
        format!("; the closest are {}", closest.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_labels_first() {
        let map: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"//ops/besadii": {}, "//ops/besadii-test": {}, "//tools/foo": {}, "//web/x": {}}"#,
        )
        .unwrap();
        let suggestion = suggest(&map, "//ops/besadi");
        assert!(
            suggestion.starts_with(r#"; the closest are "//ops/besadii", "//ops/besadii-test", "#),
            "{suggestion}"
        );
        assert_eq!(
            suggestion.matches('"').count(),
            6,
            "three labels: {suggestion}"
        );
        let empty = serde_json::Map::new();
        assert_eq!(suggest(&empty, "x"), "; the drvmap is empty");
    }
}
