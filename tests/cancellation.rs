//! Cancellation: SIGTERM, SIGINT or SIGHUP while Nix builds is passed on to Nix, and once Nix
//! has stopped we end by that signal, whatever status Nix chose. No Nix process or builder
//! outlives us, whether the signal comes to us alone or to our whole process group (as
//! Buildkite sends it), on the realise path (nix-store) and the fallback (nix-build). A
//! cancel that comes after Nix has finished stops `--exec` from running the program.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

/// The run printed one line saying it was cancelled by `signal`, and then ended by it, as a
/// shell's child killed by it (the shell reports 128+N).
#[track_caller]
fn cancelled_by(run: &Run, signal: Signal) {
    let number = signal as i32;
    run.error_mentions(&format!(
        "cancelled by signal {number} ({signal}); Nix has stopped"
    ));
    assert_eq!(
        run.out.status.signal(),
        Some(number),
        "not ended by {signal}\n{}",
        run.explain()
    );
}

/// Nix kills its builder's process group with SIGKILL and waits for the builder alone, so
/// what the builder started may take a moment longer to go; through a daemon, Nix exits
/// and the daemon stops the build when it sees the connection close, a moment later. Both
/// well before the 60 s build would end by itself.
#[track_caller]
fn builders_stop(depot: &Depot) {
    wait_until(Duration::from_secs(30), "the builders to stop", || {
        depot.builders().is_empty()
    });
}

/// Which Nix program a run of the `slow` target starts, and the arguments for it.
enum Path {
    Realise,
    Fallback,
}

fn start_slow(depot: &Depot, path: &Path) -> (Spawned, &'static str) {
    let (args, program) = match path {
        Path::Realise => (
            vec![os("--drv-path"), depot.instantiate("slow").into()],
            "nix-store",
        ),
        Path::Fallback => (
            vec![
                os("--drv-path"),
                depot.collected_drv("slow").into(),
                os("-A"),
                os("slow"),
            ],
            "nix-build",
        ),
    };
    let run = Spawned::start(
        depot
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    (run, program)
}

/// Starts the slow build, waits until its builder runs, sends `signal` and checks the
/// run ends cancelled with nothing left running.
fn cancel(path: Path, signal: Signal, group: bool) {
    let depot = Depot::new();
    let (run, program) = start_slow(&depot, &path);
    let nix = run.wait_for_child(program);
    // Its log line, not just its process: the builder is under way, as Nix sees it.
    wait_until(PATIENCE, "the slow builder to start", || {
        run.stderr_so_far().contains("slow build started") && !depot.builders().is_empty()
    });
    run.signal(signal, group);
    let signalled = std::time::Instant::now();
    let run = run.finish(PATIENCE);
    // The build takes 60 s, so a Nix that never got the signal would still be building.
    assert!(
        signalled.elapsed() < Duration::from_secs(45),
        "Nix went on building\n{}",
        run.explain()
    );
    cancelled_by(&run, signal);
    // What was building, named: Nix's log read as it is, whose builds are told from those
    // that ended by their outputs.
    let named = format!(
        "nix-buildkite-build: cancelled by {} while building: slow-{} (",
        signal.as_str(),
        depot.nonce
    );
    run.stderr_contains(&named);
    assert!(!alive(nix), "{program} outlived us\n{}", run.explain());
    builders_stop(&depot);
    assert!(!depot.path("result").exists(), "{}", run.explain());
}

#[test]
fn sigterm_while_realising_stops_nix_and_ends_by_it() {
    cancel(Path::Realise, Signal::SIGTERM, false);
}

#[test]
fn sigint_while_realising_stops_nix_and_ends_by_it() {
    cancel(Path::Realise, Signal::SIGINT, false);
}

#[test]
fn sighup_while_realising_stops_nix_and_ends_by_it() {
    cancel(Path::Realise, Signal::SIGHUP, false);
}

#[test]
fn sigterm_while_re_evaluating_stops_nix_build_and_ends_by_it() {
    cancel(Path::Fallback, Signal::SIGTERM, false);
}

#[test]
fn sigint_while_re_evaluating_stops_nix_build_and_ends_by_it() {
    cancel(Path::Fallback, Signal::SIGINT, false);
}

#[test]
fn sighup_while_re_evaluating_stops_nix_build_and_ends_by_it() {
    cancel(Path::Fallback, Signal::SIGHUP, false);
}

#[test]
fn sigterm_to_the_process_group_while_realising_ends_by_it() {
    cancel(Path::Realise, Signal::SIGTERM, true);
}

#[test]
fn sigint_to_the_process_group_while_re_evaluating_ends_by_it() {
    cancel(Path::Fallback, Signal::SIGINT, true);
}

/// A FAKE nix-store that runs the real one and shrugs off the first signal (as a Nix busy
/// with something that cannot be interrupted might); at the second it stops the real one,
/// waits for it and exits 0, as if it had succeeded.
const STUBBORN: &str = r#"
"$REAL" "$@" & nix=$!
count=0
trap 'count=$((count+1)); echo "FAKE nix-store: signal $count" >&2
      if [ $count -ge 2 ]; then kill -TERM $nix; wait $nix; exit 0; fi' TERM INT HUP
status=0
while kill -0 $nix 2>/dev/null; do wait $nix; status=$?; done
exit $status
"#;

#[test]
fn a_second_signal_reaches_nix_and_a_nix_exiting_0_still_means_cancelled() {
    let depot = Depot::new();
    let fake = Fake::new("nix-store", STUBBORN);
    let run = Spawned::start(
        depot
            .command()
            .args([os("--drv-path"), depot.instantiate("slow").into()])
            .env("PATH", &fake.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let fake_pid = run.wait_for_child("nix-store");
    wait_until(PATIENCE, "the slow builder to start", || {
        !depot.builders().is_empty()
    });
    let real = children_named(fake_pid, "nix-store");
    assert_eq!(real.len(), 1, "the real nix-store is not running");

    run.signal(Signal::SIGTERM, false);
    wait_until(PATIENCE, "the fake to get the first signal", || {
        run.stderr_so_far().contains("FAKE nix-store: signal 1")
    });
    // Still building: we wait for Nix rather than leave it behind.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(run.pid()) && !depot.builders().is_empty(),
        "gave up on Nix after one signal\n{}",
        run.stderr_so_far()
    );

    run.signal(Signal::SIGINT, false);
    let run = run.finish(PATIENCE);
    run.stderr_contains("FAKE nix-store: signal 2");
    // The first signal decides the status; Nix's 0 does not turn it into success.
    cancelled_by(&run, Signal::SIGTERM);
    assert!(!alive(fake_pid) && !alive(real[0]), "{}", run.explain());
    builders_stop(&depot);
}

#[test]
fn sigkill_to_us_alone_still_stops_nix_and_its_builder() {
    let depot = Depot::new();
    // Not piped: Nix inherits our stderr, and reading it to the end would wait for Nix.
    let run = Spawned::start(
        depot
            .command()
            .args([os("--drv-path"), depot.instantiate("slow").into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let nix = run.wait_for_child("nix-store");
    wait_until(PATIENCE, "the slow builder to start", || {
        !depot.builders().is_empty()
    });
    // SIGKILL cannot be caught, so nothing of ours can pass it on: Nix learns of it from
    // its parent-death signal. Well within the build's 60 s, Nix and its builder are gone.
    run.signal(Signal::SIGKILL, false);
    let run = run.finish(PATIENCE);
    assert_eq!(run.out.status.code(), None, "{}", run.explain());
    wait_until(Duration::from_secs(30), "nix-store to stop", || !alive(nix));
    builders_stop(&depot);
}

#[test]
fn a_signal_ignored_when_we_started_stays_ignored_as_under_nohup() {
    let (depot, gate) = Gate::depot();
    let drv = depot.instantiate("gated");
    // `trap '' HUP` is what nohup does; the disposition passes to us through exec.
    let run = Spawned::start(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' HUP; exec "$0" "$@""#)
            .arg(BIN)
            .args([os("--drv-path"), drv.into()])
            .current_dir(&depot.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    run.wait_for_child("nix-store");
    wait_until(PATIENCE, "the gated builder to start", || {
        !depot.builders().is_empty()
    });
    run.signal(Signal::SIGHUP, false);
    std::thread::sleep(Duration::from_millis(300));
    gate.open();
    let run = run.finish(PATIENCE);
    run.success();
    assert_eq!(
        run.paths(),
        [
            target(&depot.path("result")),
            target(&depot.path("result-dev"))
        ]
    );
}

/// A program whose build waits for `@gate@` to exist.
const GATED_PROGRAM: &str = r#"
    { }: {
      program = derivation {
        name = "program-@nonce@";
        builder = "/bin/sh";
        system = builtins.currentSystem;
        args = [ "-c" ''
          i=0
          while [ ! -e '@gate@' ] && [ $i -lt 2400 ]; do /bin/sleep 0.05; i=$((i+1)); done
          printf '#!/bin/sh\necho program ran\n' > $out
          /bin/chmod +x $out
        '' "nbb-builder-@nonce@" ];
      };
    }
"#;

/// Whether a thread of `pid` waits to write into a full pipe.
fn blocked_writing(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(|task| task.ok()).any(|task| {
        std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
    })
}

/// Reads what is in the pipe now.
fn drain(reader: &std::fs::File, into: &mut Vec<u8>) {
    use std::io::Read;
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = (&*reader).read(&mut chunk) {
        into.extend_from_slice(&chunk[..n]);
    }
}

/// Fills the pipe to the last byte, so that the next write to it waits.
fn fill(filler: &std::fs::File) {
    use std::io::Write;
    for size in [4096, 1] {
        while (&*filler).write(&vec![b'.'; size]).is_ok() {}
    }
}

/// `--exec` after a cancel: a SIGTERM that arrives once Nix has finished, just before we
/// would exec the program, still cancels the step. Our stderr is made a full pipe once Nix
/// is building, so that the `--- Running` line we write before exec waits until the test
/// has sent the signal.
#[test]
fn a_sigterm_after_nix_has_finished_stops_exec_from_running_the_program() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let depot = Depot::empty();
    let gate = depot.path("gate");
    let gate_path = gate.to_str().expect("temporary directory not UTF-8");
    depot.write("default.nix", &GATED_PROGRAM.replace("@gate@", gate_path));
    let drv = depot.instantiate("program");

    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let reader = std::fs::File::from(reader);
    let nonblocking = |fd: &std::fs::File, on: bool| {
        let flags = if on {
            nix::fcntl::OFlag::O_NONBLOCK
        } else {
            nix::fcntl::OFlag::empty()
        };
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    };
    nonblocking(&reader, true);
    // A way into the pipe of the test's own that never waits: O_NONBLOCK on the run's end
    // would make the run's writes fail instead of wait.
    let filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", writer.as_raw_fd()))
        .unwrap();
    let run = Spawned::start(
        depot
            .command()
            .args([
                os("--log-groups"),
                os("--drv-path"),
                drv.into(),
                os("--exec"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(writer)),
    );
    let mut log = Vec::new();
    wait_until(PATIENCE, "the build to start", || {
        drain(&reader, &mut log);
        !depot.builders().is_empty() && String::from_utf8_lossy(&log).contains("building '")
    });
    // Nix says nothing more once it builds, but for "waiting for the big garbage collector
    // lock..." while a deletion holds that lock.
    let deletions = no_deletions();
    // From now on the pipe stays full but for a write of Nix's, which passes through the run.
    fill(&filler);
    std::fs::write(&gate, "").unwrap();
    wait_until(PATIENCE, "the run to wait to write `--- Running`", || {
        // Looked at before Nix is: a run that waits to write goes on waiting until the pipe
        // is drained, so the Nix seen next is the one whose write it may be.
        let waits = blocked_writing(run.pid());
        // Until the run has reaped Nix, a write it waits on may be Nix's: what Nix said last
        // passes through after it has exited. Once Nix is reaped, `--- Running` is all that
        // is left to write before exec.
        if unreaped_children_named(run.pid(), "nix-store").is_empty() {
            return waits;
        }
        if waits {
            drain(&reader, &mut log);
            fill(&filler);
        }
        false
    });
    run.signal(Signal::SIGTERM, false);
    drop(deletions);

    drop(filler);
    nonblocking(&reader, false);
    let rest = std::thread::spawn(move || {
        drain(&reader, &mut log);
        log
    });
    let mut run = run.finish(PATIENCE);
    run.out.stderr = rest.join().unwrap();
    assert!(!run.stdout().contains("program ran"), "{}", run.explain());
    run.stderr_contains("--- Running");
    cancelled_by(&run, Signal::SIGTERM);
}

/// A FAKE buildkite-agent that records its arguments and stdin.
fn recording_agent() -> Fake {
    Fake::with_text(
        "buildkite-agent",
        "#!/bin/sh\n# FAKE buildkite-agent, recording how it is called.\n\
         dir=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$dir/args\"\ncat > \"$dir/body\"\n",
    )
}

/// A cancel says what it stopped: within 2 s, stderr names the build that was running and
/// for how long, in a group that opens; the annotation (style `warning`), `--json` and the
/// JUnit file say the same; the run still ends by the signal, with nothing left running.
fn a_cancel_names_what_was_building(path: Path) {
    let depot = Depot::new();
    let agent = recording_agent();
    let args = match path {
        Path::Realise => vec![os("--drv-path"), depot.instantiate("slow").into()],
        Path::Fallback => vec![
            os("--drv-path"),
            depot.collected_drv("slow").into(),
            os("-A"),
            os("slow"),
        ],
    };
    let run = Spawned::start(
        depot
            .command()
            .args(args)
            .args(["--json", "--junit", "junit.xml"])
            .env("BUILDKITE", "true")
            .env("BUILDKITE_JOB_ID", "job-1")
            .env("PATH", &agent.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    wait_until(PATIENCE, "the slow builder to start", || {
        run.stderr_so_far().contains("slow build started") && !depot.builders().is_empty()
    });
    // So that the build has run for a second or more when it is named.
    std::thread::sleep(Duration::from_millis(1100));
    run.signal(Signal::SIGTERM, true);
    let signalled = std::time::Instant::now();
    let named = format!(
        "+++ cancelled by SIGTERM while building: slow-{} (",
        depot.nonce
    );
    wait_until(PATIENCE, "the cancel to be named", || {
        run.stderr_so_far().contains(&named)
    });
    let took = signalled.elapsed();
    let run = run.finish(PATIENCE);
    assert!(
        took < Duration::from_secs(2),
        "named after {took:?}\n{}",
        run.explain()
    );
    run.ended_by(Signal::SIGTERM);
    let stderr = run.stderr();
    let line = stderr.lines().find(|l| l.starts_with(&named)).unwrap();
    let seconds: u64 = line[named.len()..].trim_end_matches(" s)").parse().unwrap();
    assert!((1..50).contains(&seconds), "{line}");
    assert!(
        stderr.contains(&format!("^^^ +++\n{named}")),
        "{}",
        run.explain()
    );
    assert!(
        stderr.ends_with(
            "nix-buildkite-build: error: cancelled by signal 15 (SIGTERM); Nix has stopped\n"
        ),
        "{}",
        run.explain()
    );

    let json = run.json();
    assert_eq!(json["targets"][0]["status"], "cancelled", "{json}");
    assert_eq!(json["targets"][0]["failure"]["kind"], "cancelled", "{json}");
    let build = &json["builds"][0];
    assert_eq!(build["status"], "cancelled", "{json}");
    assert!(build["seconds"].as_f64().unwrap() >= 1.0, "{json}");

    let xml = std::fs::read_to_string(depot.path("junit.xml")).unwrap();
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}):\n{xml}"));
    let report = junit_parser::from_reader(xml.as_bytes()).unwrap();
    assert_eq!((report.tests, report.skipped), (1, 1), "{xml}");
    let junit_parser::TestStatus::Skipped(skipped) = &report.suites[0].cases[0].status else {
        panic!("not skipped:\n{xml}");
    };
    assert_eq!(
        skipped.message,
        format!("cancelled by SIGTERM while building slow-{}", depot.nonce)
    );

    let args = std::fs::read_to_string(agent.dir.path().join("args")).unwrap();
    assert_eq!(
        args,
        "annotate\n--style\nwarning\n--context\nnix-buildkite-build-job-1\n"
    );
    let body = std::fs::read_to_string(agent.dir.path().join("body")).unwrap();
    assert!(
        body.contains("cancelled by SIGTERM while building"),
        "{body}"
    );
    builders_stop(&depot);
}

#[test]
fn a_cancel_while_realising_names_what_was_building() {
    a_cancel_names_what_was_building(Path::Realise);
}

#[test]
fn a_cancel_while_re_evaluating_names_what_was_building() {
    a_cancel_names_what_was_building(Path::Fallback);
}

/// A builder whose log says `building '…'` of a derivation, as Nix does: the report of the
/// cancel is made all the same (it once indexed past its list of builds, and panicked).
#[test]
fn a_builder_line_that_reads_as_nix_does_not_break_the_report_of_a_cancel() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"
        { }:
        let
          build = name: script: derivation {
            name = "${name}-@nonce@";
            builder = "/bin/sh";
            args = [ "-c" script "nbb-builder-@nonce@" ];
            system = builtins.currentSystem;
          };
          other = build "other" "/bin/sleep 60; echo > $out";
          talks = build "talks" ''
            echo "building '${builtins.unsafeDiscardStringContext other.drvPath}'..." >&2
            echo "building '${builtins.unsafeDiscardStringContext other.drvPath}'..." >&2
            echo 'slow build started' >&2
            /bin/sleep 60; echo > $out
          '';
        in { both = build "both" "echo ${talks} ${other} > $out"; }
        "#,
    );
    let run = Spawned::start(
        depot
            .command()
            .args(["-A", "both", "-j", "2", "--json", "--junit", "junit.xml"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    wait_until(PATIENCE, "the talking builder to start", || {
        run.stderr_so_far().contains("slow build started")
    });
    run.signal(Signal::SIGTERM, true);
    let run = run.finish(PATIENCE);
    run.ended_by(Signal::SIGTERM);
    let json = run.json();
    assert_eq!(json["targets"][0]["status"], "cancelled", "{json}");
    let xml = std::fs::read_to_string(depot.path("junit.xml")).unwrap();
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}):\n{xml}"));
    builders_stop(&depot);
}
