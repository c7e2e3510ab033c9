//! The summary as `--json`'s array on stdout.

use super::{Summary, shows_nix};
use serde_json::{Map, Value, json};
use std::path::Path;

impl Summary {
    /// `--json`, as the array on stdout: each target's status, and for a failed one why.
    pub fn json(&self) -> Value {
        let path = |p: &Path| Value::from(p.to_string_lossy());
        let failed_drv = |i: usize| {
            let f = &self.failed[i];
            let mut object = Map::new();
            if let Some(drv) = &f.drv {
                object.insert("drvPath".into(), path(drv));
            }
            object.insert("name".into(), f.name().into());
            object.insert("kind".into(), f.kind.slug().into());
            object.insert("message".into(), f.kind.describe().into());
            if !f.detail.is_empty() {
                object.insert("detail".into(), f.detail.clone().into());
            }
            object.insert("log".into(), f.log.clone().into());
            Value::Object(object)
        };
        let targets = self.targets.iter().map(|t| {
            let mut object = Map::new();
            if let Some(label) = &t.label {
                object.insert("label".into(), label.as_str().into());
            }
            if let Some(drv) = &t.drv {
                object.insert("drvPath".into(), path(drv));
            }
            object.insert("method".into(), self.method.as_str().into());
            match &t.outcome {
                Ok(outputs) => {
                    object.insert("status".into(), "built".into());
                    let outputs = outputs
                        .iter()
                        .filter_map(|o| Some((o.name.clone(), path(o.path.as_ref()?))));
                    object.insert("outputs".into(), Value::Object(outputs.collect()));
                    object.insert("outLinks".into(), json!({}));
                }
                Err((kind, causes)) => {
                    object.insert("status".into(), "failed".into());
                    let mut failure = Map::new();
                    failure.insert("kind".into(), kind.slug().into());
                    failure.insert("message".into(), kind.describe().into());
                    let drvs: Vec<Value> = causes.iter().map(|&i| failed_drv(i)).collect();
                    failure.insert("derivations".into(), drvs.into());
                    if causes.is_empty() && shows_nix(kind) {
                        failure.insert("log".into(), self.nix_said.clone().into());
                    }
                    object.insert("failure".into(), Value::Object(failure));
                }
            }
            Value::Object(object)
        });
        Value::Array(targets.collect())
    }
}
