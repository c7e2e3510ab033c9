//! `--json`: one JSON array on stdout, one object per target, the fields of
//! `nix build --json` plus `outLinks`, `method` and `status`; valid whatever the names and
//! paths. (When Nix fails: `failure_summary.rs`.)

mod common;
use common::*;
use serde_json::{Value, json};

fn parse(run: &Run) -> Value {
    run.success();
    serde_json::from_slice(&run.out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", run.explain()))
}

#[test]
fn describes_realised_and_evaluated_targets_alike() {
    let depot = Depot::new();
    let drv = depot.instantiate("multi");
    let realised = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.clone().into(),
        os("-o"),
        os("r"),
    ]));
    let path = |link: &str| target(&depot.path(link)).to_string_lossy().into_owned();
    let link = |link: &str| depot.path(link).to_string_lossy().into_owned();
    assert_eq!(
        realised,
        json!([{
            "drvPath": drv,
            "outputs": { "out": path("r"), "dev": path("r-dev"), "doc": path("r-doc") },
            "outLinks": { "out": link("r"), "dev": link("r-dev"), "doc": link("r-doc") },
            "method": "realise",
            "status": "built",
        }])
    );
    for l in ["r", "r-dev", "r-doc"] {
        std::fs::remove_file(depot.path(l)).unwrap();
    }
    delete(&drv);
    let evaluated = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.into(),
        os("-A"),
        os("multi"),
        os("-o"),
        os("r"),
    ]));
    let mut expected = realised;
    expected[0]["method"] = "evaluate".into();
    assert_eq!(evaluated, expected);
}

#[test]
fn stays_valid_for_odd_links_and_labels_and_without_links() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let odd = "a \"quoted\\\" \n\t link ${x}";
    let value = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.clone().into(),
        os("-o"),
        os(odd),
    ]));
    assert_eq!(
        value[0]["outLinks"]["out"],
        depot.path(odd).to_string_lossy().as_ref()
    );

    let value = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.clone().into(),
        os("--no-out-link"),
    ]));
    assert_eq!(value[0]["outLinks"], json!({}));

    depot.write(
        "drvmap.json",
        &json!({ "label \"with\" quotes": { "drvPath": drv, "attrPath": ["hello"] } }).to_string(),
    );
    let value = parse(&depot.run([
        "--json",
        "--no-out-link",
        "--drvmap",
        "drvmap.json",
        "label \"with\" quotes",
    ]));
    assert_eq!(value[0]["label"], "label \"with\" quotes");
    assert_eq!(value.as_array().unwrap().len(), 1);
}
