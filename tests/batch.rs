//! Batches of a size where limits bite (issue 17): a fallback whose data is longer than
//! one argument may be (128 KiB), with every `.drv` gone or only some, and a realise
//! whose `.drv`s are more than a command line may hold.

mod common;
use common::*;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;

/// Linux refuses a single argument longer than this (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 128 << 10;

/// A depot of `count` cheap targets, each under an attribute name of about 400 bytes, with
/// `padding` more bytes in its store name; every tenth has a second output, `dev`. Its
/// drvmap labels them `//batch/I`.
struct Batch {
    depot: Depot,
    labels: Vec<String>,
    drvs: Vec<PathBuf>,
}

impl Batch {
    fn new(count: usize, padding: usize) -> Self {
        let depot = Depot::empty();
        let text = r#"
            { }:
            let
              target = i: derivation {
                name = "batch-${toString i}-@padding@-@nonce@";
                builder = "/bin/sh";
                outputs = if i / 10 * 10 == i then [ "out" "dev" ] else [ "out" ];
                args = [ "-c" "echo ${toString i} > $out; if [ -n \"$dev\" ]; then echo dev > $dev; fi" ];
                system = builtins.currentSystem;
              };
            in builtins.listToAttrs (builtins.genList
              (i: { name = "t${toString i}-@long@"; value = target i; }) @count@)
        "#;
        let long = "x".repeat(400);
        depot.write(
            "default.nix",
            &text
                .replace("@long@", &long)
                .replace("@padding@", &"p".repeat(padding))
                .replace("@count@", &count.to_string()),
        );
        // The drvmap a pipeline writes, from one evaluation that also writes the .drvs.
        let evaluated = nix(
            &depot.dir,
            "nix-instantiate",
            [
                "--eval",
                "--strict",
                "--json",
                "--read-write-mode",
                "-E",
                "builtins.mapAttrs (name: drv: drv.drvPath) (import ./. { })",
            ],
        );
        let drv_paths: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&evaluated.stdout).unwrap();
        let mut drvmap = serde_json::Map::new();
        let mut batch = Batch {
            depot,
            labels: Vec::new(),
            drvs: Vec::new(),
        };
        for i in 0..count {
            let name = format!("t{i}-{long}");
            let drv = drv_paths[&name].as_str().unwrap();
            let label = format!("//batch/{i}");
            drvmap.insert(
                label.clone(),
                serde_json::json!({ "drvPath": drv, "attrPath": [name] }),
            );
            batch.labels.push(label);
            batch.drvs.push(PathBuf::from(drv));
        }
        let drvmap = serde_json::Value::Object(drvmap).to_string();
        batch.depot.write("drvmap.json", &drvmap);
        batch
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--drvmap", "drvmap.json"];
        args.extend(extra);
        args.extend(self.labels.iter().map(String::as_str));
        self.depot.run(args)
    }

    /// Every output of every target, as bare Nix lists them.
    fn outputs(&self) -> HashSet<PathBuf> {
        let mut args = vec![OsStr::new("--query"), OsStr::new("--outputs")];
        args.extend(self.drvs.iter().map(|d| d.as_os_str()));
        let out = nix(&self.depot.dir, "nix-store", args);
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().map(PathBuf::from).collect()
    }
}

/// The links a batch of `count` targets gets, in the order of its outputs.
fn links(depot: &Depot, count: usize) -> Vec<PathBuf> {
    let mut links = Vec::new();
    for i in 0..count {
        let base = match i {
            0 => "result".to_string(),
            _ => format!("result-{}", i + 1),
        };
        links.push(depot.path(&base));
        if i % 10 == 0 {
            links.push(depot.path(format!("{base}-dev")));
        }
    }
    links
}

/// What Nix's indirect GC roots point to (`common::is_gc_root`, read once).
fn gc_roots() -> HashSet<PathBuf> {
    std::fs::read_dir("/nix/var/nix/gcroots/auto")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect()
}

/// `run` printed every output of the batch, each once, in the order of `links`, each of
/// which points to its output and is a GC root.
#[track_caller]
fn printed_and_linked(run: &Run, depot: &Depot, count: usize) {
    let links = links(depot, count);
    let targets: Vec<PathBuf> = links.iter().map(|l| target(l)).collect();
    assert!(run.paths() == targets, "{}", run.explain());
    let roots = gc_roots();
    assert!(links.iter().all(|l| roots.contains(l)), "{}", run.explain());
}

/// How the fallback was reached: each gone .drv is named once, and none drifted.
#[track_caller]
fn re_evaluated(run: &Run, gone: &[PathBuf]) {
    let stderr = run.stderr();
    for drv in gone {
        let note = format!("{} is gone", drv.display());
        assert_eq!(stderr.matches(&note).count(), 1, "{}", run.explain());
    }
    let notes = stderr.matches(" is gone (garbage-collected)").count();
    assert_eq!(notes, gone.len(), "{}", run.explain());
    assert!(!stderr.contains("now evaluates to"), "{}", run.explain());
    let commands = run.nix_commands();
    assert!(
        commands.len() == 1 && commands[0].starts_with("$ nix-build - "),
        "{}",
        run.explain()
    );
}

/// The fallback's expression, shown by `--dry-run`, is longer than one argument may be.
#[track_caller]
fn passes_one_argument(batch: &Batch) {
    let dry = batch.run(&["--dry-run"]);
    dry.success();
    assert!(
        dry.out.stdout.len() > MAX_ARG_STRLEN,
        "the fallback's data is only {} bytes",
        dry.out.stdout.len()
    );
}

const COUNT: usize = 300;

#[test]
fn a_fallback_of_more_than_128_kib_builds_every_target() {
    let batch = Batch::new(COUNT, 0);
    let expected = batch.outputs();
    delete_all(&batch.drvs);
    passes_one_argument(&batch);

    let run = batch.run(&["-v"]);
    run.success();
    re_evaluated(&run, &batch.drvs);
    printed_and_linked(&run, &batch.depot, COUNT);
    let printed: HashSet<PathBuf> = run.paths().into_iter().collect();
    assert!(printed == expected, "{}", run.explain());
}

#[test]
fn present_and_gone_drvs_at_that_size_build_as_realising_did() {
    let batch = Batch::new(COUNT, 0);
    let realised = batch.run(&["-v", "--log-groups"]);
    realised.success();
    let header = format!(
        "--- Realising //batch/0, //batch/1, //batch/2, //batch/3, //batch/4 and {} more",
        COUNT - 5
    );
    let stderr = realised.stderr();
    assert!(
        stderr.lines().any(|l| l == header),
        "{}",
        realised.explain()
    );
    let commands = realised.nix_commands();
    assert!(
        commands.len() == 1 && commands[0].starts_with("$ nix-store --realise "),
        "{}",
        realised.explain()
    );
    printed_and_linked(&realised, &batch.depot, COUNT);

    // A third of the .drvs collected, the rest still there; no links left.
    let gone: Vec<PathBuf> = batch.drvs.iter().step_by(3).cloned().collect();
    delete_all(&gone);
    for link in links(&batch.depot, COUNT) {
        std::fs::remove_file(link).unwrap();
    }
    passes_one_argument(&batch);

    let evaluated = batch.run(&["-v"]);
    evaluated.success();
    re_evaluated(&evaluated, &gone);
    printed_and_linked(&evaluated, &batch.depot, COUNT);
    assert!(
        evaluated.paths() == realised.paths(),
        "{}",
        evaluated.explain()
    );
}

#[test]
fn drvs_past_the_command_line_limit_are_refused_in_one_line() {
    // Linux allows a command line a quarter of the stack limit (and at least 128 KiB):
    // with a stack limit of 1 MiB, 256 KiB, which 1,200 .drvs of 200-byte names pass.
    let batch = Batch::new(1200, 150);
    let words: usize = batch.drvs.iter().map(|d| d.as_os_str().len() + 1).sum();
    assert!(words > 256 << 10, "the .drvs take only {words} bytes");
    let run = Run::new(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -s 1024 && exec \"$0\" \"$@\"", BIN])
            .args(["--drvmap", "drvmap.json"])
            .args(&batch.labels)
            .current_dir(&batch.depot.dir),
    );
    run.fails_with(7)
        .error_mentions("over the kernel's limit on a command line (ARG_MAX)");
    assert!(batch.depot.outputs().is_empty(), "{}", run.explain());
}
