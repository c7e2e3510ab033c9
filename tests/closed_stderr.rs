//! A stderr whose reader has gone (`2>&1 | head -c0`, a log collector that died): the log
//! and our notes are lost, nothing else. No panic (whose status, 101, would hide the real
//! one): the build goes on, the paths are printed, failures keep their status.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A stderr for the run: a pipe whose reading end is already closed.
fn broken_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    Stdio::from(write)
}

fn run_without_stderr(command: &mut Command) -> Run {
    Run::new(command.env("RUST_BACKTRACE", "1").stderr(broken_pipe()))
}

#[test]
fn realising_builds_links_and_prints_without_a_stderr() {
    let depot = Depot::new();
    let drv = depot.instantiate("noisy");
    let run = run_without_stderr(
        depot
            .command()
            .args([os("-v"), os("--drv-path"), drv.into()]),
    );
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
    assert!(is_gc_root(&depot.path("result")));
}

#[test]
fn re_evaluating_goes_on_after_its_note_is_lost() {
    let depot = Depot::new();
    let drv = depot.collected_drv("noisy");
    let run = run_without_stderr(depot.command().args([
        os("-v"),
        os("--drv-path"),
        drv.into(),
        os("-A"),
        os("noisy"),
    ]));
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
    assert!(is_gc_root(&depot.path("result")));
}

#[test]
fn failures_keep_their_status_without_a_stderr() {
    let depot = Depot::new();
    let failed_build = depot.bare("nix-build", ["-A", "fails", "--no-out-link"]);
    for (args, status) in [
        (vec![os("-A"), os("fails")], failed_build.code().unwrap()),
        (vec![os("-A"), os("no.such.attribute")], 1),
        (
            vec![os("--drv-path"), depot.collected_drv("hello").into()],
            3,
        ),
        (vec![os("-A"), os("a..b")], 2),
    ] {
        run_without_stderr(depot.command().args(args)).fails_with(status);
    }
}

/// Started with stdin and stderr closed (`<&- 2>&-`, not a broken pipe), we open /dev/null
/// on them as Rust's start-up would, so that no file or pipe opened later takes their
/// numbers; Nix and the program `--exec` runs find them open.
#[test]
fn closed_stdin_and_stderr_are_opened_on_dev_null() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: { fds = derivation {
            name = "fds-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            args = [ "-c" "printf '#!/bin/sh\n/bin/readlink /proc/$$/fd/0 /proc/$$/fd/2\n' > $out; /bin/chmod +x $out" ]; }; }"#,
    );
    let mut command = depot.command();
    command.args(["-A", "fds", "--exec"]);
    // SAFETY: close(2) is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::libc::close(0);
            nix::libc::close(2);
            Ok(())
        });
    }
    let run = Run::new(&mut command);
    run.success();
    assert_eq!(run.stdout(), "/dev/null\n/dev/null\n", "{}", run.explain());
}
