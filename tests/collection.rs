//! A real, store-wide garbage collection: what both paths link survives it, through the
//! daemon too. Only in a store of the suite's own, where nothing else can lose its paths:
//! `scripts/test-nix` says so with `NBB_TEST_OWN_STORE=1`. This machine's store is shared,
//! so elsewhere the test says it is skipped.

mod common;
use common::*;

#[test]
fn what_both_paths_link_survives_a_collection() {
    if !own_store() {
        return;
    }
    let depot = Depot::new();
    let realised = depot.run([
        os("--drv-path"),
        depot.instantiate("multi").into(),
        os("-o"),
        os("realised"),
    ]);
    realised.success();
    let evaluated = depot.run([
        os("--drv-path"),
        depot.collected_drv("hello").into(),
        os("-A"),
        os("hello"),
        os("-o"),
        os("evaluated"),
    ]);
    evaluated.success();
    let unrooted = depot.run(["-A", "noisy", "--no-out-link"]);
    unrooted.success();

    // The collection ran: what nothing roots goes. Through a daemon, the worker that served
    // the last run may hold it as a temporary root a moment longer, so collect until then.
    wait_until(PATIENCE, "a collection to take the unrooted output", || {
        Run::new(std::process::Command::new("nix-store").arg("--gc")).success();
        !unrooted.paths()[0].exists()
    });
    let links = ["realised", "realised-dev", "realised-doc", "evaluated"];
    let paths = [realised.paths(), evaluated.paths()].concat();
    for (link, path) in links.map(|l| depot.path(l)).iter().zip(paths) {
        assert!(path.exists(), "{} was collected", path.display());
        assert_eq!(target(link), path);
        assert!(is_gc_root(link), "{} is not a GC root", link.display());
    }
}
