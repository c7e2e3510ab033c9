//! A clean work tree: an out-link that lands in a git work tree without being ignored gets
//! one warning; an ignored one, or one outside the tree, gets none.

mod common;
use common::*;
use std::process::Command;

fn git_depot() -> Depot {
    let depot = Depot::new();
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&depot.dir)
        .status();
    assert!(git.is_ok_and(|s| s.success()), "git init failed");
    depot
}

fn warnings(run: &Run) -> Vec<String> {
    run.success();
    run.stderr()
        .lines()
        .filter(|l| l.starts_with("nix-buildkite-build: warning:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn warns_once_about_links_git_does_not_ignore() {
    let depot = git_depot();
    depot.write(".gitignore", "result\n");
    std::fs::create_dir(depot.path("sub")).unwrap();
    let run = Run::new(
        depot
            .command()
            .current_dir(depot.path("sub"))
            .args([os("--drv-path"), depot.instantiate("multi").into()]),
    );
    assert_eq!(
        warnings(&run),
        [format!(
            "nix-buildkite-build: warning: out-link sub/result-dev, sub/result-doc is in the git \
             work tree {} and not ignored by git, so the tree is no longer clean (add it to \
             .gitignore, or give an absolute --out-link outside the tree)",
            depot.dir.display()
        )]
    );
}

#[test]
fn says_nothing_when_git_ignores_the_links_or_they_are_outside() {
    let depot = git_depot();
    depot.write(".gitignore", "result*\n");
    let drv = depot.instantiate("multi");
    assert!(warnings(&depot.run([os("--drv-path"), drv.clone().into()])).is_empty());

    depot.write(".gitignore", "");
    let outside = tempfile::tempdir().unwrap();
    let link = outside.path().join("result");
    assert!(
        warnings(&depot.run([os("--drv-path"), drv.clone().into(), os("-o"), link.into()]))
            .is_empty()
    );
    assert!(warnings(&depot.run([os("--drv-path"), drv.into(), os("--no-out-link")])).is_empty());
}

#[test]
fn warns_on_the_fallback_about_the_links_it_made() {
    let depot = git_depot();
    depot.write(".gitignore", "result\n");
    let drv = depot.collected_drv("multi");
    let run = depot.run([os("--drv-path"), drv.into(), os("-A"), os("multi")]);
    let warnings = warnings(&run);
    assert_eq!(warnings.len(), 1, "{}", run.explain());
    assert!(warnings[0].contains("out-link result-dev, result-doc is in the git work tree"));
}
