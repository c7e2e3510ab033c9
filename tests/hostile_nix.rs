//! A hostile or broken Nix, injected as a FAKE `nix-store` or `nix-build` first on PATH
//! (real Nix cannot be made to misbehave like this): every fault ends in one error line and
//! the right status, and no path reaches stdout that was not verified to be an output of
//! the derivation asked for, present in the store.

mod common;
use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn run_faked(depot: &Depot, fake: &Fake, args: &[&std::ffi::OsStr]) -> Run {
    Run::new(depot.command().args(args).env("PATH", &fake.path))
}

fn realise_args(drv: &Path) -> Vec<&std::ffi::OsStr> {
    vec!["--drv-path".as_ref(), drv.as_os_str()]
}

#[test]
fn nix_store_printing_a_non_store_path_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new("nix-store", r#""$REAL" "$@" && echo /etc/passwd"#);
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions(
            "nix-store printed \"/etc/passwd\", which is not an output asked for; printing nothing",
        );
    // The real build and its link are in place all the same.
    assert!(target(&depot.path("result")).starts_with("/nix/store"));
}

#[test]
fn nix_build_printing_a_non_store_path_is_refused() {
    let depot = Depot::new();
    let fake = Fake::new("nix-build", r#""$REAL" "$@" && echo /etc/passwd"#);
    run_faked(&depot, &fake, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(6)
        .error_mentions("nix-build printed \"/etc/passwd\", which is not an output asked for");
}

#[test]
fn nix_store_linking_outside_the_store_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new(
        "nix-store",
        r#""$REAL" "$@" >/dev/null && ln -sfn /etc "$PWD/result" && echo "$PWD/result""#,
    );
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions("but it points to /etc, not a store path");
    assert_eq!(target(&depot.path("result")), Path::new("/etc"));
}

#[test]
fn nix_store_printing_nothing_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new("nix-store", r#""$REAL" "$@" >/dev/null"#);
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions("nix-store did not report output out of");
}

#[test]
fn nix_store_printing_the_link_twice_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new(
        "nix-store",
        r#"out=$("$REAL" "$@") && echo "$out" && echo "$out""#,
    );
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions(&format!(
            "nix-store printed {:?}, which is not an output asked for",
            depot.path("result")
        ));
}

#[test]
fn nix_store_printing_a_path_with_trailing_bytes_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new(
        "nix-store",
        r#"out=$("$REAL" "$@") && printf '%s \n' "$out""#,
    );
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions(&format!(
            "nix-store printed \"{} \", which is not an output asked for",
            depot.path("result").display()
        ));
}

#[test]
fn nix_store_printing_over_a_mebibyte_is_refused_without_blocking_it() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    // 2 MiB after the real line: the fake blocks on a full pipe unless all of it is read.
    let fake = Fake::new(
        "nix-store",
        r#""$REAL" "$@" && head -c 2097152 /dev/zero | tr '\0' x"#,
    );
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions("nix-store printed over 1 MiB on stdout, which is no list of paths");
}

#[test]
fn nix_store_reporting_outputs_it_did_not_build_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    // The derivation's own output path, printed and linked but never built.
    let fake = Fake::new(
        "nix-store",
        r#"for a in "$@"; do case "$a" in *.drv) out=$("$REAL" -q --outputs "$a");; esac; done
case " $* " in
  *" --add-root "*) ln -sfn "$out" "$PWD/result" && echo "$PWD/result" ;;
  *) echo "$out" ;;
esac"#,
    );
    let expected = String::from_utf8(
        nix(
            &depot.dir,
            "nix-store",
            [
                std::ffi::OsStr::new("-q"),
                "--outputs".as_ref(),
                drv.as_os_str(),
            ],
        )
        .stdout,
    )
    .unwrap();
    let expected = expected.trim();
    // Nix runs once more, as it would after a garbage collection took the output; then
    // the run fails, printing nothing.
    let not_built = format!("{expected} is not in the store though Nix ran 2 times");
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(9)
        .error_mentions(&not_built);
    let mut args = realise_args(&drv);
    args.push("--no-out-link".as_ref());
    run_faked(&depot, &fake, &args)
        .fails_with(9)
        .error_mentions(&not_built)
        .stderr_contains("was deleted by a garbage collection as Nix finished; running Nix again");
    assert!(!Path::new(expected).exists(), "the fake built it after all");
}

#[test]
fn nix_store_linking_another_derivations_output_is_refused() {
    let depot = Depot::new();
    let other = depot.run(["-A", "noisy", "-o", "other"]);
    other.success();
    let other = &other.paths()[0];
    let drv = depot.instantiate("hello");
    let fake = Fake::new(
        "nix-store",
        &format!(
            r#""$REAL" "$@" >/dev/null && ln -sfn '{}' "$PWD/result" && echo "$PWD/result""#,
            other.display()
        ),
    );
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(6)
        .error_mentions(&format!(
            "but it points to {}, not /nix/store/",
            other.display()
        ));
}

#[test]
fn nix_store_dying_of_a_signal_exits_128_plus_n_and_prints_nothing() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    // After building and printing the link, as if it crashed on the way out.
    let fake = Fake::new("nix-store", r#""$REAL" "$@" && kill -SEGV $$"#);
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(128 + 11)
        .error_mentions("nix-store failed with signal 11 (SIGSEGV)");
    let fake = Fake::new("nix-store", r#"kill -KILL $$"#);
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(128 + 9)
        .error_mentions("nix-store failed with signal 9 (SIGKILL)");
}

#[test]
fn nix_store_failing_after_printing_the_link_prints_nothing() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new("nix-store", r#""$REAL" "$@"; exit 42"#);
    run_faked(&depot, &fake, &realise_args(&drv))
        .fails_with(42)
        .error_mentions("nix-store failed with exit status 42");
}

/// A background process the FAKE leaves holding Nix's stdout (and stderr) open, as a
/// wrapper that starts a daemon would: we must finish when Nix does, not when it does.
fn leaves_a_holder(pid_file: &Path, stderr_too: bool) -> String {
    // nix-store's stderr is ours, which the test itself reads to the end.
    let stderr = if stderr_too { "" } else { "2>/dev/null" };
    format!(
        r#"/bin/sleep 300 </dev/null {stderr} & echo $! > '{}'"#,
        pid_file.display()
    )
}

/// Kills the holder when dropped, even if the test failed.
struct Holder<'a>(&'a Path);

impl Drop for Holder<'_> {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.0).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse().ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// Runs us with `fake` on PATH and `stderr`, and expects the build of `hello` linked at
/// `result` within a minute, whatever the fake left behind.
fn builds_all_the_same(depot: &Depot, fake: &Fake, args: &[&std::ffi::OsStr], stderr: Stdio) {
    let run = Spawned::start(
        depot
            .command()
            .args(args)
            .env("PATH", &fake.path)
            .stdout(Stdio::piped())
            .stderr(stderr),
    );
    let run = run.finish(Duration::from_secs(60));
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
}

#[test]
fn a_process_left_holding_nix_store_stdout_does_not_hang_us() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let pid_file = depot.path("holder.pid");
    let _holder = Holder(&pid_file);
    let fake = Fake::new(
        "nix-store",
        &format!(
            r#""$REAL" "$@"; status=$?; {}; exit $status"#,
            leaves_a_holder(&pid_file, false)
        ),
    );
    builds_all_the_same(&depot, &fake, &realise_args(&drv), Stdio::piped());
}

#[test]
fn a_process_left_holding_nix_build_stdout_and_stderr_does_not_hang_us() {
    let depot = Depot::new();
    let pid_file = depot.path("holder.pid");
    let _holder = Holder(&pid_file);
    let fake = Fake::new(
        "nix-build",
        &format!(
            r#""$REAL" "$@"; status=$?; {}; exit $status"#,
            leaves_a_holder(&pid_file, true)
        ),
    );
    builds_all_the_same(
        &depot,
        &fake,
        &["-A".as_ref(), "hello".as_ref()],
        Stdio::piped(),
    );
}

#[test]
fn a_process_left_writing_to_nix_store_stderr_faster_than_it_is_read_does_not_hang_us() {
    // It writes from before Nix starts until its pipe is gone, faster than our stderr is
    // read (1 KiB a millisecond here), so that every read of ours comes back full: we
    // must still look for Nix's exit, and stop after what Nix left in the pipe.
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let pid_file = depot.path("writer.pid");
    let _writer = Holder(&pid_file);
    let fake = Fake::new(
        "nix-store",
        &format!(
            r#"/usr/bin/yes 'a line a process left behind writes' >&2 </dev/null &
echo $! > '{}'; "$REAL" "$@""#,
            pid_file.display()
        ),
    );
    let (slow_end, our_stderr) = nix::unistd::pipe().unwrap();
    let slow_reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut slow_end = std::fs::File::from(slow_end);
        let mut chunk = [0; 1024];
        while let Ok(1..) = slow_end.read(&mut chunk) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    builds_all_the_same(&depot, &fake, &realise_args(&drv), Stdio::from(our_stderr));
    slow_reader.join().unwrap();
}

#[test]
fn nix_build_printing_nothing_is_refused() {
    let depot = Depot::new();
    let fake = Fake::new("nix-build", r#""$REAL" "$@" >/dev/null"#);
    run_faked(&depot, &fake, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(6)
        .error_mentions("nix-build did not report output out of");
}

#[test]
fn nix_build_printing_another_derivations_output_is_refused() {
    let depot = Depot::new();
    let other = depot.run(["-A", "noisy", "--no-out-link"]);
    other.success();
    let other = &other.paths()[0];
    let fake = Fake::new(
        "nix-build",
        &format!(r#""$REAL" "$@" && echo '{}'"#, other.display()),
    );
    run_faked(&depot, &fake, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(6)
        .error_mentions(&format!(
            "nix-build printed {:?}, which is not an output asked for",
            other
        ));
}

#[test]
fn nix_build_without_its_report_line_is_refused() {
    let depot = Depot::new();
    // Drops the trace line the evaluated expression prints, as a Nix without
    // builtins.trace output (or a wrapper filtering the log) would.
    let fake = Fake::new(
        "nix-build",
        r#"{ "$REAL" "$@" 2>&1 1>&3 3>&- | grep -v '@nix-buildkite-build-report' >&2; } 3>&1"#,
    );
    run_faked(&depot, &fake, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(6)
        .error_mentions("nix-build succeeded without reporting what it evaluated");
}

#[test]
fn nix_build_reporting_outputs_it_did_not_build_is_refused() {
    let depot = Depot::new();
    // Passes the evaluation's report on, then prints the outputs without building them.
    let fake = Fake::new(
        "nix-build",
        r#"report=$("$REAL" "$@" --dry-run 2>&1 >/dev/null | grep '@nix-buildkite-build-report')
echo "$report" >&2
echo "$report" | sed 's/.*"path":"\([^"]*\)".*/\1/'"#,
    );
    let run = run_faked(
        &depot,
        &fake,
        &["-A".as_ref(), "hello".as_ref(), "--no-out-link".as_ref()],
    );
    run.fails_with(9)
        .error_mentions("is not in the store though Nix ran 2 times");
}

#[test]
fn nix_build_dying_of_a_signal_exits_128_plus_n_and_prints_nothing() {
    let depot = Depot::new();
    let fake = Fake::new("nix-build", r#""$REAL" "$@" && kill -ABRT $$"#);
    run_faked(&depot, &fake, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(128 + 6)
        .error_mentions("nix-build failed with signal 6 (SIGABRT)");
}

/// A FAKE nix-build that is a script without `#!`, which is run through /bin/sh as a shell
/// would run it, given 60,000 arguments: starting it copies every argument pointer onto
/// the stack we give the new process, which must have room for them.
#[test]
fn a_nix_build_without_a_shebang_starts_with_60000_arguments() {
    let depot = Depot::new();
    let fake = Fake::with_text(
        "nix-build",
        "# FAKE nix-build, without #!\necho \"$#\" >&2\nexit 42\n",
    );
    let mut args = vec![os("-A"), os("hello")];
    for i in 0..20_000 {
        args.extend([os("--arg"), os(&format!("a{i}")), os("1")]);
    }
    let run = Run::new(depot.command().args(args).env("PATH", &fake.path));
    run.fails_with(42);
    let counted: usize = run
        .stderr()
        .lines()
        .next()
        .unwrap_or("")
        .parse()
        .unwrap_or(0);
    assert!(counted > 60_000, "{}", run.explain());
}
