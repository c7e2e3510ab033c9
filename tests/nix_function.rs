//! The Nix side: `default.nix` evaluated with a stand-in for nixpkgs that holds nothing but
//! `rustPlatform.buildRustPackage`, its `mkBuildCommand` generating a step command, and that
//! command run with `bash -e -c` as Buildkite runs it.

mod common;
use common::*;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

/// A directory shaped like the package's output: `bin/nix-buildkite-build` is the binary
/// under test.
fn package_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(BIN, dir.path().join("bin/nix-buildkite-build")).unwrap();
    dir
}

/// Evaluates `body` with `package` bound to default.nix under the stand-in, and each
/// `--argstr` name bound to its value, and returns the resulting string.
fn eval_string(package: &Path, body: &str, strings: &[(&str, OsString)]) -> String {
    let names: Vec<&str> = strings.iter().map(|(n, _)| *n).collect();
    let formals = match names.is_empty() {
        true => String::new(),
        false => format!("{{ {} }}: ", names.join(", ")),
    };
    let expr = format!(
        "{formals}let package = import {PROJECT}/default.nix {{ \
           pkgs.rustPlatform.buildRustPackage = a: {{ outPath = \"{}\"; }} // a.passthru; \
         }}; in {body}",
        package.display()
    );
    let mut args = vec![
        OsString::from("--eval"),
        "--strict".into(),
        "--json".into(),
        "-E".into(),
        expr.into(),
    ];
    for (name, value) in strings {
        args.extend([
            OsString::from("--argstr"),
            OsString::from(name),
            value.clone(),
        ]);
    }
    let out = nix(Path::new(PROJECT), "nix-instantiate", args);
    serde_json::from_slice(&out.stdout).expect("not a JSON string")
}

fn bash(depot: &Depot, command: &str) -> Run {
    Run::new(
        Command::new("bash")
            .args(["-e", "-c", command])
            .current_dir(&depot.dir),
    )
}

#[test]
fn mk_build_command_realises_then_falls_back_with_odd_names() {
    let package = package_dir();
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: {
          "it's \"\${x}\" \\ $(x)".inner = derivation {
            name = "step-@nonce@";
            builder = "/bin/sh";
            args = [ "-c" "echo stepped > $out" ];
            system = builtins.currentSystem;
          };
        }"#,
    );
    let drv = {
        let out = nix(
            &depot.dir,
            "nix-instantiate",
            ["-E", r#"(import ./. {})."it's \"\${x}\" \\ $(x)".inner"#],
        );
        std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    let command = eval_string(
        package.path(),
        "package.mkBuildCommand { attrPath = [ name \"inner\" ]; drvPath = drv; outLink = link; }",
        &[
            ("name", "it's \"${x}\" \\ $(x)".into()),
            ("drv", drv.clone().into()),
            ("link", "result-it's".into()),
        ],
    );
    assert!(
        command.starts_with(&format!(
            "'{}/bin/nix-buildkite-build' ",
            package.path().display()
        )),
        "{command}"
    );

    let realised = bash(&depot, &command);
    realised.success();
    assert!(
        !realised.stderr().contains("re-evaluating"),
        "{}",
        realised.explain()
    );
    assert_eq!(realised.paths(), [target(&depot.path("result-it's"))]);
    assert_eq!(
        std::fs::read_to_string(&realised.paths()[0]).unwrap(),
        "stepped\n"
    );

    std::fs::remove_file(depot.path("result-it's")).unwrap();
    delete(&drv);
    let evaluated = bash(&depot, &command);
    evaluated.success().stderr_contains("re-evaluating");
    assert_eq!(evaluated.paths(), realised.paths());
    assert_eq!(evaluated.paths(), [target(&depot.path("result-it's"))]);
}

#[test]
fn mk_build_command_defaults_the_link_to_result_and_drops_string_context() {
    let package = package_dir();
    let command = eval_string(
        package.path(),
        r#"let drv = derivation { name = "x"; builder = "/bin/sh"; system = "s"; };
               command = package.mkBuildCommand { attrPath = [ "a" "b" ]; drvPath = drv.drvPath; };
           in if builtins.hasContext command then "kept the string context" else command"#,
        &[],
    );
    let words = shell_words::split(&command).unwrap();
    assert_eq!(
        words[0],
        format!("{}/bin/nix-buildkite-build", package.path().display())
    );
    assert_eq!(words[1], "--drv-path");
    assert!(words[2].starts_with("/nix/store/") && words[2].ends_with("-x.drv"));
    assert_eq!(
        words[3..],
        ["--attr", "a", "--attr", "b", "--out-link", "result"]
    );
}

#[test]
fn the_package_reads_its_name_and_version_from_cargo_toml() {
    let package = package_dir();
    let version = eval_string(
        package.path(),
        r#"let p = import ./default.nix { pkgs.rustPlatform.buildRustPackage = a: a; };
           in "${p.pname} ${p.version} ${p.meta.mainProgram} ${baseNameOf (toString p.cargoLock.lockFile)}""#,
        &[],
    );
    assert_eq!(
        version,
        format!(
            "nix-buildkite-build {} nix-buildkite-build Cargo.lock",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn mk_run_command_builds_and_runs_the_step_script_with_quoted_args() {
    let package = package_dir();
    let depot = Depot::new();
    let drv = depot.instantiate("script");
    let command = eval_string(
        package.path(),
        r#"package.mkRunCommand {
             attrPath = [ "script" ]; drvPath = drv; outLink = "result-run";
             args = [ "it's" "\${x}" "two words" ];
           }"#,
        &[("drv", drv.clone().into())],
    );
    let realised = bash(&depot, &command);
    realised.success();
    assert_eq!(realised.stdout(), "script ran with: it's ${x} two words\n");
    assert!(is_gc_root(&depot.path("result-run")));

    std::fs::remove_file(depot.path("result-run")).unwrap();
    delete(&drv);
    let evaluated = bash(&depot, &command);
    evaluated.success().stderr_contains("re-evaluating script");
    assert_eq!(evaluated.stdout(), realised.stdout());
    // A build that fails fails the step, with Nix's status.
    let fails = depot.instantiate("fails");
    let failing = eval_string(
        package.path(),
        r#"package.mkRunCommand { attrPath = [ "fails" ]; drvPath = drv; outLink = "r"; }"#,
        &[("drv", fails.clone().into())],
    );
    let nix = depot.bare("nix-store", [os("--realise"), fails.into()]);
    bash(&depot, &failing).fails_with(nix.code().unwrap());
}

#[test]
fn copy_to_reaches_the_command_as_given_and_the_outputs_the_cache() {
    let package = package_dir();
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    // A store URI is data, however it is written: here a cache in a directory whose name
    // would break naive quoting (no space, `"` or backquote, which no URI may hold).
    let cache = depot.path("it's-$(x)");
    let uri = format!("file://{}", cache.display());
    let command = eval_string(
        package.path(),
        r#"package.mkBuildCommand { attrPath = [ "hello" ]; drvPath = drv; copyTo = uri; }"#,
        &[("drv", drv.clone().into()), ("uri", uri.clone().into())],
    );
    let words = shell_words::split(&command).unwrap();
    assert_eq!(
        words[words.len() - 2..],
        ["--copy-to".to_owned(), uri.clone()]
    );
    let run = bash(&depot, &command);
    run.success();
    assert!(run.notes().is_empty(), "{}", run.explain());
    let name = run.paths()[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let hash = &name[..32];
    assert!(
        cache.join(format!("{hash}.narinfo")).exists(),
        "{}",
        run.explain()
    );

    // A list of stores, each its own flag, and for mkRunCommand too.
    let command = eval_string(
        package.path(),
        r#"package.mkRunCommand {
             attrPath = [ "script" ]; drvPath = drv; outLink = "r"; copyTo = [ "file:///a" "file:///b" ];
           }"#,
        &[("drv", drv.into())],
    );
    let words = shell_words::split(&command).unwrap();
    let copies: Vec<&String> = words
        .windows(2)
        .filter(|w| w[0] == "--copy-to")
        .map(|w| &w[1])
        .collect();
    assert_eq!(copies, ["file:///a", "file:///b"]);
}
