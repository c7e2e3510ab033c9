//! `--retries N`: Nix runs again after a failure another attempt may fix, and only then,
//! pausing 1 s, 2 s, … and saying so each time. The transient faults (a lost connection, an
//! unreachable remote builder) are injected by a FAKE nix-store or nix-build printing
//! Nix's error: no real Nix here has a remote builder to lose.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

/// A FAKE `program` whose first `faults` runs with `first_arg` fail as Nix does when it
/// loses its connection to a remote builder; the rest run the real one. It counts its runs
/// with `first_arg` in `runs`, beside it.
fn flaky(program: &str, first_arg: &str, faults: u32, error: &str) -> Fake {
    Fake::new(
        program,
        &format!(
            r#"
if [ "$1" = {first_arg} ]; then
  runs="$(dirname "$0")/runs"
  n=$(( $(cat "$runs" 2>/dev/null || echo 0) + 1 ))
  echo $n > "$runs"
  if [ $n -le {faults} ]; then
    printf '%s\n' {error} >&2
    exit 1
  fi
fi
exec "$REAL" "$@"
"#
        ),
    )
}

/// Nix's words for a connection to a remote builder (or the daemon) that broke off.
const LOST: &str = "'error: unexpected end-of-file'";

fn runs(fake: &Fake) -> u32 {
    std::fs::read_to_string(fake.dir.path().join("runs"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

fn notes(run: &Run) -> Vec<String> {
    run.stderr()
        .lines()
        .filter(|l| l.contains(" another attempt may fix "))
        .map(str::to_owned)
        .collect()
}

fn realise(depot: &Depot, fake: &Fake, attr: &str, args: &[&str]) -> Run {
    let drv = depot.instantiate(attr);
    let mut command = depot.command();
    command
        .arg("--drv-path")
        .arg(&drv)
        .args(args)
        .env("PATH", &fake.path);
    Run::new(&mut command)
}

#[test]
fn a_transient_failure_is_retried_and_named() {
    let depot = Depot::new();
    let fake = flaky("nix-store", "--realise", 1, LOST);
    let run = realise(&depot, &fake, "hello", &["--retries", "2"]);
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
    assert_eq!(runs(&fake), 2);
    assert_eq!(
        notes(&run),
        [
            "nix-buildkite-build: nix-store failed in a way another attempt may fix \
          (unexpected end-of-file); retry 1 of 2 in 1 s"
        ],
        "{}",
        run.explain()
    );
}

#[test]
fn past_its_retries_a_transient_failure_fails_with_nix_status() {
    let depot = Depot::new();
    let fake = flaky("nix-store", "--realise", 99, LOST);
    let run = realise(&depot, &fake, "hello", &["--retries", "2", "--json"]);
    run.fails_with(1)
        .stderr_contains("nix-buildkite-build: error: nix-store failed with exit status 1");
    assert_eq!(runs(&fake), 3);
    let notes = notes(&run);
    assert_eq!(notes.len(), 2, "{}", run.explain());
    assert!(notes[0].ends_with("; retry 1 of 2 in 1 s"));
    assert!(notes[1].ends_with("; retry 2 of 2 in 2 s"));
    let json = run.json();
    assert_eq!(
        json["targets"][0]["failure"]["kind"],
        "transient",
        "{}",
        run.explain()
    );
}

#[test]
fn without_retries_nothing_is_retried() {
    let depot = Depot::new();
    let fake = flaky("nix-store", "--realise", 1, LOST);
    realise(&depot, &fake, "hello", &[]).fails_with(1);
    assert_eq!(runs(&fake), 1);
}

/// However Nix words the rest, a build that failed is not run again.
#[test]
fn a_build_failure_is_never_retried() {
    let depot = Depot::new();
    let drv = depot.instantiate("fails");
    let bare = depot.bare("nix-store", [os("--realise"), drv.clone().into()]);
    let run = depot.run([
        os("-v"),
        os("--drv-path"),
        drv.into(),
        os("--retries"),
        os("3"),
    ]);
    run.fails_with(bare.code().unwrap());
    let stderr = run.stderr();
    let started = stderr
        .lines()
        .filter(|l| l.starts_with("$ nix-store --realise"))
        .count();
    assert_eq!(started, 1, "{}", run.explain());
    assert_eq!(notes(&run), Vec::<String>::new());

    // Nor when a connection was lost on the way.
    let fake = Fake::new(
        "nix-store",
        r#"
if [ "$1" = --realise ]; then
  echo $(( $(cat "$(dirname "$0")/runs" 2>/dev/null || echo 0) + 1 )) > "$(dirname "$0")/runs"
  echo "error: unexpected end-of-file" >&2
fi
exec "$REAL" "$@"
"#,
    );
    let run = realise(&depot, &fake, "fails", &["--retries", "3"]);
    run.fails_with(bare.code().unwrap());
    assert_eq!(runs(&fake), 1, "{}", run.explain());
}

#[test]
fn the_fallback_retries_an_unreachable_remote_builder() {
    let depot = Depot::new();
    let fake = flaky(
        "nix-build",
        "-",
        1,
        "\"cannot build on 'ssh://builder': cannot connect to 'builder': Connection refused\" \
         'Failed to find a machine for remote build!'",
    );
    let mut command = depot.command();
    command
        .args(["-A", "hello", "--retries", "1"])
        .env("PATH", &fake.path);
    let run = Run::new(&mut command);
    run.success();
    assert_eq!(runs(&fake), 2);
    assert_eq!(
        notes(&run),
        [
            "nix-buildkite-build: nix-build failed in a way another attempt may fix \
          (cannot build on 'ssh://builder': cannot connect to 'builder': Connection refused); \
          retry 1 of 1 in 1 s"
        ],
        "{}",
        run.explain()
    );
}

/// A cancel during the pause ends the run by its signal, with no further attempt.
#[test]
fn a_cancel_during_the_pause_cancels() {
    let depot = Depot::new();
    let fake = flaky("nix-store", "--realise", 99, LOST);
    let drv = depot.instantiate("hello");
    let mut command = depot.command();
    command
        .arg("--drv-path")
        .arg(&drv)
        .args(["--retries", "5"])
        .env("PATH", &fake.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = Spawned::start(&mut command);
    wait_until(PATIENCE, "the first retry's pause", || {
        spawned.stderr_so_far().contains("retry 1 of 5")
    });
    spawned.signal(Signal::SIGTERM, false);
    let run = spawned.finish(PATIENCE);
    assert_eq!(run.out.status.signal(), Some(15), "{}", run.explain());
    run.stderr_contains("cancelled by signal 15 (SIGTERM)");
    assert_eq!(runs(&fake), 1);
    assert_eq!(run.stdout(), "");
}
