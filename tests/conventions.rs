//! Conventions: --version, --help with examples, completions and a man page generated from
//! the clap definitions (and installed by default.nix), NO_COLOR.

mod common;
use common::*;
use std::process::Command;

#[test]
fn version_and_help() {
    let depot = Depot::empty();
    let run = depot.run(["--version"]);
    assert_eq!(
        run.success().stdout(),
        format!("nix-buildkite-build {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Each example is one command on one line (or continued with `\`), even on a terminal
    // 80 columns wide, so that none reads as two.
    let help = Run::new(depot.command().arg("--help").env("COLUMNS", "80"));
    help.success();
    for needle in [
        "Examples:",
        "\n  nix-buildkite-build --drv-path /nix/store/…-besadii.drv \\\n    --attr ops --attr besadii\n",
        "\n  nix-buildkite-build --drvmap pipeline/drvmap.json //ops/besadii //tools/foo\n",
        "\n  nix-buildkite-build --drv-path /nix/store/…-deploy.drv --exec -- --prod\n",
        "\n  nix-buildkite-build -A ops.besadii --option builders 'ssh://big x86_64-linux'\n",
        "\n  nix-buildkite-build --drvmap drvmap.json //ops/besadii //tools/foo \\\n    --junit junit.xml --copy-to 's3://cache?secret-key=/etc/nix/ci.key'\n",
        "--junit <FILE>",
        "--copy-to <STORE>",
        "--copy-required",
        "Exit status:",
    ] {
        assert!(
            help.stdout().contains(needle),
            "help lacks {needle}\n{}",
            help.explain()
        );
    }
}

#[test]
fn default_nix_installs_completions_and_a_man_page() {
    // The postInstall script default.nix gives buildRustPackage, run against this binary.
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir(out.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(BIN, out.path().join("bin/nix-buildkite-build")).unwrap();
    let script = nix(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "nix-instantiate",
        [
            "--eval",
            "--json",
            "-E",
            "(import ./default.nix { pkgs.rustPlatform.buildRustPackage = a: a; }).postInstall",
        ],
    );
    let script: String = serde_json::from_slice(&script.stdout).unwrap();
    let status = Command::new("bash")
        .args(["-e", "-c", &script])
        .env("out", out.path())
        .status()
        .unwrap();
    assert!(status.success());
    for (file, needle) in [
        (
            "share/man/man1/nix-buildkite-build.1",
            ".TH nix-buildkite-build 1",
        ),
        (
            "share/bash-completion/completions/nix-buildkite-build",
            "--drvmap",
        ),
        (
            "share/zsh/site-functions/_nix-buildkite-build",
            "#compdef nix-buildkite-build",
        ),
        (
            "share/fish/vendor_completions.d/nix-buildkite-build.fish",
            "complete -c nix-buildkite-build",
        ),
    ] {
        let text = std::fs::read_to_string(out.path().join(file)).unwrap();
        assert!(text.contains(needle), "{file} lacks {needle}");
    }
}

#[test]
fn no_color_is_respected_on_a_terminal() {
    // `script` gives the binary a terminal, where clap would colour the help.
    let help = |no_color: bool| {
        let mut command = Command::new("script");
        command
            .args(["-qec", &format!("{BIN} --help"), "/dev/null"])
            // A terminal that has colours, whatever this one is (a CI job may have none).
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let out = command.output().expect("script(1) from util-linux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        help(false).contains('\x1b'),
        "not coloured on a terminal, so this test proves nothing"
    );
    assert!(!help(true).contains('\x1b'), "coloured despite NO_COLOR");
}
