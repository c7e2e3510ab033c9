//! `--json`: one JSON object on stdout: `targets`, one per target, each with the fields of
//! `nix build --json` plus `outLinks`, `method`, `status` and `seconds`; `builds`, each
//! derivation Nix built once, with the targets that needed it, when it started and how
//! long it took. Valid whatever the names and paths. (When Nix fails:
//! `failure_summary.rs`; build times: `durations.rs`.)

mod common;
use common::*;
use serde_json::{Value, json};

fn parse(run: &Run) -> Value {
    run.success();
    serde_json::from_slice(&run.out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", run.explain()))
}

/// `value` without the fields whose figures vary from run to run (times), after checking
/// they are there.
fn without_times(mut value: Value) -> Value {
    for target in value["targets"].as_array_mut().unwrap() {
        let seconds = target.as_object_mut().unwrap().remove("seconds");
        assert!(
            matches!(&seconds, Some(s) if s.is_number() || s.is_null()),
            "seconds: {seconds:?}"
        );
    }
    for build in value["builds"].as_array_mut().unwrap() {
        let build = build.as_object_mut().unwrap();
        for field in ["started", "seconds", "status"] {
            assert!(build.remove(field).is_some(), "no {field}");
        }
    }
    value
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
    let drv_text = drv.to_string_lossy().into_owned();
    assert_eq!(
        without_times(realised),
        json!({
            "targets": [{
                "drvPath": drv,
                "outputs": { "out": path("r"), "dev": path("r-dev"), "doc": path("r-doc") },
                "outLinks": { "out": link("r"), "dev": link("r-dev"), "doc": link("r-doc") },
                "method": "realise",
                "status": "built",
            }],
            "builds": [{ "drvPath": drv, "neededBy": [drv_text] }],
        })
    );
    for l in ["r", "r-dev", "r-doc"] {
        std::fs::remove_file(depot.path(l)).unwrap();
    }
    delete(&drv);
    let evaluated = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.clone().into(),
        os("-A"),
        os("multi"),
        os("-o"),
        os("r"),
    ]));
    // Built already, so nothing was built this time, which took no time (not "-0.0").
    assert_eq!(evaluated["targets"][0]["seconds"].to_string(), "0.0");
    assert_eq!(
        without_times(evaluated),
        json!({
            "targets": [{
                "attrPath": ["multi"],
                "drvPath": drv,
                "outputs": { "out": path("r"), "dev": path("r-dev"), "doc": path("r-doc") },
                "outLinks": { "out": link("r"), "dev": link("r-dev"), "doc": link("r-doc") },
                "method": "evaluate",
                "status": "built",
            }],
            "builds": [],
        })
    );
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
        value["targets"][0]["outLinks"]["out"],
        depot.path(odd).to_string_lossy().as_ref()
    );

    let value = parse(&depot.run([
        os("--json"),
        os("--drv-path"),
        drv.clone().into(),
        os("--no-out-link"),
    ]));
    assert_eq!(value["targets"][0]["outLinks"], json!({}));

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
    assert_eq!(value["targets"][0]["label"], "label \"with\" quotes");
    assert_eq!(value["targets"].as_array().unwrap().len(), 1);
}

#[test]
fn labels_naming_one_drv_are_each_a_target() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    depot.write(
        "drvmap.json",
        &json!({
            "//one": { "drvPath": drv, "attrPath": ["hello"] },
            "//two": { "drvPath": drv, "attrPath": ["hello"] },
        })
        .to_string(),
    );
    let value = parse(&depot.run(["--json", "--drvmap", "drvmap.json", "//two", "//one"]));
    let targets = value["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["label"], "//two");
    assert_eq!(targets[1]["label"], "//one");
    assert_eq!(targets[0]["outputs"], targets[1]["outputs"]);
    assert_eq!(targets[0]["outLinks"], targets[1]["outLinks"]);
    assert_eq!(value["builds"][0]["neededBy"], json!(["//two", "//one"]));
}
