//! The usual path: the recorded .drv is present, so it is realised and nothing evaluated.

mod common;
use common::*;

#[test]
fn realises_the_drv_links_it_and_prints_only_the_store_path() {
    let depot = Depot::new();
    let drv = depot.instantiate("noisy");
    // The attribute path is wrong on purpose: were it evaluated, the run would fail.
    let run = depot.run([
        os("--drv-path"),
        drv.clone().into(),
        os("--attr"),
        os("doesNotExist"),
    ]);
    run.success();
    let link = depot.path("result");
    assert_eq!(run.paths(), [target(&link)], "{}", run.explain());
    assert!(run.paths()[0].starts_with("/nix/store/"));
    assert_eq!(std::fs::read_to_string(target(&link)).unwrap(), "quiet\n");
    assert!(is_gc_root(&link), "{} is not a GC root", link.display());
    // The build's own output reached the log, not our stdout.
    run.stderr_contains("this goes to the log, not to stdout");
    run.stderr_contains("and so does this");
    assert!(!run.stderr().contains("re-evaluating"), "{}", run.explain());
}

#[test]
fn prints_every_output_of_a_multi_output_derivation_in_declared_order() {
    let depot = Depot::new();
    let drv = depot.instantiate("multi");
    let run = depot.run([os("--drv-path"), drv.into(), os("-o"), os("built")]);
    run.success();
    let links = ["built", "built-dev", "built-doc"].map(|l| depot.path(l));
    assert_eq!(
        run.paths(),
        links.iter().map(|l| target(l)).collect::<Vec<_>>()
    );
    for (link, content) in links.iter().zip(["out\n", "dev\n", "doc\n"]) {
        assert_eq!(std::fs::read_to_string(link).unwrap(), content);
        assert!(is_gc_root(link));
    }
}

#[test]
fn is_idempotent_and_replaces_its_own_links() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let first = depot.run([os("--drv-path"), drv.clone().into()]);
    first.success();
    let second = depot.run([os("--drv-path"), drv.into()]);
    second.success();
    assert_eq!(first.paths(), second.paths());
    assert_eq!(target(&depot.path("result")), first.paths()[0]);
}

#[test]
fn out_links_may_be_relative_to_a_subdirectory_or_absolute() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    std::fs::create_dir(depot.path("sub")).unwrap();
    let run = Run::new(depot.command().current_dir(depot.path("sub")).args([
        os("--drv-path"),
        drv.clone().into(),
        os("-o"),
        os("../rel"),
    ]));
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("rel"))]);

    let elsewhere = tempfile::tempdir().unwrap();
    let absolute = elsewhere.path().join("abs");
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("--out-link"),
        absolute.clone().into(),
    ]);
    run.success();
    assert_eq!(run.paths(), [target(&absolute)]);
    assert!(is_gc_root(&absolute));
}

#[test]
fn no_out_link_builds_without_a_link() {
    let depot = Depot::new();
    let drv = depot.instantiate("multi");
    let run = depot.run([os("--drv-path"), drv.into(), os("--no-out-link")]);
    run.success();
    assert_eq!(run.paths().len(), 3, "{}", run.explain());
    for path in run.paths() {
        assert!(path.exists() && path.starts_with("/nix/store"));
    }
    assert_eq!(
        std::fs::read_dir(&depot.dir).unwrap().count(),
        1,
        "only default.nix"
    );
}

#[test]
fn verbose_prints_the_exact_nix_command_on_stderr() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let run = depot.run([os("-v"), os("--drv-path"), drv.clone().into()]);
    run.success();
    run.stderr_contains(&format!(
        "$ nix-store --realise {} --add-root {} --indirect\n",
        drv.display(),
        depot.path("result").display()
    ));
    assert_eq!(run.paths().len(), 1);
}
