//! `--junit FILE`: JUnit XML for Buildkite Test Engine, read back by a real JUnit parser
//! (the junit-parser crate) and a strict XML parser (roxmltree), never by a pattern. The
//! text of a failure is read with roxmltree: junit-parser 1.7 drops the characters written
//! as entities (`&lt;`, `&amp;`) from an element's text. One
//! test case per target, named by its label, its class the attribute path, its time that of
//! its builds; a failed target a `failure` of its `--json` kind with the summary's log tail;
//! one Nix never got to `skipped`. Written on success and on failure (on a cancel:
//! `cancellation.rs`), whole or not at all, whatever the build logs hold.

mod common;
use common::*;
use junit_parser::{TestCase, TestStatus, TestSuites};
use serde_json::json;
use std::path::Path;

/// The report in `file`, which must be well-formed XML 1.0 and JUnit.
#[track_caller]
fn read(file: &Path) -> TestSuites {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("no JUnit file {}: {e}", file.display()));
    if let Err(e) = roxmltree::Document::parse(&text) {
        panic!("not well-formed XML ({e}):\n{text}");
    }
    junit_parser::from_reader(text.as_bytes())
        .unwrap_or_else(|e| panic!("not JUnit ({e}):\n{text}"))
}

/// The test cases of the one suite, by name.
#[track_caller]
fn cases(report: &TestSuites) -> Vec<&TestCase> {
    assert_eq!(report.suites.len(), 1, "{report:?}");
    report.suites[0].cases.iter().collect()
}

/// The text of the `failure` of the test case named `name`, as an XML parser reads it.
#[track_caller]
fn failure_text(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let case = document
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
        .unwrap_or_else(|| panic!("no test case {name}:\n{text}"));
    let failure = case
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap_or_else(|| panic!("{name} has no failure:\n{text}"));
    failure.text().unwrap_or_default().to_owned()
}

#[track_caller]
fn case<'a>(cases: &[&'a TestCase], name: &str) -> &'a TestCase {
    cases
        .iter()
        .find(|c| c.original_name == name)
        .unwrap_or_else(|| panic!("no test case {name}: {cases:?}"))
}

#[test]
fn a_batch_reads_back_with_its_counts_kinds_log_tails_and_times() {
    let depot = Depot::failing();
    // `//twin` names the same .drv as `//own`: each is a target, and a test case.
    depot.write_drvmap(&[
        ("//fine", "fine"),
        ("//own", "broken"),
        ("//twin", "broken"),
        ("//dep", "needsBroken"),
        ("//dep2", "needsNeedsBroken"),
    ]);
    let file = depot.path("junit.xml");
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//fine",
        "//own",
        "//twin",
        "//dep",
        "//dep2",
        "-k",
        "--no-out-link",
        "--log-lines",
        "3",
        "--junit",
        "junit.xml",
    ]);
    assert!(!run.out.status.success(), "{}", run.explain());
    let report = read(&file);
    assert_eq!(
        (report.tests, report.failures, report.skipped, report.errors),
        (5, 4, 0, 0)
    );
    let cases = cases(&report);
    let names: Vec<&str> = cases.iter().map(|c| c.original_name.as_str()).collect();
    assert_eq!(names, ["//fine", "//own", "//twin", "//dep", "//dep2"]);

    let fine = case(&cases, "//fine");
    assert!(matches!(fine.status, TestStatus::Success), "{fine:?}");
    assert_eq!(fine.classname.as_deref(), Some("fine"));
    let broken = format!("broken-{}", depot.nonce);
    for (label, kind, message) in [
        (
            "//own",
            "build-failed",
            format!("build failed: the builder failed with exit code 3 ({broken})"),
        ),
        (
            "//twin",
            "build-failed",
            format!("build failed: the builder failed with exit code 3 ({broken})"),
        ),
        (
            "//dep",
            "dependency-failed",
            format!("a dependency failed: {broken}"),
        ),
        (
            "//dep2",
            "dependency-failed",
            format!("a dependency failed: {broken}"),
        ),
    ] {
        let TestStatus::Failure(failure) = &case(&cases, label).status else {
            panic!("{label} did not fail: {cases:?}");
        };
        assert_eq!(failure.failure_type, kind, "{label}");
        assert_eq!(failure.message, message, "{label}");
        // The summary's log tail: the failed derivation, and the last lines of its log.
        let text = failure_text(&file, label);
        let text: Vec<&str> = text.lines().collect();
        assert_eq!(
            text[0],
            format!("{broken}: build failed: the builder failed with exit code 3")
        );
        assert_eq!(
            text[2..],
            [
                "The last 3 lines of its log:",
                "line 28",
                "line 29",
                "line 30"
            ],
            "{label}"
        );
    }
    // Times: what the builds each target needed took (`durations.rs` checks the figures).
    let times: Vec<f64> = cases.iter().map(|c| c.time).collect();
    assert!(times.iter().all(|t| *t >= 0.0), "{times:?}");
}

#[test]
fn a_target_nix_never_got_to_is_skipped() {
    let depot = Depot::failing();
    depot.write_drvmap(&[("//own", "broken"), ("//late", "needsSlowly")]);
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//own",
        "//late",
        "-j",
        "2",
        "--no-out-link",
        "--junit",
        "junit.xml",
    ]);
    assert!(!run.out.status.success(), "{}", run.explain());
    let report = read(&depot.path("junit.xml"));
    assert_eq!((report.tests, report.failures, report.skipped), (2, 1, 1));
    let cases = cases(&report);
    let TestStatus::Skipped(skipped) = &case(&cases, "//late").status else {
        panic!("not skipped: {cases:?}");
    };
    assert_eq!(
        skipped.message,
        "not built: Nix stopped when something else failed"
    );
}

#[test]
fn an_evaluation_error_fails_every_target_it_stopped() {
    let depot = Depot::failing();
    // Both .drvs gone: one nix-build re-evaluates both, and `brokenEval` throws.
    let fine = depot.collected_drv("fine");
    let map = json!({
        "//fine": { "drvPath": fine, "attrPath": ["fine"] },
        "//eval": { "drvPath": fine, "attrPath": ["brokenEval"] },
    });
    depot.write("drvmap.json", &map.to_string());
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//eval",
        "//fine",
        "--no-out-link",
        "--junit",
        "junit.xml",
    ]);
    run.fails_with(1);
    let report = read(&depot.path("junit.xml"));
    assert_eq!((report.tests, report.failures), (2, 2));
    for case in cases(&report) {
        let TestStatus::Failure(failure) = &case.status else {
            panic!("did not fail: {case:?}");
        };
        assert_eq!(failure.failure_type, "evaluation-error");
        let text = failure_text(&depot.path("junit.xml"), &case.original_name);
        assert!(text.contains("this attribute does not evaluate"), "{text}");
    }
}

#[test]
fn a_hostile_log_cannot_make_the_xml_invalid() {
    let depot = Depot::failing();
    let run = depot.run([
        "-A",
        "hostile",
        "--no-out-link",
        "--log-lines",
        "5",
        "--junit",
        "junit.xml",
    ]);
    assert!(!run.out.status.success(), "{}", run.explain());
    let report = read(&depot.path("junit.xml"));
    let cases = cases(&report);
    let TestStatus::Failure(failure) = &cases[0].status else {
        panic!("did not fail: {cases:?}");
    };
    assert_eq!(failure.failure_type, "build-failed");
    let text = &failure_text(&depot.path("junit.xml"), "hostile");
    assert!(text.contains("]]> </failure> <![CDATA[ & &amp;"), "{text}");
    assert!(text.contains("last line ]]>"), "{text}");
    // The 1 MiB line, cut as the summary cuts it.
    assert!(text.contains(&format!("{}…", "y".repeat(500))), "{text}");
    assert!(!text.contains(['\u{1}', '\u{1b}', '\u{fffe}']), "{text}");
}

#[test]
fn success_is_a_passing_case_timed_zero_when_nothing_was_built() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let args = [
        os("--drv-path"),
        drv.into(),
        os("-A"),
        os("hello"),
        os("--junit"),
        os("junit.xml"),
    ];
    let run = depot.run(&args);
    run.success();
    let report = read(&depot.path("junit.xml"));
    let built = cases(&report)[0].clone();
    assert!(matches!(built.status, TestStatus::Success));
    assert_eq!(built.original_name, "hello");
    assert_eq!(built.classname.as_deref(), Some("hello"));
    // Again: everything is in the store, so no time at all.
    depot.run(&args).success();
    let report = read(&depot.path("junit.xml"));
    assert_eq!(cases(&report)[0].time, 0.0);
}

#[test]
fn an_old_report_stays_until_the_new_one_is_whole() {
    let (depot, gate) = Gate::depot();
    depot.write("junit.xml", "old");
    let drv = depot.instantiate("gated");
    let run = Spawned::start(
        depot
            .command()
            .args([os("--drv-path"), drv.into(), os("--junit"), os("junit.xml")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    wait_until(PATIENCE, "the gated builder to start", || {
        !depot.builders().is_empty()
    });
    assert_eq!(
        std::fs::read_to_string(depot.path("junit.xml")).unwrap(),
        "old"
    );
    gate.open();
    run.finish(PATIENCE).success();
    let report = read(&depot.path("junit.xml"));
    assert_eq!(report.tests, 1);
    let left: Vec<_> = std::fs::read_dir(&depot.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("junit.xml."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_report_that_cannot_be_written_is_refused_before_building() {
    let depot = Depot::new();
    std::fs::create_dir(depot.path("dir")).unwrap();
    for (file, why) in [
        ("missing/junit.xml", "its directory"),
        ("dir", "is a directory"),
    ] {
        let drv = depot.instantiate("hello");
        depot
            .run([os("--drv-path"), drv.into(), os("--junit"), os(file)])
            .fails_with(2)
            .error_mentions(why);
    }
    assert!(depot.outputs().is_empty(), "built: {:?}", depot.outputs());
}
