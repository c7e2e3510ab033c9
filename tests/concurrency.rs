//! Eight runs at once on the same `.drv`, sharing one out-link or each with its own, by
//! realising it and by re-evaluating it: every run succeeds and prints exactly the
//! outputs, and every link ends valid and rooted. Links are replaced by rename, so a run
//! never finds another's half-made link, and our own pre-check never fails spuriously.

mod common;
use common::*;
use std::ffi::OsString;
use std::process::Stdio;

const RUNS: usize = 8;

fn start(depot: &Depot, args: &[OsString]) -> Spawned {
    Spawned::start(
        depot
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
}

/// Checks one finished run against its links: success, stdout exactly the two outputs'
/// paths, each link pointing at one and rooted.
#[track_caller]
fn check(depot: &Depot, run: &Run, link: &str) {
    run.success();
    let links = [depot.path(link), depot.path(format!("{link}-dev"))];
    let expected: String = links
        .iter()
        .map(|l| format!("{}\n", target(l).display()))
        .collect();
    assert_eq!(run.stdout(), expected, "{}", run.explain());
    for (link, content) in links.iter().zip(["out\n", "dev\n"]) {
        assert_eq!(std::fs::read_to_string(link).unwrap(), content);
        assert!(is_gc_root(link), "{} is not a GC root", link.display());
    }
}

/// Eight runs of `gated`, with `link(i)` as run i's out-link, all started before the build
/// may finish, so that they really overlap; then, with the output built, eight more at
/// once, which all replace their links together.
fn eight_at_once(fallback: bool, link: impl Fn(usize) -> String) {
    let (depot, gate) = Gate::depot();
    // Re-evaluating, no .drv is given: the first nix-build to evaluate writes the .drv again,
    // and a run started after that would realise it instead.
    let target = match fallback {
        false => [os("--drv-path"), depot.instantiate("gated").into()],
        true => [os("-A"), os("gated")],
    };
    let args = |i: usize| {
        let mut args = target.to_vec();
        args.extend([os("-o"), os(&link(i))]);
        args
    };
    let program = if fallback { "nix-build" } else { "nix-store" };
    let runs: Vec<Spawned> = (0..RUNS).map(|i| start(&depot, &args(i))).collect();
    for run in &runs {
        run.wait_for_child(program);
    }
    wait_until(PATIENCE, "the build to start", || {
        !depot.builders().is_empty()
    });
    gate.open();
    for (i, run) in runs.into_iter().enumerate() {
        check(&depot, &run.finish(PATIENCE), &link(i));
    }

    for round in 0..3 {
        let runs: Vec<Spawned> = (0..RUNS).map(|i| start(&depot, &args(i))).collect();
        for (i, run) in runs.into_iter().enumerate() {
            let run = run.finish(PATIENCE);
            assert!(run.out.status.success(), "round {round}\n{}", run.explain());
            check(&depot, &run, &link(i));
        }
    }
}

#[test]
fn eight_runs_realising_one_drv_to_one_out_link() {
    eight_at_once(false, |_| "result".into());
}

#[test]
fn eight_runs_realising_one_drv_to_eight_out_links() {
    eight_at_once(false, |i| format!("link{i}"));
}

#[test]
fn eight_runs_re_evaluating_one_drv_to_one_out_link() {
    eight_at_once(true, |_| "result".into());
}

#[test]
fn eight_runs_re_evaluating_one_drv_to_eight_out_links() {
    eight_at_once(true, |i| format!("link{i}"));
}
