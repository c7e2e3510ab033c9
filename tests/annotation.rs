//! Under Buildkite (`BUILDKITE=true`), a failure is also a Buildkite annotation: one
//! `buildkite-agent annotate --style error --context …` with the summary in Markdown on its
//! stdin. A FAKE `buildkite-agent` records how it was called; a missing or failing one
//! changes nothing but a warning.

mod common;
use common::*;
use serde_json::json;
use std::path::PathBuf;

/// A FAKE buildkite-agent that records its arguments and stdin, and exits `status`.
fn agent(status: i32) -> Fake {
    Fake::with_text(
        "buildkite-agent",
        &format!(
            "#!/bin/sh\n# FAKE buildkite-agent, recording how it is called.\n\
             dir=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$dir/args\"\ncat > \"$dir/body\"\n\
             [ {status} = 0 ] || echo 'FAKE buildkite-agent: fatal: cannot annotate' >&2\n\
             exit {status}\n"
        ),
    )
}

fn recorded(fake: &Fake, what: &str) -> Option<String> {
    std::fs::read_to_string(fake.dir.path().join(what)).ok()
}

/// Runs the binary in `depot` under Buildkite, as job `job-1`, with `path` as PATH.
fn on_buildkite(depot: &Depot, path: &std::ffi::OsStr, args: &[&str]) -> Run {
    let mut command = depot.command();
    command
        .args(args)
        .env("BUILDKITE", "true")
        .env("BUILDKITE_JOB_ID", "job-1")
        .env("PATH", path);
    Run::new(&mut command)
}

/// `//a` needs `broken`, `//b` needs neither.
fn batch() -> (Depot, PathBuf) {
    let depot = Depot::failing();
    let map = json!({
        "//a": { "drvPath": depot.instantiate("needsBroken"), "attrPath": ["needsBroken"] },
        "//b": { "drvPath": depot.instantiate("fine"), "attrPath": ["fine"] },
    });
    depot.write("drvmap.json", &map.to_string());
    let broken = depot.instantiate("broken");
    (depot, broken)
}

#[test]
fn a_failure_is_annotated_once_with_the_summary_in_markdown() {
    let (depot, broken) = batch();
    let fake = agent(0);
    let args = [
        "--drvmap",
        "drvmap.json",
        "//a",
        "//b",
        "-k",
        "--log-lines",
        "3",
    ];
    let run = on_buildkite(&depot, &fake.path, &args);
    assert!(!run.out.status.success(), "{}", run.explain());
    assert_eq!(
        recorded(&fake, "args").as_deref(),
        Some("annotate\n--style\nerror\n--context\nnix-buildkite-build-job-1\n")
    );
    let name = format!("broken-{}", depot.nonce);
    let escaped = name.replace('-', "\\-");
    let expected = format!(
        "**nix-buildkite-build: 1 derivation failed\\: {escaped}**\n\
         \n\
         **`{name}`**: build failed\\: the builder failed with exit code 3  \n\
         `{}`, needed by `//a`\n\
         \n\
         The last 3 lines of its log:\n\
         \n\
         ```\n\
         line 28\n\
         line 29\n\
         line 30\n\
         ```\n",
        broken.display()
    );
    assert_eq!(recorded(&fake, "body").as_deref(), Some(&expected[..]));
    // The summary is on stderr too, and nothing on stdout.
    run.stderr_contains(&format!("+++ 1 derivation failed: {name}"));
    assert_eq!(run.stdout(), "");
}

/// No log line can close the block it is in, nor be read as Markdown or HTML.
#[test]
fn a_log_cannot_escape_its_block() {
    let depot = Depot::failing();
    let fake = agent(0);
    let run = on_buildkite(&depot, &fake.path, &["-A", "odd"]);
    assert!(!run.out.status.success(), "{}", run.explain());
    let body = recorded(&fake, "body").expect("annotated");
    let fence = "`````";
    let start = body.find(&format!("\n{fence}\n")).expect("a block") + fence.len() + 2;
    let end = start
        + body[start..]
            .find(&format!("\n{fence}\n"))
            .expect("its end");
    let block = &body[start..end];
    assert_eq!(
        block.lines().take(4).collect::<Vec<_>>(),
        [
            "bad \u{fffd}\u{fffd} bytes",
            "red",
            "````",
            "<script>alert(1)</script>"
        ]
    );
    assert!(
        !body[..start].contains('<') && !body[end..].contains('<'),
        "{body}"
    );
    assert!(body.len() < 64 << 10, "{} bytes", body.len());
}

#[test]
fn a_failing_or_missing_agent_changes_nothing_but_a_warning() {
    let (depot, _) = batch();
    let args = ["--drvmap", "drvmap.json", "//a", "//b", "-k"];
    let mut bare_args = vec![os("--realise"), os("-k")];
    bare_args.extend(["needsBroken", "fine"].map(|a| depot.instantiate(a).into_os_string()));
    let code = depot.bare("nix-store", bare_args).code().unwrap();

    let fake = agent(1);
    let run = on_buildkite(&depot, &fake.path, &args);
    run.fails_with(code)
        .stderr_contains("FAKE buildkite-agent: fatal: cannot annotate")
        .stderr_contains("nix-buildkite-build: warning: buildkite-agent annotate failed")
        .error_mentions("nix-store failed");

    // A PATH with Nix on it but no buildkite-agent.
    let nix_only = tempfile::tempdir().unwrap();
    for program in ["nix-store", "nix-build"] {
        let real = Run::new(
            std::process::Command::new("sh").args(["-c", &format!("command -v {program}")]),
        );
        let real = real.stdout();
        std::os::unix::fs::symlink(real.trim(), nix_only.path().join(program)).unwrap();
    }
    let run = on_buildkite(&depot, nix_only.path().as_os_str(), &args);
    run.fails_with(code).error_mentions("nix-store failed");
    assert!(
        !run.stderr().contains("buildkite-agent"),
        "{}",
        run.explain()
    );
}

#[test]
fn nothing_is_annotated_on_success_or_off_buildkite() {
    let depot = Depot::failing();
    let fake = agent(0);
    on_buildkite(&depot, &fake.path, &["-A", "fine"]).success();
    assert_eq!(recorded(&fake, "args"), None);

    let mut command = depot.command();
    command
        .args(["-A", "broken"])
        .env("BUILDKITE", "false")
        .env("PATH", &fake.path);
    assert!(!Run::new(&mut command).out.status.success());
    assert_eq!(recorded(&fake, "args"), None);
}
