//! `--exec`: build, then become the built program, so a step script runs without
//! `script="$(…)"; exec "$script"`.

mod common;
use common::*;

#[test]
fn runs_a_built_script_with_its_arguments_and_its_status() {
    let depot = Depot::new();
    let drv = depot.instantiate("script");
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("-o"),
        os("result-script"),
        os("--exec"),
        os("--"),
        os("--flag"),
        os("two words"),
    ]);
    run.success();
    assert_eq!(run.stdout(), "script ran with: --flag two words\n");
    assert!(is_gc_root(&depot.path("result-script")));

    depot.write(
        "default.nix",
        r#"{ }: { exits = derivation {
            name = "exits-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            args = [ "-c" "echo 'exit 42' > $out; /bin/chmod +x $out" ]; }; }"#,
    );
    depot.run(["-A", "exits", "--exec"]).fails_with(42);
}

#[test]
fn runs_the_one_program_in_bin_of_a_multi_output_derivation() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: { tool = derivation {
            name = "tool-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            outputs = [ "out" "man" ];
            args = [ "-c" ''
              /bin/mkdir -p $out/bin $out/share $man
              printf '#!/bin/sh\necho "tool says $1"\n' > $out/bin/tool
              /bin/chmod +x $out/bin/tool
              echo not a program > $out/share/readme
              echo manual > $man/tool.1
            '' ]; }; }"#,
    );
    let drv = depot.instantiate("tool");
    // Two outputs: which one to run must be chosen.
    depot
        .run([os("--drv-path"), drv.clone().into(), os("--exec")])
        .fails_with(8)
        .error_mentions("has outputs out, man: choose one with --output");
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("--output"),
        os("out"),
        os("--exec"),
        os("--"),
        os("hi"),
    ]);
    run.success();
    assert_eq!(run.stdout(), "tool says hi\n");
}

#[test]
fn refuses_results_that_are_not_one_program_and_lists_what_it_found() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: let
          build = name: script: derivation {
            name = "${name}-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            args = [ "-c" script ]; };
        in {
          plain = build "plain" "echo data > $out";
          two = build "two" "/bin/mkdir -p $out/bin; for p in a b; do echo > $out/bin/$p; /bin/chmod +x $out/bin/$p; done";
          nobin = build "nobin" "/bin/mkdir -p $out/lib; echo > $out/lib/x";
          emptybin = build "emptybin" "/bin/mkdir -p $out/bin; echo > $out/bin/notexec";
        }"#,
    );
    for (attr, found) in [
        ("plain", "is a file that is not executable"),
        ("two", "has 2 executables in bin/: a, b"),
        ("nobin", "has no bin/ (it holds: lib)"),
        ("emptybin", "has no executable in bin/ (it holds: notexec)"),
    ] {
        depot
            .run(["-A", attr, "--exec"])
            .fails_with(8)
            .error_mentions(found);
    }
}
