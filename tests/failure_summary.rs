//! When Nix fails, a summary at the end of stderr names each derivation that failed, how,
//! the targets that needed it and the last lines of its log; `--json` says the same for
//! each target. Nix's status comes out unchanged (compared with bare Nix, whose status
//! differs between versions and setups); the kind comes from Nix's words, on every version.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The summary: stderr from its first line on, without our error line at the end.
fn summary(run: &Run) -> Vec<String> {
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("nix-buildkite-build: ") && l.contains(" failed: "))
        .unwrap_or_else(|| panic!("no summary\n{}", run.explain()));
    let end = lines.len() - 1;
    assert!(
        lines[end].starts_with("nix-buildkite-build: error: "),
        "{}",
        run.explain()
    );
    lines[start..end].iter().map(|l| l.to_string()).collect()
}

/// `//a` needs `broken`, `//b` needs `//a`, `//c` needs neither: in one drvmap.
struct Batch {
    depot: Depot,
    broken: PathBuf,
    drvs: [PathBuf; 3],
}

impl Batch {
    fn new() -> Self {
        let depot = Depot::failing();
        let drvs = ["needsBroken", "needsNeedsBroken", "fine"].map(|a| depot.instantiate(a));
        let map = json!({
            "//a": { "drvPath": drvs[0], "attrPath": ["needsBroken"] },
            "//b": { "drvPath": drvs[1], "attrPath": ["needsNeedsBroken"] },
            "//c": { "drvPath": drvs[2], "attrPath": ["fine"] },
        });
        depot.write("drvmap.json", &map.to_string());
        Batch {
            broken: depot.instantiate("broken"),
            depot,
            drvs,
        }
    }

    /// Runs the three labels with `args`, keeping going so that `//c` is built.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--drvmap", "drvmap.json", "//a", "//b", "//c", "-k"];
        all.extend(args);
        self.depot.run(all)
    }

    /// What bare Nix exits with on the same batch.
    fn bare_realise(&self) -> i32 {
        let mut args = vec![os("--realise"), os("-k")];
        args.extend(self.drvs.iter().map(|d| d.clone().into_os_string()));
        let bare = self.depot.bare("nix-store", args);
        bare.code().filter(|&c| c != 0).expect("the batch fails")
    }

    /// The summary for the batch, with the last `lines` lines of `broken`'s log.
    fn expected(&self, lines: usize) -> Vec<String> {
        let name = format!("broken-{}", self.depot.nonce);
        let mut expected = vec![
            format!("nix-buildkite-build: 1 derivation failed: {name}"),
            format!("{name}: build failed: the builder failed with exit code 3"),
            format!("  {}, needed by //a, //b", self.broken.display()),
            format!("  The last {lines} lines of its log:"),
        ];
        expected.extend((31 - lines..=30).map(|i| format!("  > line {i}")));
        expected.push("built all the same: //c".into());
        expected
    }
}

#[test]
fn a_failed_build_in_a_batch_of_three_is_named_once_with_its_last_25_log_lines() {
    let batch = Batch::new();
    let run = batch.run(&["--no-out-link"]);
    run.fails_with(batch.bare_realise())
        .error_mentions("nix-store failed with exit status");
    assert_eq!(summary(&run), batch.expected(25), "{}", run.explain());
    assert_eq!(run.stdout(), "");

    // Re-evaluated, by one nix-build, the same. (Bare nix-build runs after: it writes the
    // .drvs again.)
    for drv in batch.drvs.iter().rev() {
        delete(drv);
    }
    let run = batch.run(&["--no-out-link"]);
    let bare = batch.depot.bare(
        "nix-build",
        ["-A", "needsBroken", "-A", "needsNeedsBroken", "-A", "fine"]
            .into_iter()
            .chain(["-k", "--no-out-link"]),
    );
    run.fails_with(bare.code().expect("nix-build exits"))
        .error_mentions("nix-build failed with exit status");
    assert_eq!(summary(&run), batch.expected(25), "{}", run.explain());
}

#[test]
fn log_lines_sets_how_much_of_the_log_is_shown() {
    let batch = Batch::new();
    let run = batch.run(&["--no-out-link", "--log-lines", "2"]);
    assert_eq!(summary(&run), batch.expected(2), "{}", run.explain());

    let run = batch.run(&["--no-out-link", "--log-lines", "0"]);
    let mut expected = batch.expected(0);
    expected.retain(|l| !l.contains("of its log:"));
    assert_eq!(summary(&run), expected, "{}", run.explain());

    batch
        .run(&["--log-lines", "1001"])
        .fails_with(2)
        .stderr_contains("--log-lines");
}

#[test]
fn names_a_timeout_and_a_hash_mismatch() {
    let depot = Depot::new();
    let timeout = ["--option", "timeout", "1"];
    let drv = depot.instantiate("slow");
    let bare = depot.bare(
        "nix-store",
        [os("--realise"), drv.clone().into()]
            .into_iter()
            .chain(timeout.map(os)),
    );
    let run = depot.run(
        [os("--drv-path"), drv.clone().into(), os("--no-out-link")]
            .into_iter()
            .chain(timeout.map(os)),
    );
    run.fails_with(bare.code().unwrap());
    let name = format!("slow-{}", depot.nonce);
    assert_eq!(
        summary(&run)[..4],
        [
            format!("nix-buildkite-build: 1 derivation failed: {name}"),
            format!("{name}: timed out"),
            format!("  {}", drv.display()),
            "  The last line of its log:".into(),
        ],
        "{}",
        run.explain()
    );

    let bare = depot.bare("nix-build", ["-A", "badHash", "--no-out-link"]);
    let run = depot.run(["-A", "badHash", "--no-out-link"]);
    run.fails_with(bare.code().unwrap());
    let name = format!("bad-hash-{}", depot.nonce);
    let lines = summary(&run);
    assert_eq!(
        lines[..2],
        [
            format!("nix-buildkite-build: 1 derivation failed: {name}"),
            format!("{name}: hash mismatch (fixed-output derivation)"),
        ],
        "{}",
        run.explain()
    );
    // Nix's hashes, wanted (2.3) or specified (2.4+), and got.
    assert!(lines[3].trim_start().starts_with("wanted:") || lines[3].contains("specified:"));
    assert!(
        lines[4].trim_start().starts_with("got:"),
        "{}",
        run.explain()
    );
}

#[test]
fn an_evaluation_error_shows_what_nix_said() {
    let depot = Depot::new();
    let run = depot.run(["-A", "brokenEval"]);
    run.fails_with(1);
    let lines = summary(&run);
    assert_eq!(
        lines[..2],
        [
            "nix-buildkite-build: 1 target failed: brokenEval",
            "brokenEval: evaluation error",
        ],
        "{}",
        run.explain()
    );
    assert!(
        lines[2].starts_with("  What Nix said ("),
        "{}",
        run.explain()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("this attribute does not evaluate")),
        "{}",
        run.explain()
    );
}

/// With no build log (`keep-build-log = false`, which a daemon's users cannot set), the
/// summary shows the lines Nix quoted in its error if it did (2.4+ through a daemon), and
/// says there is none if not. Injected by a FAKE nix-store that has no log to read.
#[test]
fn without_a_build_log_shows_what_nix_quoted_or_says_so() {
    let batch = Batch::new();
    let fake = Fake::new(
        "nix-store",
        r#"
if [ "$1" = --read-log ]; then
  echo "FAKE nix-store: error: build log of derivation '$2' is not available" >&2
  exit 1
fi
exec "$REAL" "$@"
"#,
    );
    let mut command = batch.depot.command();
    command
        .args([
            "--drvmap",
            "drvmap.json",
            "//a",
            "//b",
            "//c",
            "-k",
            "--no-out-link",
        ])
        .env("PATH", &fake.path);
    let run = Run::new(&mut command);
    run.fails_with(batch.bare_realise());
    let lines = summary(&run);
    let expected = batch.expected(25);
    assert_eq!(lines[..3], expected[..3], "{}", run.explain());
    let quoted = run.stderr().contains(" log lines:\n");
    if quoted {
        assert!(
            lines[3].ends_with(" lines of its log:"),
            "{}",
            run.explain()
        );
        assert_eq!(lines[lines.len() - 2], "  > line 30", "{}", run.explain());
    } else {
        assert_eq!(
            lines[3..],
            [
                "  (no build log to show: Nix keeps none with keep-build-log = false)",
                "built all the same: //c",
            ],
            "{}",
            run.explain()
        );
    }
}

#[test]
fn an_odd_log_is_shown_safely() {
    let depot = Depot::failing();
    let run = depot.run(["-A", "odd", "--no-out-link"]);
    assert!(!run.out.status.success());
    let lines = summary(&run);
    let log: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("  > "))
        .collect();
    assert_eq!(
        log[..4],
        [
            "bad \u{fffd}\u{fffd} bytes",
            "red",
            "````",
            "<script>alert(1)</script>"
        ],
        "{}",
        run.explain()
    );
    assert_eq!(log[4], format!("{}…", "x".repeat(500)));
}

#[test]
fn json_says_which_targets_failed_and_why() {
    let batch = Batch::new();
    let run = batch.run(&["--no-out-link", "--json", "--log-lines", "3"]);
    run.fails_with(batch.bare_realise());
    let value = run.json();
    let broken = json!({
        "drvPath": batch.broken,
        "name": format!("broken-{}", batch.depot.nonce),
        "kind": "build-failed",
        "message": "build failed: the builder failed with exit code 3",
        "log": ["line 28", "line 29", "line 30"],
    });
    let failed = |label: &str, attr: &str, drv: &Path| {
        json!({
            "label": label,
            "attrPath": [attr],
            "drvPath": drv,
            "method": "realise",
            "status": "failed",
            "failure": {
                "kind": "dependency-failed",
                "message": "a dependency failed",
                "derivations": [broken],
            },
        })
    };
    let fine = output_of(&batch.drvs[2]);
    let mut targets = value["targets"].clone();
    for target in targets.as_array_mut().unwrap() {
        target.as_object_mut().unwrap().remove("seconds");
    }
    assert_eq!(
        targets,
        json!([
            failed("//a", "needsBroken", &batch.drvs[0]),
            failed("//b", "needsNeedsBroken", &batch.drvs[1]),
            {
                "label": "//c",
                "attrPath": ["fine"],
                "drvPath": batch.drvs[2],
                "method": "realise",
                "status": "built",
                "outputs": { "out": fine },
                "outLinks": {},
            },
        ]),
        "{}",
        run.explain()
    );
}

#[test]
fn json_shows_of_a_target_built_all_the_same_only_the_outputs_asked_for() {
    let depot = Depot::new();
    let drvs = ["multi", "fails"].map(|a| depot.instantiate(a));
    let map = json!({
        "//m": { "drvPath": drvs[0], "attrPath": ["multi"] },
        "//f": { "drvPath": drvs[1], "attrPath": ["fails"] },
    });
    depot.write("drvmap.json", &map.to_string());
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//m",
        "//f",
        "-k",
        "--output",
        "out",
        "--no-out-link",
        "--json",
    ]);
    let mut bare = vec![os("--realise"), os("-k")];
    bare.extend(drvs.iter().map(|d| d.clone().into_os_string()));
    let bare = depot.bare("nix-store", bare);
    run.fails_with(bare.code().filter(|&c| c != 0).expect("the batch fails"));
    let value = run.json();
    let multi = &value["targets"][0];
    assert_eq!(multi["status"], "built", "{}", run.explain());
    let outputs = multi["outputs"].as_object().expect("outputs");
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        ["out"],
        "{}",
        run.explain()
    );
    let out = outputs["out"].as_str().unwrap_or_default();
    assert!(out.ends_with(&format!("-multi-{}", depot.nonce)), "{out}");
    assert_eq!(value["targets"][1]["status"], "failed", "{}", run.explain());
}

#[test]
fn json_stays_valid_whatever_the_log_holds() {
    let depot = Depot::failing();
    let run = depot.run(["-A", "odd", "--no-out-link", "--json"]);
    let value = run.json();
    let failure = &value["targets"][0]["failure"];
    assert_eq!(failure["kind"], "build-failed", "{}", run.explain());
    assert_eq!(
        failure["derivations"][0]["log"][0],
        "bad \u{fffd}\u{fffd} bytes"
    );
}

/// The output of a `.drv` with one output, read from the `.drv`.
fn output_of(drv: &Path) -> PathBuf {
    let text = std::fs::read_to_string(drv).unwrap();
    let start = text.find("\"/nix/store/").unwrap() + 1;
    let end = start + text[start..].find('"').unwrap();
    PathBuf::from(&text[start..end])
}

/// An attribute path that names no derivation is one line on stderr, as before; `--json`
/// says it too.
#[test]
fn json_says_when_an_attribute_path_names_no_derivation() {
    let depot = Depot::new();
    let run = depot.run(["-A", "nested.missing.leaf", "--json"]);
    run.fails_with(1);
    let value = run.json();
    assert_eq!(
        value,
        json!({
            "targets": [{
                "attrPath": ["nested", "missing", "leaf"],
                "method": "evaluate",
                "status": "failed",
                "failure": {
                    "kind": "missing-attribute",
                    "message": "the attribute path names no derivation",
                    "derivations": [],
                    "log": ["cannot build nested.missing.leaf: nested has no attribute missing"],
                },
                "seconds": 0.0,
            }],
            "builds": [],
        })
    );
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(
        lines,
        [
            "nix-buildkite-build: error: cannot build nested.missing.leaf: nested has no attribute missing"
        ]
    );
}

/// Labels that share a failed derivation, by naming it or needing it, are each named with
/// it, and it is shown once.
#[test]
fn each_label_is_named_with_its_failed_derivation_shown_once() {
    let depot = Depot::failing();
    let [broken, needs] = ["broken", "needsBroken"].map(|a| depot.instantiate(a));
    let map = json!({
        "//own": { "drvPath": broken, "attrPath": ["broken"] },
        "//twin": { "drvPath": broken, "attrPath": ["broken"] },
        "//dep": { "drvPath": needs, "attrPath": ["needsBroken"] },
    });
    depot.write("drvmap.json", &map.to_string());
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//own",
        "//twin",
        "//dep",
        "-k",
        "--no-out-link",
        "--log-lines",
        "1",
    ]);
    let name = format!("broken-{}", depot.nonce);
    assert_eq!(
        summary(&run),
        [
            format!("nix-buildkite-build: 1 derivation failed: {name}"),
            format!("{name}: build failed: the builder failed with exit code 3"),
            format!("  {}, needed by //own, //twin, //dep", broken.display()),
            "  The last line of its log:".into(),
            "  > line 30".into(),
        ],
        "{}",
        run.explain()
    );
}
