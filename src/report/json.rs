//! `--json`: one object on stdout, whatever the run came to. `targets`, one per target in
//! the order given, each with the fields of `nix build --json` (`drvPath`, `outputs`) and
//! how it went; `builds`, each derivation Nix built once, with the targets that needed it,
//! when it started and how long it took.

use super::results::{Results, TargetOutcome, shows_nix};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::path::Path;

pub fn json(results: &Results) -> Value {
    let targets: Vec<Value> = results
        .targets
        .iter()
        .map(|t| {
            let mut object = Map::new();
            if let Some(label) = &t.target.label {
                object.insert("label".into(), label.as_str().into());
            }
            if let Some(attr_path) = &t.target.attr_path {
                let names = attr_path.0.iter().map(|n| String::from_utf8_lossy(n));
                object.insert("attrPath".into(), names.collect::<Vec<_>>().into());
            }
            if let Some(drv) = &t.drv {
                object.insert("drvPath".into(), path(drv));
            }
            object.insert("method".into(), results.method.as_str().into());
            match &t.outcome {
                TargetOutcome::Built { outputs, links } => {
                    object.insert("status".into(), "built".into());
                    object.insert("outputs".into(), by_name(outputs));
                    object.insert("outLinks".into(), by_name(links));
                    if !results.copies.is_empty() {
                        let copied = results.copies.iter().map(|c| {
                            let store = c.store.to_string_lossy().into_owned();
                            (store, Value::from(c.failed.is_none()))
                        });
                        object.insert("copied".into(), Value::Object(copied.collect()));
                    }
                }
                TargetOutcome::Failed { kind, causes } => {
                    object.insert("status".into(), "failed".into());
                    let mut failure = Map::new();
                    failure.insert("kind".into(), kind.slug().into());
                    failure.insert("message".into(), kind.describe().into());
                    let drvs: Vec<Value> = causes.iter().map(|&i| failed_drv(results, i)).collect();
                    failure.insert("derivations".into(), drvs.into());
                    if causes.is_empty() && shows_nix(kind) {
                        failure.insert("log".into(), results.nix_said.clone().into());
                    }
                    object.insert("failure".into(), Value::Object(failure));
                }
                TargetOutcome::Cancelled { .. } => {
                    object.insert("status".into(), "cancelled".into());
                    let mut failure = Map::new();
                    failure.insert("kind".into(), "cancelled".into());
                    failure.insert("message".into(), results.why(t).into());
                    failure.insert("derivations".into(), Vec::<Value>::new().into());
                    object.insert("failure".into(), Value::Object(failure));
                }
            }
            object.insert("seconds".into(), t.seconds.into());
            Value::Object(object)
        })
        .collect();
    let builds: Vec<Value> = results
        .builds
        .iter()
        .map(|b| {
            let mut object = Map::new();
            object.insert("drvPath".into(), path(&b.drv));
            let needed_by = b.needed_by.iter().map(|&i| results.targets[i].name());
            object.insert("neededBy".into(), needed_by.collect::<Vec<_>>().into());
            object.insert("started".into(), rfc3339(b.started).into());
            object.insert("seconds".into(), b.seconds.into());
            object.insert("status".into(), b.state.slug().into());
            Value::Object(object)
        })
        .collect();
    let mut top = Map::new();
    top.insert("targets".into(), targets.into());
    top.insert("builds".into(), builds.into());
    Value::Object(top)
}

fn failed_drv(results: &Results, index: usize) -> Value {
    let f = &results.failed[index];
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
}

fn path(p: &Path) -> Value {
    Value::from(p.to_string_lossy())
}

fn by_name(paths: &[(String, std::path::PathBuf)]) -> Value {
    let map = paths.iter().map(|(name, p)| (name.clone(), path(p)));
    Value::Object(map.collect())
}

/// A time as RFC 3339, in UTC, to the millisecond: `2026-12-06T20:07:15.123Z`.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_000_000_123);
        assert_eq!(rfc3339(time), "2026-11-30T00:53:20.123Z");
    }
}
