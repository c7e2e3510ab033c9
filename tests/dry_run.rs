//! `--dry-run` says, shell-quoted, what Nix command would run, and runs nothing;
//! `-v` says it and runs it.

mod common;
use common::*;

#[test]
fn prints_the_realise_command_and_builds_nothing() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let run = depot.run([
        os("--dry-run"),
        os("--drv-path"),
        drv.clone().into(),
        os("-o"),
        os("it's"),
    ]);
    run.success();
    assert_eq!(
        run.stdout(),
        format!(
            "nix-store --realise {} --add-root '{}/it'\\''s' --indirect\n",
            drv.display(),
            depot.dir.display()
        )
    );
    assert!(!depot.path("it's").exists());
    assert_eq!(depot.outputs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn prints_a_runnable_fallback_command_and_builds_nothing() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    let run = depot.run([
        os("--dry-run"),
        os("--drv-path"),
        drv.clone().into(),
        os("--attr"),
        os("hello"),
        os("--argstr"),
        os("greeting"),
        os("hi"),
    ]);
    run.success();
    // The expression goes on stdin, a here-document after the command line.
    let stdout = run.stdout();
    let (line, expression) = stdout.split_once('\n').unwrap();
    let line = line
        .strip_suffix(" <<'NIX_BUILDKITE_BUILD_EXPRESSION'")
        .unwrap_or_else(|| panic!("no here-document: {line}"));
    assert!(expression.ends_with("\nNIX_BUILDKITE_BUILD_EXPRESSION\n"));
    let words = shell_words::split(line).unwrap();
    assert_eq!(
        words,
        [
            "nix-build",
            "-",
            "--argstr",
            "greeting",
            "hi",
            "--out-link",
            &depot.path("result").to_string_lossy(),
            "--show-trace",
        ]
    );
    assert!(!depot.path("result").exists() && !drv.exists());

    // What it printed is what it would run: running it by hand builds the target.
    let by_hand = Run::new(
        std::process::Command::new("bash")
            .args(["-c", &run.stdout()])
            .current_dir(&depot.dir),
    );
    by_hand.success();
    assert_eq!(
        std::fs::read_to_string(&by_hand.paths()[0]).unwrap(),
        "hi!\n"
    );
}
