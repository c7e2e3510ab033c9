//! The drift check: when the fallback re-evaluates, a .drv other than the recorded one means
//! the tree changed since the pipeline was generated. A warning, or under `--strict` an
//! error (exit 5) before anything is built.

mod common;
use common::*;

/// A recorded .drv for `hello`, collected, and the depot then changed so `hello` differs.
fn drifted() -> (Depot, std::path::PathBuf) {
    let depot = Depot::new();
    let recorded = depot.collected_drv("hello");
    let text = std::fs::read_to_string(depot.path("default.nix")).unwrap();
    std::fs::write(
        depot.path("default.nix"),
        text.replace("greeting ? \"hello\"", "greeting ? \"changed\""),
    )
    .unwrap();
    (depot, recorded)
}

#[test]
fn warns_naming_both_drvs_and_builds_the_new_one() {
    let (depot, recorded) = drifted();
    let now = depot.instantiate("hello");
    let run = depot.run([
        os("--drv-path"),
        recorded.clone().into(),
        os("--attr"),
        os("hello"),
    ]);
    run.success().stderr_contains(&format!(
        "nix-buildkite-build: warning: hello now evaluates to {}, not to {} as recorded",
        now.display(),
        recorded.display()
    ));
    assert_eq!(
        std::fs::read_to_string(&run.paths()[0]).unwrap(),
        "changed!\n"
    );
}

#[test]
fn strict_refuses_before_building() {
    let (depot, recorded) = drifted();
    let run = depot.run([
        os("--strict"),
        os("--drv-path"),
        recorded.into(),
        os("--attr"),
        os("hello"),
    ]);
    run.fails_with(5)
        .error_mentions("(--strict: nothing built)");
    assert!(!depot.path("result").exists());
    assert_eq!(
        depot.outputs(),
        Vec::<std::path::PathBuf>::new(),
        "built something"
    );
}

#[test]
fn no_drift_no_warning() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    let run = depot.run([
        os("--strict"),
        os("--drv-path"),
        drv.into(),
        os("--attr"),
        os("hello"),
    ]);
    run.success();
    // Ours, that is: Nix warns of its own when tests share the store ("SQLite database
    // ... is busy"), and every warning of ours starts so (`log::warn`).
    assert!(
        !run.stderr().contains("nix-buildkite-build: warning"),
        "{}",
        run.explain()
    );
}
