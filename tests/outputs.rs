//! `--output NAME`: build and print only the outputs asked for, on both paths, with the
//! links Nix names for them.

mod common;
use common::*;

fn names_and_links(depot: &Depot, run: &Run) -> Vec<String> {
    run.success();
    let mut links: Vec<String> = std::fs::read_dir(&depot.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_symlink())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    links.sort();
    let printed = run
        .paths()
        .iter()
        .map(|p| p.to_string_lossy()[44..].replace(&depot.nonce, "N"))
        .collect::<Vec<_>>()
        .join(" ");
    links.push(printed);
    links
}

#[test]
fn selects_outputs_on_both_paths_alike() {
    let realised = Depot::new();
    let evaluated = Depot::new();
    let args = ["--output", "doc", "--output", "out", "--output", "doc"];
    let realised_run = realised.run(
        [os("--drv-path"), realised.instantiate("multi").into()]
            .into_iter()
            .chain(args.map(os)),
    );
    let evaluated_run = evaluated.run(
        [
            os("--drv-path"),
            evaluated.collected_drv("multi").into(),
            os("-A"),
            os("multi"),
        ]
        .into_iter()
        .chain(args.map(os)),
    );
    let expected = ["result", "result-doc", "multi-N multi-N-doc"];
    assert_eq!(names_and_links(&realised, &realised_run), expected);
    assert_eq!(names_and_links(&evaluated, &evaluated_run), expected);
}

#[test]
fn a_single_non_default_output_gets_its_suffixed_link() {
    let depot = Depot::new();
    let run = depot.run([
        os("--drv-path"),
        depot.instantiate("multi").into(),
        os("--output"),
        os("dev"),
    ]);
    // One builder run makes every output, so Nix may keep the others in the store; only
    // the one asked for is linked and printed.
    assert_eq!(names_and_links(&depot, &run), ["result-dev", "multi-N-dev"]);
}

#[test]
fn an_unknown_output_is_a_usage_error_on_both_paths_and_builds_nothing() {
    let depot = Depot::new();
    let drv = depot.instantiate("multi");
    depot
        .run([
            os("--drv-path"),
            drv.clone().into(),
            os("--output"),
            os("nope"),
        ])
        .fails_with(2)
        .error_mentions("has no output \"nope\" (it has out, dev, doc)");
    delete(&drv);
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("-A"),
        os("multi"),
        os("--output"),
        os("nope"),
    ]);
    run.fails_with(2)
        .error_mentions("has no output \"nope\" (it has out, dev, doc)");
    assert!(
        !run.stderr().contains("error: nix-buildkite-build"),
        "{}",
        run.explain()
    );
    assert_eq!(depot.outputs(), Vec::<std::path::PathBuf>::new());
    assert!(!depot.path("result").exists());
}
