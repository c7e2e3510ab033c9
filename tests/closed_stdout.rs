//! A closed stdout, or one whose reader goes away (`| head -c0`, a `$(…)` whose shell is
//! killed, a full disk): no panic, one error line, exit 7; the build and its GC roots stay
//! as they should be, so nothing is lost but the printing.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// The run's only line of ours is the error, naming the problem; no panic.
#[track_caller]
fn one_error_line(run: &Run, needle: &str) {
    run.fails_with(7).error_mentions(needle);
    assert_eq!(run.notes().len(), 1, "{}", run.explain());
    assert!(!run.stderr().contains("panicked"), "{}", run.explain());
}

/// Both links of the `gated` target point at its built outputs and are GC roots.
#[track_caller]
fn links_in_place(dir: &Path, run: &Run) {
    for (link, content) in [("result", "out\n"), ("result-dev", "dev\n")] {
        let link = dir.join(link);
        assert!(
            std::fs::read_link(&link).is_ok_and(|t| t.starts_with("/nix/store/")),
            "{} missing\n{}",
            link.display(),
            run.explain()
        );
        assert_eq!(std::fs::read_to_string(&link).unwrap(), content);
        assert!(is_gc_root(&link), "{} is not a GC root", link.display());
    }
}

/// The arguments that build `gated` by its .drv, or by re-evaluating it.
fn gated_args(depot: &Depot, fallback: bool) -> Vec<std::ffi::OsString> {
    match fallback {
        false => vec![os("--drv-path"), depot.instantiate("gated").into()],
        true => vec![
            os("--drv-path"),
            depot.collected_drv("gated").into(),
            os("-A"),
            os("gated"),
        ],
    }
}

#[test]
fn a_closed_stdout_is_refused_before_anything_is_built() {
    let (depot, gate) = Gate::depot();
    gate.open();
    for fallback in [false, true] {
        let args = gated_args(&depot, fallback);
        let run = Run::new(
            Command::new("sh")
                .arg("-c")
                .arg(r#"exec "$0" "$@" >&-"#)
                .arg(BIN)
                .args(&args)
                .current_dir(&depot.dir)
                .env("RUST_BACKTRACE", "1"),
        );
        one_error_line(
            &run,
            "stdout is closed, so the store paths cannot be printed",
        );
        assert_eq!(
            depot.outputs(),
            Vec::<std::path::PathBuf>::new(),
            "built although nothing could be printed"
        );
    }
}

/// Whether any process but `pid` has the pipe on `pid`'s descriptor `fd` open: its reader.
fn pipe_has_reader(pid: u32, fd: u32) -> bool {
    let Ok(pipe) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
        return false;
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&other| other != pid)
        .any(|other| {
            std::fs::read_dir(format!("/proc/{other}/fd")).is_ok_and(|fds| {
                fds.filter_map(|e| e.ok())
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == pipe))
            })
        })
}

#[test]
fn piped_into_head_c0_exits_7_with_the_build_and_roots_in_place() {
    for fallback in [false, true] {
        let (depot, gate) = Gate::depot();
        let args = gated_args(&depot, fallback);
        let shell = Spawned::start(
            Command::new("bash")
                .arg("-c")
                .arg(r#""$0" "$@" | head -c0; echo "status ${PIPESTATUS[0]}" >&2"#)
                .arg(BIN)
                .args(&args)
                .current_dir(&depot.dir)
                .env("RUST_BACKTRACE", "1")
                .stderr(Stdio::piped()),
        );
        let ours = shell.wait_for_child("nix-buildkite-b");
        wait_until(PATIENCE, "the build to start", || {
            !depot.builders().is_empty()
        });
        // head has read nothing and gone before the build can finish.
        wait_until(PATIENCE, "head to exit", || !pipe_has_reader(ours, 1));
        gate.open();
        let run = shell.finish(PATIENCE);
        run.stderr_contains("status 7");
        let stderr = run.stderr();
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("nix-buildkite-build: error:"))
            .collect();
        assert!(
            errors.len() == 1
                && errors[0].contains("closed (broken pipe)")
                && errors[0].ends_with("the build and its out-links are in place"),
            "{}",
            run.explain()
        );
        assert!(!run.stderr().contains("panicked"), "{}", run.explain());
        links_in_place(&depot.dir, &run);
    }
}

#[test]
fn a_command_substitution_whose_shell_is_killed_exits_7_with_the_build_in_place() {
    let (depot, gate) = Gate::depot();
    let args = gated_args(&depot, false);
    // The `$(…)` runs in a subshell that outlives the killed shell and records our status.
    let mut shell = Command::new("bash")
        .arg("-c")
        .arg(r#"paths=$("$0" "$@" 2>stderr; echo $? > status); echo "never reached""#)
        .arg(BIN)
        .args(&args)
        .current_dir(&depot.dir)
        .env("NIX_CONFIG", nix_config())
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(PATIENCE, "the build to start", || {
        !depot.builders().is_empty()
    });
    shell.kill().unwrap();
    shell.wait().unwrap();
    gate.open();
    wait_until(PATIENCE, "our status", || {
        std::fs::read_to_string(depot.path("status")).is_ok_and(|s| s.ends_with('\n'))
    });
    let run = Run {
        command: format!("paths=$({BIN} {args:?}) in a shell killed while it built"),
        out: std::process::Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(
                std::fs::read_to_string(depot.path("status"))
                    .unwrap()
                    .trim()
                    .parse::<i32>()
                    .unwrap()
                    << 8,
            ),
            stdout: Vec::new(),
            stderr: std::fs::read(depot.path("stderr")).unwrap(),
        },
    };
    one_error_line(&run, "closed (broken pipe)");
    links_in_place(&depot.dir, &run);
}

#[test]
fn a_full_stdout_exits_7_with_the_build_in_place() {
    let (depot, gate) = Gate::depot();
    gate.open();
    let args = gated_args(&depot, false);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let run = Run::new(
        depot
            .command()
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .stdout(full),
    );
    one_error_line(&run, "No space left on device");
    links_in_place(&depot.dir, &run);
}
