//! `--drvmap FILE LABEL...`: targets by their pipeline labels, several built in one Nix
//! invocation, links named as Nix names several roots.

mod common;
use common::*;
use std::path::Path;

fn write_drvmap(depot: &Depot, entries: &[(&str, &Path, &[&str])]) {
    let map: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(label, drv, attr)| {
            (
                label.to_string(),
                serde_json::json!({ "drvPath": drv, "attrPath": attr }),
            )
        })
        .collect();
    depot.write("drvmap.json", &serde_json::Value::Object(map).to_string());
}

#[test]
fn builds_several_labels_in_one_nix_store_with_numbered_links() {
    let depot = Depot::new();
    let hello = depot.instantiate("hello");
    let multi = depot.instantiate("multi");
    let leaf = depot.instantiate("nested.deeper.leaf");
    write_drvmap(
        &depot,
        &[
            ("//hello", &hello, &["hello"]),
            ("//multi", &multi, &["multi"]),
            ("//nested/deeper:leaf", &leaf, &["nested", "deeper", "leaf"]),
        ],
    );
    let run = depot.run([
        "-v",
        "--drvmap",
        "drvmap.json",
        "//hello",
        "//multi",
        "//hello",
    ]);
    run.success();
    assert_eq!(run.nix_commands().len(), 1, "{}", run.explain());
    assert!(run.nix_commands()[0].starts_with("$ nix-store --realise"));
    let links = ["result", "result-2", "result-2-dev", "result-2-doc"].map(|l| depot.path(l));
    let targets: Vec<_> = links.iter().map(|l| target(l)).collect();
    assert_eq!(run.paths(), targets);
    assert!(links.iter().all(|l| is_gc_root(l)));
}

#[test]
fn re_evaluates_all_labels_in_one_nix_build_when_a_drv_is_gone() {
    let depot = Depot::new();
    let hello = depot.instantiate("hello");
    let multi = depot.collected_drv("multi");
    write_drvmap(
        &depot,
        &[
            ("//hello", &hello, &["hello"]),
            ("//multi", &multi, &["multi"]),
        ],
    );
    let run = depot.run(["-v", "--drvmap", "drvmap.json", "//hello", "//multi"]);
    run.success()
        .stderr_contains(&format!("{} is gone", multi.display()));
    let commands = run.nix_commands();
    assert_eq!(commands.len(), 1, "{}", run.explain());
    assert!(commands[0].starts_with("$ nix-build - "));
    let links = ["result", "result-2", "result-2-dev", "result-2-doc"].map(|l| depot.path(l));
    assert_eq!(
        run.paths(),
        links.iter().map(|l| target(l)).collect::<Vec<_>>()
    );
}

#[test]
fn a_missing_label_names_the_closest_ones() {
    let depot = Depot::new();
    let hello = depot.instantiate("hello");
    write_drvmap(
        &depot,
        &[
            ("//ops/besadii", &hello, &["hello"]),
            ("//ops/besadii:test", &hello, &["hello"]),
            ("//web/site", &hello, &["hello"]),
            ("//zzz/unrelated", &hello, &["hello"]),
        ],
    );
    depot
        .run(["--drvmap", "drvmap.json", "//ops/besadi"])
        .fails_with(2)
        .error_mentions(r#"no label "//ops/besadi"; the closest are "//ops/besadii", "//ops/besadii:test", "//web/site""#);
}

#[test]
fn a_broken_drvmap_is_a_usage_error() {
    let depot = Depot::new();
    depot.write(
        "drvmap.json",
        r#"{"//x": {"drvPath": "/etc/passwd", "attrPath": ["x"]}, "//y": {"drvPath": 1}}"#,
    );
    depot
        .run(["--drvmap", "drvmap.json", "//x"])
        .fails_with(2)
        .error_mentions("drvPath /etc/passwd is not a path in the Nix store");
    depot
        .run(["--drvmap", "drvmap.json", "//y"])
        .fails_with(2)
        .error_mentions("\"//y\" has no drvPath string");
    depot.write("drvmap.json", "[]");
    depot
        .run(["--drvmap", "drvmap.json", "//x"])
        .fails_with(2)
        .error_mentions("not a JSON object");
    depot
        .run(["--drvmap", "missing.json", "//x"])
        .fails_with(2)
        .error_mentions("cannot read the drvmap missing.json");
}

#[test]
fn labels_of_one_drv_build_and_link_it_once_on_both_paths() {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: rec {
          hello = derivation {
            name = "hello-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            args = [ "-c" "echo hello > $out" ]; };
          alias = hello;
        }"#,
    );
    let drv = depot.instantiate("hello");
    write_drvmap(&depot, &[("a", &drv, &["hello"]), ("b", &drv, &["alias"])]);
    let realised = depot.run(["--drvmap", "drvmap.json", "a", "b"]);
    realised.success();
    assert_eq!(realised.paths(), [target(&depot.path("result"))]);
    std::fs::remove_file(depot.path("result")).unwrap();
    delete(&drv);

    let evaluated = depot.run(["--drvmap", "drvmap.json", "a", "b"]);
    evaluated.success();
    assert_eq!(evaluated.paths(), realised.paths());
    assert!(!depot.path("result-2").exists());
    let notes = evaluated.stderr().matches("is gone").count();
    assert_eq!(notes, 1, "{}", evaluated.explain());
}

#[test]
fn a_nul_byte_in_an_attribute_name_is_a_usage_error() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    write_drvmap(&depot, &[("x", &drv, &["hel\u{0}lo"])]);
    depot
        .run(["--drvmap", "drvmap.json", "x"])
        .fails_with(2)
        .error_mentions("an attribute name with a NUL byte");
}
