//! Out-links judged where they really land. A link whose directory is reached through a
//! symlink into the store is refused before anything is built (Nix itself looks only at the
//! path as written, and would put a link in the store). A link already there that leads
//! into the store, written relative or through a symlinked directory, is replaced as Nix
//! replaces one written as a store path (Nix alone refuses those: "already exists"); one
//! that leads elsewhere is still refused. On both paths, for every link a run makes.

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const STORE: &str = "/nix/store";

/// `to` written relative to the directory `from`, with `..` up to `/`, as the kernel
/// resolves it from `from`'s real place.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let real = std::fs::canonicalize(from).unwrap();
    let mut path = PathBuf::new();
    for _ in real.components().skip(1) {
        path.push("..");
    }
    path.join(to.strip_prefix("/").unwrap())
}

/// An output built and rooted in the depot under `rooted`, to point links at.
fn some_output(depot: &Depot) -> PathBuf {
    let drv = depot.instantiate("hello");
    let run = depot.run([os("--drv-path"), drv.into(), os("-o"), os("rooted")]);
    run.success();
    run.paths()[0].clone()
}

/// Each link points at the path printed in its place, and is a GC root.
#[track_caller]
fn linked(run: &Run, links: &[PathBuf]) {
    run.success();
    let targets: Vec<PathBuf> = links.iter().map(|l| target(l)).collect();
    assert_eq!(run.paths(), targets, "{}", run.explain());
    for link in links {
        assert!(is_gc_root(link), "{} is not a GC root", link.display());
    }
}

#[test]
fn a_directory_that_leads_into_the_store_is_refused_on_both_paths_and_in_batches() {
    let depot = Depot::new();
    symlink(STORE, depot.path("into-store")).unwrap();
    // Unique, so that a link Nix made there would be ours to find.
    let link = depot.path(format!("into-store/result-{}", depot.nonce));
    let drv = depot.instantiate("multi");
    depot
        .run([os("--drv-path"), drv.into(), os("-o"), link.clone().into()])
        .fails_with(4)
        .error_mentions("inside the Nix store");
    let collected = depot.collected_drv("multi");
    depot
        .run([
            os("--drv-path"),
            collected.into(),
            os("-A"),
            os("multi"),
            os("-o"),
            link.clone().into(),
        ])
        .fails_with(4)
        .error_mentions("inside the Nix store");
    depot.write_drvmap(&[("//hello", "hello"), ("//multi", "multi")]);
    depot
        .run([
            os("--drvmap"),
            os("drvmap.json"),
            os("//hello"),
            os("//multi"),
            os("-o"),
            link.clone().into(),
        ])
        .fails_with(4)
        .error_mentions("inside the Nix store");
    let mut made_in_store = Vec::new();
    for suffix in ["", "-dev", "-doc", "-2", "-2-dev", "-2-doc"] {
        let mut made = link.as_os_str().to_owned();
        made.push(suffix);
        if std::fs::remove_file(&made).is_ok() {
            made_in_store.push(made);
        }
    }
    assert!(
        made_in_store.is_empty(),
        "links made in the store: {made_in_store:?}"
    );
    assert!(depot.outputs().is_empty(), "built: {:?}", depot.outputs());
}

#[test]
fn links_into_the_store_written_relative_or_through_a_symlink_are_replaced_on_the_realise_path() {
    let depot = Depot::new();
    let old = some_output(&depot);
    symlink(STORE, depot.path("store-link")).unwrap();
    let name = old.file_name().unwrap();
    symlink(relative(&depot.dir, &old), depot.path("result")).unwrap();
    symlink(
        depot.path("store-link").join(name),
        depot.path("result-dev"),
    )
    .unwrap();
    // A path the collector took: Nix replaces a link that leads nowhere.
    let gone = Path::new(STORE).join(format!(
        "00000000000000000000000000000000-gone-{}",
        depot.nonce
    ));
    symlink(relative(&depot.dir, &gone), depot.path("result-doc")).unwrap();

    let drv = depot.instantiate("multi");
    let run = depot.run([os("--drv-path"), drv.into()]);
    linked(
        &run,
        &["result", "result-dev", "result-doc"].map(|l| depot.path(l)),
    );
}

#[test]
fn links_into_the_store_written_relative_are_replaced_on_the_fallback() {
    let depot = Depot::new();
    let old = some_output(&depot);
    for link in ["result", "result-dev"] {
        symlink(relative(&depot.dir, &old), depot.path(link)).unwrap();
    }
    let drv = depot.collected_drv("multi");
    let run = depot.run([os("--drv-path"), drv.into(), os("-A"), os("multi")]);
    linked(
        &run,
        &["result", "result-dev", "result-doc"].map(|l| depot.path(l)),
    );
}

#[test]
fn a_batch_replaces_a_relative_link_into_the_store_at_any_of_its_links() {
    let depot = Depot::new();
    let old = some_output(&depot);
    symlink(relative(&depot.dir, &old), depot.path("result-2-dev")).unwrap();
    depot.write_drvmap(&[("//hello", "hello"), ("//multi", "multi")]);
    let run = depot.run(["--drvmap", "drvmap.json", "//hello", "//multi"]);
    let links = ["result", "result-2", "result-2-dev", "result-2-doc"].map(|l| depot.path(l));
    linked(&run, &links);
}

#[test]
fn a_relative_link_elsewhere_is_still_refused_and_kept() {
    let depot = Depot::new();
    depot.write("mine", "precious");
    symlink("mine", depot.path("result")).unwrap();
    let drv = depot.instantiate("hello");
    depot
        .run([os("--drv-path"), drv.into()])
        .fails_with(4)
        .error_mentions("is a symlink to mine, outside the Nix store");
    assert_eq!(
        std::fs::read_link(depot.path("result")).unwrap(),
        Path::new("mine")
    );
    assert_eq!(
        std::fs::read_to_string(depot.path("mine")).unwrap(),
        "precious"
    );
    assert!(depot.outputs().is_empty());
}

#[test]
fn a_dry_run_changes_no_link() {
    let depot = Depot::new();
    let old = some_output(&depot);
    let text = relative(&depot.dir, &old);
    symlink(&text, depot.path("result")).unwrap();
    let drv = depot.instantiate("hello");
    depot
        .run([os("--drv-path"), drv.into(), os("--dry-run")])
        .success();
    assert_eq!(std::fs::read_link(depot.path("result")).unwrap(), text);
}

#[test]
fn the_fallback_leaves_a_link_it_does_not_make_as_it_is() {
    let depot = Depot::new();
    let old = some_output(&depot);
    symlink(&old, depot.path("old")).unwrap();
    // `result-latest` is no link of this run's (`hello` has one output), though it leads
    // into the store, through `old`.
    symlink("old", depot.path("result-latest")).unwrap();
    let drv = depot.collected_drv("hello");
    let run = depot.run([os("--drv-path"), drv.into(), os("-A"), os("hello")]);
    linked(&run, &[depot.path("result")]);
    assert_eq!(
        std::fs::read_link(depot.path("result-latest")).unwrap(),
        Path::new("old")
    );
}
