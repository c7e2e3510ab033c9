//! Nix options reach whichever Nix command runs: `--option`, `-j`, `--cores`, `-k`, and
//! `--show-trace` (on by default for evaluation) or `--no-show-trace`.

mod common;
use common::*;

/// Without the option the slow build would run for a minute and succeed.
#[test]
fn option_reaches_nix_store_and_nix_build() {
    let depot = Depot::new();
    let drv = depot.instantiate("slow");
    let timeout = [os("--option"), os("timeout"), os("1")];
    let nix = depot.bare(
        "nix-store",
        [os("--realise"), drv.clone().into()].iter().chain(&timeout),
    );
    let code = nix.code().filter(|&c| c != 0).unwrap();
    depot
        .run(
            [os("--drv-path"), drv.clone().into()]
                .iter()
                .chain(&timeout),
        )
        .fails_with(code)
        .stderr_contains("timed out");
    delete(&drv);
    depot
        .run(
            [os("--drv-path"), drv.into(), os("-A"), os("slow")]
                .iter()
                .chain(&timeout),
        )
        .fails_with(code)
        .stderr_contains("timed out");
}

#[test]
fn max_jobs_and_cores_reach_the_build() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: let
          cores = name: derivation {
            name = "${name}-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            args = [ "-c" "echo $NIX_BUILD_CORES > $out" ]; };
        in { cores = cores "cores"; unbuilt = cores "unbuilt"; }"#,
    );
    let run = depot.run(["-A", "cores", "--cores", "3"]);
    run.success();
    assert_eq!(std::fs::read_to_string(&run.paths()[0]).unwrap(), "3\n");
    // With no local build slots and no remote builders, Nix cannot build at all (and exits
    // 1 up to Nix 2.26, 100 from 2.34).
    let nix = depot.bare("nix-build", ["-A", "unbuilt", "-j", "0", "--no-out-link"]);
    nix.stderr_contains("max-jobs");
    let drv = depot.collected_drv("unbuilt");
    depot
        .run([
            os("--drv-path"),
            drv.into(),
            os("-A"),
            os("unbuilt"),
            os("-j"),
            os("0"),
            os("--no-out-link"),
        ])
        .fails_with(nix.code().filter(|&c| c != 0).unwrap())
        .stderr_contains("max-jobs");
}

#[test]
fn keep_going_builds_what_it_can() {
    let depot = Depot::new();
    let fails = depot.instantiate("fails");
    let hello = depot.instantiate("hello");
    depot.write(
        "drvmap.json",
        &serde_json::json!({
            "fails": { "drvPath": fails, "attrPath": ["fails"] },
            "hello": { "drvPath": hello, "attrPath": ["hello"] },
        })
        .to_string(),
    );
    // Without -k Nix may stop before building hello; with it, hello is built for sure.
    let nix = depot.bare("nix-store", [os("--realise"), fails.into()]);
    depot
        .run(["-k", "-j", "1", "--drvmap", "drvmap.json", "fails", "hello"])
        .fails_with(nix.code().filter(|&c| c != 0).unwrap());
    let built: Vec<_> = depot
        .store_paths()
        .into_iter()
        .filter(|p| p.extension().is_none())
        .collect();
    assert_eq!(built.len(), 1, "{built:?}");
    assert!(built[0].to_string_lossy().contains("-hello-"));
}

#[test]
fn show_trace_is_on_for_evaluation_unless_turned_off() {
    let depot = Depot::new();
    // Nix 2.4 and later write "… while evaluating", 2.3 "while evaluating".
    let traced = depot.run(["-A", "brokenEval"]);
    traced.fails_with(1).stderr_contains("while evaluating");
    let untraced = depot.run(["-A", "brokenEval", "--no-show-trace"]);
    untraced
        .fails_with(1)
        .stderr_contains("this attribute does not evaluate");
    assert!(
        !untraced.stderr().contains("while evaluating"),
        "{}",
        untraced.explain()
    );
}
