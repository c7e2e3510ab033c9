//! Buildkite log groups: with BUILDKITE=true (or --log-groups), `--- ` headers on stderr so
//! the log folds, `^^^ +++` to open a failed group and `+++ ` for the failure summary, open;
//! never anything on stdout. (Under BUILDKITE=true a failure is also annotated, here by a
//! FAKE buildkite-agent: `annotation.rs`.)

mod common;
use common::*;

fn headers(run: &Run) -> Vec<String> {
    run.stderr()
        .lines()
        .filter(|l| ["--- ", "^^^ ", "+++ "].iter().any(|h| l.starts_with(h)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn groups_the_build_the_fallback_and_the_program_when_on_buildkite() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let agent = Fake::with_text(
        "buildkite-agent",
        "#!/bin/sh\n# FAKE buildkite-agent\nexit 0\n",
    );
    let run = Run::new(
        depot
            .command()
            .args([os("--drv-path"), drv.clone().into()])
            .env("BUILDKITE", "true")
            .env("PATH", &agent.path),
    );
    run.success();
    assert_eq!(headers(&run), [format!("--- Realising {}", drv.display())]);
    assert_eq!(run.paths().len(), 1, "{}", run.explain());

    let gone = depot.collected_drv("script");
    let run = depot.run([
        os("--log-groups"),
        os("--drv-path"),
        gone.into(),
        os("-A"),
        os("script"),
        os("--exec"),
    ]);
    run.success();
    let program = target(&depot.path("result"));
    assert_eq!(
        headers(&run),
        [
            "--- Re-evaluating script".to_owned(),
            format!("--- Running {}", program.display())
        ]
    );
    assert_eq!(run.stdout(), "script ran with: \n");
}

#[test]
fn opens_the_failed_group_and_stays_quiet_off_buildkite() {
    let depot = Depot::new();
    let agent = Fake::with_text(
        "buildkite-agent",
        "#!/bin/sh\n# FAKE buildkite-agent\nexit 0\n",
    );
    let run = Run::new(
        depot
            .command()
            .args(["-A", "fails"])
            .env("BUILDKITE", "true")
            .env("PATH", &agent.path),
    );
    assert!(!run.out.status.success(), "{}", run.explain());
    assert_eq!(
        headers(&run),
        [
            "--- Re-evaluating fails".to_owned(),
            "^^^ +++".to_owned(),
            format!("+++ 1 derivation failed: fails-{}", depot.nonce)
        ]
    );

    let run = Run::new(
        depot
            .command()
            .args(["-A", "fails"])
            .env("BUILDKITE", "false"),
    );
    assert_eq!(headers(&run), Vec::<String>::new());
}
