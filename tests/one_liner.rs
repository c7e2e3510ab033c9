//! Against the reference: the shell one-liner depot's mkBuildCommand emits, run side by side
//! with this tool on the same depot. Where the one-liner is right, both agree; where it is
//! wrong, the fix is asserted.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// The one-liner exactly as depot's `mkBuildCommand { attrPath, drvPath, outLink }` writes it.
fn one_liner(attr_path: &[&str], drv: &Path, out_link: &str) -> String {
    let expr = attr_path
        .iter()
        .fold("import ./. {}".to_owned(), |expr, attr| {
            format!("builtins.getAttr \"{attr}\" ({expr})")
        });
    let drv = drv.display();
    format!(
        "set -o pipefail; \
         (nix-store --realise '{drv}' --add-root '{out_link}' --indirect | xargs -r realpath) \
         || (test ! -f '{drv}' && nix-build -E '{expr}' --show-trace --out-link '{out_link}')"
    )
}

fn run_one_liner(depot: &Depot, command: &str) -> Run {
    Run::new(
        Command::new("bash")
            .args(["-c", command])
            .current_dir(&depot.dir),
    )
}

fn ours(depot: &Depot, attr_path: &[&str], drv: &Path, out_link: &str) -> Run {
    let mut args = vec![os("--drv-path"), drv.into(), os("--out-link"), os(out_link)];
    for attr in attr_path {
        args.extend([os("--attr"), os(attr)]);
    }
    depot.run(args)
}

#[test]
fn agrees_on_a_single_output_target_when_the_drv_is_present() {
    let depot = Depot::new();
    let drv = depot.instantiate("nested.deeper.leaf");
    let path = ["nested", "deeper", "leaf"];
    let reference = run_one_liner(&depot, &one_liner(&path, &drv, "theirs"));
    let run = ours(&depot, &path, &drv, "mine");
    reference.success();
    run.success();
    assert_eq!(run.stdout(), reference.stdout());
    assert_eq!(target(&depot.path("mine")), target(&depot.path("theirs")));
    assert!(is_gc_root(&depot.path("mine")) && is_gc_root(&depot.path("theirs")));
}

#[test]
fn agrees_on_a_single_output_target_when_the_drv_was_collected() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    let reference = run_one_liner(&depot, &one_liner(&["hello"], &drv, "theirs"));
    reference.success();
    let run = ours(&depot, &["hello"], &drv, "mine");
    run.success();
    assert_eq!(run.stdout(), reference.stdout());
    assert_eq!(target(&depot.path("mine")), target(&depot.path("theirs")));
    // Fixed: the one-liner first asks Nix for the missing .drv and shows its error.
    reference.stderr_contains("don't know how to build these paths");
    assert!(
        !run.stderr().lines().any(|l| l.starts_with("error:")),
        "{}",
        run.explain()
    );
}

#[test]
fn fixed_a_failed_build_keeps_its_status() {
    let depot = Depot::new();
    let drv = depot.instantiate("fails");
    run_one_liner(&depot, &one_liner(&["fails"], &drv, "theirs")).fails_with(1);
    // Nix's own: 100 single-user, but 1 through a daemon, which the one-liner gives always.
    let nix = depot.bare("nix-store", [os("--realise"), drv.clone().into()]);
    ours(&depot, &["fails"], &drv, "mine").fails_with(nix.code().unwrap());
}

#[test]
fn fixed_both_paths_print_every_output_of_a_multi_output_target() {
    let depot = Depot::new();
    let drv = depot.instantiate("multi");
    let realised = run_one_liner(&depot, &one_liner(&["multi"], &drv, "t1"));
    assert_eq!(realised.success().paths().len(), 3);
    delete(&drv);
    let evaluated = run_one_liner(&depot, &one_liner(&["multi"], &drv, "t2"));
    assert_eq!(
        evaluated.success().paths().len(),
        1,
        "the one-liner's two paths disagree"
    );

    let drv = depot.instantiate("multi");
    let realised = ours(&depot, &["multi"], &drv, "m1");
    delete(&drv);
    let evaluated = ours(&depot, &["multi"], &drv, "m2");
    assert_eq!(realised.success().paths().len(), 3);
    assert_eq!(evaluated.success().paths(), realised.paths());
}

#[test]
fn fixed_quotes_in_attribute_names_neither_break_nor_inject() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: {
          "it's" = derivation {
            name = "quoted-@nonce@";
            builder = "/bin/sh";
            args = [ "-c" "echo quoted > $out" ];
            system = builtins.currentSystem;
          };
        }"#,
    );
    let drv = depot.collected_drv("\"it's\"");
    // The ' ends the one-liner's shell quoting early.
    run_one_liner(&depot, &one_liner(&["it's"], &drv, "theirs"))
        .fails_with(2)
        .stderr_contains("unexpected EOF");
    let run = ours(&depot, &["it's"], &drv, "mine");
    run.success();
    assert_eq!(
        std::fs::read_to_string(&run.paths()[0]).unwrap(),
        "quoted\n"
    );
}
