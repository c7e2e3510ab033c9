//! `--junit FILE`: the run as JUnit XML, for Buildkite Test Engine. One test case per
//! target: named by its label (else its attribute path), its class the attribute path, its
//! time the seconds its builds took. A failed target has a `failure` of its `--json` kind,
//! whose text is the summary's log tail; a target Nix never got to, or that a cancel
//! stopped, is `skipped`. Written to a file beside FILE, then renamed over it, so that no
//! reader sees half a file and an old FILE stays until the new one is whole.

use super::results::{Results, TargetOutcome, TargetResult, drv_name, last_lines, shows_nix};
use crate::error::{Error, Result};
use crate::run::failure::Kind;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NAME: &str = "nix-buildkite-build";

/// Writes `results` to `file`, whole or not at all.
pub fn write(file: &Path, results: &Results) -> Result<()> {
    save(file, report(results))
}

/// What our own error did to every target, as JUnit: each an `error`.
pub fn write_error(file: &Path, results: &Results, error: &Error) -> Result<()> {
    let mut suite = TestSuite::new(NAME);
    for target in &results.targets {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_type("error")
            .set_message(xml_text(&error.to_string()));
        suite.add_test_case(case(target, status));
    }
    let mut report = Report::new(NAME);
    report.add_test_suite(suite);
    save(file, report)
}

/// Writes `report` to `file`, whole or not at all.
fn save(file: &Path, report: Report) -> Result<()> {
    let xml = report
        .to_string()
        .map_err(|e| Error::Io(format!("cannot write the JUnit report: {e}")))?;
    replace(file, xml.as_bytes()).map_err(|e| {
        Error::io(
            format!("cannot write the JUnit report {}", file.display()),
            e,
        )
    })
}

fn report(results: &Results) -> Report {
    let mut suite = TestSuite::new(NAME);
    for target in &results.targets {
        let status = match &target.outcome {
            TargetOutcome::Built { .. } => TestCaseStatus::success(),
            TargetOutcome::Failed {
                kind: kind @ Kind::Cancelled,
                ..
            } => skipped(&kind.describe()),
            TargetOutcome::Cancelled { .. } => skipped(&results.why(target)),
            TargetOutcome::Failed { kind, causes } => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_type(kind.slug())
                    .set_message(xml_text(&results.why(target)))
                    .set_description(xml_text(&log_tail(results, kind, causes)));
                status
            }
        };
        suite.add_test_case(case(target, status));
    }
    let seconds = (results.builds.iter()).try_fold(0.0, |sum, b| Some(sum + b.seconds?));
    if let Some(seconds) = seconds {
        suite.set_time(Duration::from_secs_f64(seconds));
    }
    let mut report = Report::new(NAME);
    report.add_test_suite(suite);
    report
}

/// The test case for `target`: named by its label, else its attribute path, else its
/// `.drv`; its class the attribute path.
fn case(target: &TargetResult, status: TestCaseStatus) -> TestCase {
    let attr = target.target.attr_path.as_ref().map(|a| a.to_string());
    let drv = target.drv.as_deref().map(drv_name);
    let class = attr.clone().or(drv).unwrap_or_else(|| target.name());
    let name = target
        .target
        .label
        .clone()
        .or(attr)
        .unwrap_or_else(|| target.name());
    let mut case = TestCase::new(xml_text(&name), status);
    case.set_classname(xml_text(&class));
    if let Some(seconds) = target.seconds {
        case.set_time(Duration::from_secs_f64(seconds));
    }
    case
}

fn skipped(message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_message(xml_text(message));
    status
}

/// What the summary shows of a failed target: each failed derivation it needed, with the
/// last lines of its log; else what Nix said.
fn log_tail(results: &Results, kind: &Kind, causes: &[usize]) -> String {
    let mut text = String::new();
    for &i in causes {
        let f = &results.failed[i];
        text += &format!("{}: {}\n", f.name(), f.kind.describe());
        if let Some(drv) = &f.drv {
            text += &format!("{}\n", drv.display());
        }
        for line in &f.detail {
            text += &format!("{line}\n");
        }
        if let Some(lines) = &f.log {
            text += &format!("{} of its log:\n", last_lines(lines.len()));
            for line in lines {
                text += &format!("{line}\n");
            }
        }
    }
    if causes.is_empty() && shows_nix(kind) {
        for line in &results.nix_said {
            text += &format!("{line}\n");
        }
    }
    text
}

/// `text` as XML 1.0 can hold it: quick-junit drops control characters and escapes; the
/// two characters it keeps that XML forbids, U+FFFE and U+FFFF, become U+FFFD.
fn xml_text(text: &str) -> String {
    text.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}")
}

/// Writes `bytes` to a new file beside `file`, then renames it over `file`.
fn replace(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary: PathBuf = file.to_path_buf().into_os_string().into();
    temporary
        .as_mut_os_string()
        .push(format!(".tmp-{}", std::process::id()));
    let written = std::fs::File::create_new(&temporary)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
