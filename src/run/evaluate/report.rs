//! The report line: how the evaluation tells us what it evaluated, without a second Nix
//! process.
//!
//! `evaluate.nix` prints one line with `builtins.trace`, which Nix writes to stderr as
//! `trace: TAG JSON`. The `Filter` takes that line out of Nix's log as the log streams
//! through us, and `parse` reads it. The expression is given `TAG` from here, so that the
//! whole protocol is in this file.

use crate::error::{Error, Result};
use crate::store;
use crate::store::drv::Output;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the expression puts before its report, passed to it as `reportTag`.
pub const TAG: &str = "@nix-buildkite-build-report";

/// A report is a few store paths per target: 16 MiB, and 16 KiB more per target, is no
/// report, and is cut and fails to parse.
fn limit(targets: usize) -> usize {
    (16 << 20) + (targets << 14)
}

/// How Nix prints the report line's start: `trace: TAG `.
pub fn marker() -> Vec<u8> {
    format!("trace: {TAG} ").into_bytes()
}

/// Passes Nix's stderr on unchanged, except for the report line, whose JSON is kept. Bytes
/// are passed on as soon as they can be told apart from a report line, so the log stays
/// live. Errors writing them are ignored: the log is lost either way, and the build's
/// result must still be reported.
pub struct Filter<W: Write> {
    to: W,
    /// `trace: TAG `, as Nix prints it.
    marker: Vec<u8>,
    /// The longest report kept.
    limit: usize,
    state: LineState,
    current: Vec<u8>,
    report: Option<Vec<u8>>,
}

#[derive(Clone, Copy)]
enum LineState {
    /// At the start of a line, having held back this many bytes that match the marker.
    Matching(usize),
    /// In a line that is not a report.
    Passing,
    /// In a report line.
    Capturing,
}

impl<W: Write> Filter<W> {
    /// A filter for the report on `targets` targets, writing the rest to `to`.
    pub fn new(to: W, targets: usize) -> Self {
        Filter {
            to,
            marker: marker(),
            limit: limit(targets),
            state: LineState::Matching(0),
            current: Vec::new(),
            report: None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut pass_from = 0;
        for (i, &b) in chunk.iter().enumerate() {
            self.state = match self.state {
                LineState::Passing if b == b'\n' => LineState::Matching(0),
                LineState::Passing => LineState::Passing,
                LineState::Matching(held) if b == self.marker[held] => {
                    let _ = self.to.write_all(&chunk[pass_from..i]);
                    pass_from = i + 1;
                    if held + 1 == self.marker.len() {
                        self.current.clear();
                        LineState::Capturing
                    } else {
                        LineState::Matching(held + 1)
                    }
                }
                LineState::Matching(held) => {
                    let _ = self.to.write_all(&self.marker[..held]);
                    if b == b'\n' {
                        LineState::Matching(0)
                    } else {
                        LineState::Passing
                    }
                }
                LineState::Capturing => {
                    pass_from = i + 1;
                    if b == b'\n' {
                        self.report = Some(std::mem::take(&mut self.current));
                        LineState::Matching(0)
                    } else {
                        if self.current.len() < self.limit {
                            self.current.push(b);
                        }
                        LineState::Capturing
                    }
                }
            };
        }
        let _ = self.to.write_all(&chunk[pass_from..]);
    }

    /// Passes on what was held back, and returns the report's JSON, if there was one.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        match self.state {
            LineState::Matching(held) => {
                let _ = self.to.write_all(&self.marker[..held]);
            }
            LineState::Capturing => self.report = Some(std::mem::take(&mut self.current)),
            LineState::Passing => {}
        }
        let _ = self.to.flush();
        self.report
    }
}

/// The report, read.
pub struct Report {
    /// What each target's attribute path led to.
    pub targets: Vec<Found>,
    /// Links (by target index and output) that a file or directory is in the way of.
    pub blocked: Vec<(usize, String)>,
}

/// What a target's attribute path led to.
pub enum Found {
    /// A derivation: its `.drv` and all its outputs.
    Derivation(PathBuf, Vec<Output>),
    /// Only the first `found` names lead somewhere; what is there has no attribute of the
    /// next name, being a set without it or a value of another `type` (`builtins.typeOf`).
    Missing { found: usize, type_: String },
    /// A value of this type, not a derivation.
    NotADerivation(String),
}

/// Reads the report: `{"targets": [T…], "blocked": [{"index": …, "name": …}]}`, where each
/// T is `{"drvPath": …, "outputs": [{"name": …, "path": …}]}`, `{"missing": N, "type": …}`
/// or `{"notDerivation": TYPE}`. Every path in it must be a store path, or `null` for an
/// output only known once built: it decides what reaches stdout.
pub fn parse(store: &Path, report: &[u8]) -> Result<Report> {
    let store_path = |path: &serde_json::Value| {
        path.as_str()
            .map(PathBuf::from)
            .filter(|p| store::is_store_path(store, p))
            .ok_or_else(|| error("a path is missing or not in the store"))
    };
    let json: serde_json::Value = serde_json::from_slice(report).map_err(|_| error("not JSON"))?;
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    let targets = list(&json["targets"], "targets")?
        .iter()
        .map(|target| {
            if let Some(found) = target.get("missing") {
                let (Some(found), Some(type_)) = (found.as_u64(), text(&target["type"])) else {
                    return Err(error("a missing attribute without its place or type"));
                };
                return Ok(Found::Missing {
                    found: found as usize,
                    type_,
                });
            }
            if let Some(type_) = target.get("notDerivation") {
                let type_ = text(type_).ok_or_else(|| error("a type is not a string"))?;
                return Ok(Found::NotADerivation(type_));
            }
            let drv_path = store_path(&target["drvPath"])?;
            let outputs = list(&target["outputs"], "outputs")?
                .iter()
                .map(|output| {
                    let name =
                        text(&output["name"]).ok_or_else(|| error("an output has no name"))?;
                    let path = match &output["path"] {
                        serde_json::Value::Null => None,
                        path => Some(store_path(path)?),
                    };
                    Ok(Output { name, path })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Found::Derivation(drv_path, outputs))
        })
        .collect::<Result<Vec<_>>>()?;
    let blocked = list(&json["blocked"], "blocked links")?
        .iter()
        .map(|link| Some((link["index"].as_u64()? as usize, text(&link["name"])?)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| error("a blocked link lacks its index or name"))?;
    Ok(Report { targets, blocked })
}

fn list<'a>(value: &'a serde_json::Value, what: &str) -> Result<&'a Vec<serde_json::Value>> {
    value
        .as_array()
        .ok_or_else(|| error(&format!("no list of {what}")))
}

/// The refusal of a report that is not understood.
pub fn error(why: &str) -> Error {
    Error::Unverified(format!(
        "nix-build reported what it evaluated in a form not understood ({why}); printing nothing"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(chunks: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut out = Vec::new();
        let mut filter = Filter::new(&mut out, 1);
        for chunk in chunks {
            filter.feed(chunk);
        }
        let report = filter.finish();
        (out, report)
    }

    #[test]
    fn passes_the_log_and_keeps_the_report() {
        let log = b"building\ntrace: @nix-buildkite-build-report {\"a\":1}\ntrace: other\ndone\n";
        let expected = b"building\ntrace: other\ndone\n";
        let (out, report) = filter(&[log]);
        assert_eq!(out, expected);
        assert_eq!(report.as_deref(), Some(&b"{\"a\":1}"[..]));
        // Split at every byte: the result must not depend on how reads chunk the stream.
        let chunks: Vec<&[u8]> = log.chunks(1).collect();
        assert_eq!(filter(&chunks), (expected.to_vec(), report));
    }

    #[test]
    fn a_partial_marker_is_passed_on() {
        for log in [
            &b"trace: @nix-buildkite"[..],
            b"trace: @nix\n",
            b"tr",
            b"x trace: @nix-buildkite-build-report 1\n",
        ] {
            assert_eq!(filter(&[log]), (log.to_vec(), None));
        }
    }
}
