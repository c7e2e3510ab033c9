//! The fallback: the recorded .drv was garbage-collected, so the attribute path is
//! re-evaluated against the root and built, with the same result as the usual path.

mod common;
use common::*;
use std::path::PathBuf;

#[test]
fn re_evaluates_a_collected_drv_and_says_so_in_one_line() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    let run = depot.run([
        os("--drv-path"),
        drv.clone().into(),
        os("--attr"),
        os("hello"),
    ]);
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
    assert_eq!(
        std::fs::read_to_string(&run.paths()[0]).unwrap(),
        "hello!\n"
    );
    assert!(is_gc_root(&depot.path("result")));
    assert_eq!(
        run.notes(),
        [format!(
            "nix-buildkite-build: {} is gone (garbage-collected); re-evaluating hello",
            drv.display()
        )],
        "{}",
        run.explain()
    );
    // Nix was never asked for the missing .drv, so it printed no error about it. (Lines
    // like "error (ignored): … database is busy" from a loaded store are no error of ours.)
    assert!(
        !run.stderr().lines().any(|l| l.starts_with("error:")),
        "{}",
        run.explain()
    );
    // The re-evaluated derivation is the recorded one, rebuilt.
    assert!(drv.exists());
}

#[test]
fn both_paths_agree_on_outputs_links_and_roots_for_multi_output_derivations() {
    let realised = Depot::new();
    let evaluated = Depot::new();
    let run_realised = realised.run([
        os("--drv-path"),
        realised.instantiate("multi").into(),
        os("-o"),
        os("r"),
    ]);
    let run_evaluated = evaluated.run([
        os("--drv-path"),
        evaluated.collected_drv("multi").into(),
        os("-A"),
        os("multi"),
        os("-o"),
        os("r"),
    ]);
    run_realised.success();
    run_evaluated.success();
    run_evaluated.stderr_contains("re-evaluating multi");

    let shape = |depot: &Depot, run: &Run| -> Vec<(String, PathBuf)> {
        let mut links: Vec<_> = std::fs::read_dir(&depot.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_symlink())
            .collect();
        links.sort();
        for link in &links {
            assert!(is_gc_root(link), "{} is not a GC root", link.display());
        }
        let targets: Vec<PathBuf> = links.iter().map(|l| target(l)).collect();
        assert_eq!(run.paths().len(), 3, "{}", run.explain());
        for path in run.paths() {
            assert!(targets.contains(&path), "{} not linked", path.display());
        }
        // The nonce differs between the depots; compare what the names say.
        links
            .iter()
            .zip(run.paths())
            .map(|(l, p)| {
                let name = l.file_name().unwrap().to_string_lossy().into_owned();
                let printed = p.to_string_lossy()[44..].replace(&depot.nonce, "N");
                (name, PathBuf::from(printed))
            })
            .collect()
    };
    assert_eq!(
        shape(&realised, &run_realised),
        shape(&evaluated, &run_evaluated)
    );
    assert_eq!(
        shape(&realised, &run_realised),
        [
            ("r".to_owned(), PathBuf::from("multi-N")),
            ("r-dev".to_owned(), PathBuf::from("multi-N-dev")),
            ("r-doc".to_owned(), PathBuf::from("multi-N-doc")),
        ]
    );
}

#[test]
fn an_attribute_path_alone_evaluates_and_builds() {
    let depot = Depot::new();
    let run = depot.run(["-A", "nested.deeper.leaf"]);
    run.success();
    assert_eq!(run.paths(), [target(&depot.path("result"))]);
    assert!(
        !run.stderr().contains("nix-buildkite-build:"),
        "{}",
        run.explain()
    );
}

#[test]
fn file_arg_and_argstr_reach_the_root_function() {
    let depot = Depot::new();
    std::fs::create_dir(depot.path("elsewhere")).unwrap();
    let run = Run::new(depot.command().current_dir(depot.path("elsewhere")).args([
        "-f",
        "..",
        "--attr",
        "hello",
        "--argstr",
        "greeting",
        "bonjour",
        "--arg",
        "punctuation",
        "\"?\" + \"!\"",
    ]));
    run.success();
    assert_eq!(
        std::fs::read_to_string(&run.paths()[0]).unwrap(),
        "bonjour?!\n"
    );
    assert_eq!(run.paths(), [target(&depot.path("elsewhere/result"))]);
}

#[test]
fn no_out_link_on_the_fallback_prints_the_same_paths() {
    let depot = Depot::new();
    let drv = depot.collected_drv("multi");
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("-A"),
        os("multi"),
        os("--no-out-link"),
    ]);
    run.success();
    let names: Vec<String> = run
        .paths()
        .iter()
        .map(|p| p.to_string_lossy()[44..].to_owned())
        .collect();
    let n = &depot.nonce;
    assert_eq!(
        names,
        [
            format!("multi-{n}"),
            format!("multi-{n}-dev"),
            format!("multi-{n}-doc")
        ]
    );
    assert_eq!(
        std::fs::read_dir(&depot.dir).unwrap().count(),
        1,
        "only default.nix"
    );
}

/// Whatever the root function declares, it gets the `--arg`s nix-build would give it: on
/// Nix 2.3 only those it declares, from 2.4 all of them if it has `...`; a root without
/// `...` never gets one it does not declare; a functor's function is called. Compared with
/// bare nix-build on the same root, which builds the same derivation if it saw the same
/// arguments.
#[test]
fn root_arguments_are_passed_as_nix_build_passes_them() {
    for root in [
        "{ ... }@args: { x = build (args.greeting or \"none\"); }",
        "{ greeting ? \"none\", ... }: { x = build greeting; }",
        "{ greeting ? \"none\" }: { x = build greeting; }",
        "{ __functor = self: { greeting ? \"none\", ... }: { x = build greeting; }; }",
        "{ x = build \"no function\"; }",
    ] {
        let depot = Depot::empty();
        let build = r#"let build = text: derivation {
              name = "greeting-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
              args = [ "-c" "echo ${text} > $out" ]; }; in "#;
        depot.write("default.nix", &format!("{build}{root}"));
        let args = [
            "-A", "x", "--argstr", "greeting", "hi", "--arg", "extra", "1",
        ];
        let bare = depot.bare("nix-build", args.iter().chain(&["--no-out-link"]));
        bare.success();
        let run = depot.run(args);
        run.success();
        assert_eq!(run.stdout(), bare.stdout(), "{root}\n{}", run.explain());
    }
}
