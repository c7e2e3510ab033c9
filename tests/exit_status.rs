//! Nix's exit status comes out unchanged, from either path; a signal that killed Nix
//! comes out as 128+N. (The one-liner turned all of these into 1.)

mod common;
use common::*;
use std::process::Stdio;

#[test]
fn a_failed_build_keeps_nix_status_on_both_paths() {
    let depot = Depot::new();
    let drv = depot.instantiate("fails");
    let bare = depot.bare("nix-store", [os("--realise"), drv.clone().into()]);
    let code = bare.code().filter(|&c| c != 0).expect("the build fails");
    let realised = depot.run([os("--drv-path"), drv.into()]);
    realised.fails_with(code).error_mentions(&format!(
        "nix-store failed with exit status {code}: $ nix-store --realise"
    ));
    realised.stderr_contains("this build fails");

    let bare = depot.bare("nix-build", ["-A", "fails", "--no-out-link"]);
    let code = bare.code().filter(|&c| c != 0).expect("the build fails");
    let drv = depot.collected_drv("fails");
    let evaluated = depot.run([os("--drv-path"), drv.into(), os("--attr"), os("fails")]);
    evaluated.fails_with(code).error_mentions(&format!(
        "nix-build failed with exit status {code}: $ nix-build - "
    ));
    evaluated.stderr_contains("this build fails");
    assert!(!depot.path("result").exists());
}

#[test]
fn a_timed_out_build_keeps_nix_status() {
    let depot = Depot::new();
    let drv = depot.instantiate("slow");
    let timeout = [os("--option"), os("timeout"), os("1")];
    let bare = depot.bare(
        "nix-store",
        [os("--realise"), drv.clone().into()].iter().chain(&timeout),
    );
    bare.stderr_contains("timed out");
    let run = depot.run([os("--drv-path"), drv.into()].iter().chain(&timeout));
    run.fails_with(bare.code().unwrap())
        .stderr_contains("timed out");
}

#[test]
fn a_hash_mismatch_keeps_nix_status() {
    let depot = Depot::new();
    let bare = depot.bare("nix-build", ["-A", "badHash", "--no-out-link"]);
    bare.stderr_contains("hash mismatch");
    depot
        .run(["-A", "badHash"])
        .fails_with(bare.code().unwrap())
        .stderr_contains("hash mismatch");
}

#[test]
fn an_attribute_that_does_not_evaluate_shows_nix_error_and_exits_1() {
    let depot = Depot::new();
    depot
        .run(["--attr", "brokenEval"])
        .fails_with(1)
        .stderr_contains("this attribute does not evaluate")
        // An error in the user's code keeps its trace (--show-trace is the default).
        .stderr_contains("while evaluating")
        .error_mentions("nix-build failed with exit status 1");
}

/// A mistyped attribute path is our one line, with Nix's status for an evaluation error,
/// not a trace through our own expression (`--show-trace` is on by default).
#[test]
fn an_attribute_path_naming_no_derivation_is_one_line_and_exits_1() {
    let depot = Depot::new();
    for (path, error) in [
        (
            "nested.missing.leaf",
            "cannot build nested.missing.leaf: nested has no attribute missing",
        ),
        (
            "nope",
            &format!(
                "cannot build nope: the root ({}) has no attribute nope",
                depot.dir.display()
            ),
        ),
        (
            "hello.name.x",
            "cannot build hello.name.x: hello.name is a string, which has no attributes",
        ),
        (
            "notADerivation",
            "cannot build notADerivation: it is an attribute set, not a derivation",
        ),
    ] {
        let run = depot.run(["-A", path]);
        run.fails_with(1).error_mentions(error);
        // Nix may warn of a busy store on a loaded machine; nothing else is printed.
        let stderr = run.stderr();
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .collect();
        assert_eq!(lines.len(), 1, "{}", run.explain());
    }
    assert_eq!(depot.outputs(), Vec::<std::path::PathBuf>::new());
}

/// Realises a slow build, sends `signal` to its nix-store once that runs, and returns our
/// exit status and stderr, having checked that nothing reached stdout.
fn kill_nix_store_while_realising(signal: i32) -> (Option<i32>, String) {
    let depot = Depot::new();
    let drv = depot.instantiate("slow");
    let child = depot
        .command()
        .args([os("--drv-path"), drv.into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let nix_store = wait_for_child_named(child.id(), "nix-store");
    // libc's kill, not the nix crate's, whose Signal cannot name a real-time signal.
    // SAFETY: kill(2) touches no memory of ours.
    assert_eq!(unsafe { nix::libc::kill(nix_store as i32, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.stdout.is_empty(), "{stderr}");
    (out.status.code(), stderr)
}

#[test]
fn nix_killed_by_a_signal_exits_128_plus_n() {
    let (code, stderr) = kill_nix_store_while_realising(nix::libc::SIGKILL);
    assert_eq!(code, Some(128 + 9), "{stderr}");
    assert!(
        stderr.contains("nix-store failed with signal 9 (SIGKILL)"),
        "{stderr}"
    );
}

/// Real-time signals too, which the nix crate's wait functions cannot name.
#[test]
fn nix_killed_by_a_real_time_signal_exits_128_plus_n() {
    let signal = nix::libc::SIGRTMIN() + 3;
    let (code, stderr) = kill_nix_store_while_realising(signal);
    assert_eq!(code, Some(128 + signal), "{stderr}");
    assert!(
        stderr.contains(&format!("nix-store failed with signal {signal}")),
        "{stderr}"
    );
}

#[test]
fn a_missing_nix_exits_127_with_a_sentence() {
    let depot = Depot::new();
    Run::new(
        depot
            .command()
            .args(["-A", "hello"])
            .env("PATH", "/nonexistent"),
    )
    .fails_with(127)
    .error_mentions("nix-build not found on PATH; is Nix installed?");
    let drv = depot.instantiate("hello");
    Run::new(
        depot
            .command()
            .args([os("--drv-path"), drv.into()])
            .env("PATH", "/nonexistent"),
    )
    .fails_with(127)
    .error_mentions("nix-store not found on PATH; is Nix installed?");
}

/// The pid of the first child of `parent` whose command is `name`, once it has started.
fn wait_for_child_named(parent: u32, name: &str) -> u32 {
    let mut found = Vec::new();
    wait_until(PATIENCE, &format!("{name} to start under {parent}"), || {
        found = children_named(parent, name);
        !found.is_empty()
    });
    // Let it get as far as building.
    std::thread::sleep(std::time::Duration::from_millis(300));
    found[0]
}
