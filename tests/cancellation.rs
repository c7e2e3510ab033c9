//! Cancellation: SIGTERM, SIGINT or SIGHUP while Nix builds is passed on to Nix, and we exit
//! 128+N once Nix has stopped, whatever status Nix chose. No Nix process or builder
//! outlives us, whether the signal comes to us alone or to our whole process group (as
//! Buildkite sends it), on the realise path (nix-store) and the fallback (nix-build).

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::process::Stdio;
use std::time::Duration;

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
    let number = signal as i32;
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
    run.fails_with(128 + number).error_mentions(&format!(
        "cancelled by signal {number} ({signal}); Nix has stopped"
    ));
    assert!(!alive(nix), "{program} outlived us\n{}", run.explain());
    builders_stop(&depot);
    assert!(!depot.path("result").exists(), "{}", run.explain());
}

#[test]
fn sigterm_while_realising_stops_nix_and_exits_143() {
    cancel(Path::Realise, Signal::SIGTERM, false);
}

#[test]
fn sigint_while_realising_stops_nix_and_exits_130() {
    cancel(Path::Realise, Signal::SIGINT, false);
}

#[test]
fn sighup_while_realising_stops_nix_and_exits_129() {
    cancel(Path::Realise, Signal::SIGHUP, false);
}

#[test]
fn sigterm_while_re_evaluating_stops_nix_build_and_exits_143() {
    cancel(Path::Fallback, Signal::SIGTERM, false);
}

#[test]
fn sigint_while_re_evaluating_stops_nix_build_and_exits_130() {
    cancel(Path::Fallback, Signal::SIGINT, false);
}

#[test]
fn sighup_while_re_evaluating_stops_nix_build_and_exits_129() {
    cancel(Path::Fallback, Signal::SIGHUP, false);
}

#[test]
fn sigterm_to_the_process_group_while_realising_exits_143() {
    cancel(Path::Realise, Signal::SIGTERM, true);
}

#[test]
fn sigint_to_the_process_group_while_re_evaluating_exits_130() {
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
    run.fails_with(128 + 15)
        .error_mentions("cancelled by signal 15 (SIGTERM); Nix has stopped");
    assert!(!alive(fake_pid) && !alive(real[0]), "{}", run.explain());
    builders_stop(&depot);
}

/// Single-user Nix stops its builders before it exits; through a daemon, Nix exits, and the
/// daemon stops the build when it sees the connection close, a moment later.
#[track_caller]
fn builders_stop(depot: &Depot) {
    wait_until(Duration::from_secs(30), "the builders to stop", || {
        depot.builders().is_empty()
    });
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
