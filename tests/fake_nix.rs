//! Faults real Nix cannot be made to show, injected with a FAKE `nix-store`/`nix-build`
//! first on PATH that wraps the real one: nothing unverified ever reaches stdout.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory holding a FAKE `program` that runs `script` (sh), where `$REAL` is the
/// real program.
pub fn fake_nix(program: &str, script: &str) -> (tempfile::TempDir, String) {
    let real = which(program);
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(program);
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n# FAKE {program}, injecting a fault.\nREAL={}\n{script}\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    (dir, path)
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run_with_path(depot: &Depot, path: &str, args: &[&std::ffi::OsStr]) -> Run {
    Run::new(depot.command().args(args).env("PATH", path))
}

#[test]
fn a_non_store_path_from_nix_store_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let (_fake, path) = fake_nix("nix-store", r#""$REAL" "$@" && echo /etc/passwd"#);
    run_with_path(&depot, &path, &["--drv-path".as_ref(), drv.as_os_str()])
        .fails_with(6)
        .error_mentions(
            "nix-store printed \"/etc/passwd\", which is not an output asked for; printing nothing",
        );
    // The real build and its link are in place all the same.
    assert!(target(&depot.path("result")).starts_with("/nix/store"));
}

#[test]
fn a_non_store_path_from_nix_build_is_refused() {
    let depot = Depot::new();
    let (_fake, path) = fake_nix("nix-build", r#""$REAL" "$@" && echo /etc/passwd"#);
    run_with_path(&depot, &path, &["-A".as_ref(), "hello".as_ref()])
        .fails_with(6)
        .error_mentions("nix-build printed \"/etc/passwd\", which is not an output asked for");
}

#[test]
fn a_link_to_something_else_is_refused() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let (_fake, path) = fake_nix(
        "nix-store",
        r#""$REAL" "$@" >/dev/null && ln -sfn /etc "$PWD/result" && echo "$PWD/result""#,
    );
    run_with_path(&depot, &path, &["--drv-path".as_ref(), drv.as_os_str()])
        .fails_with(6)
        .error_mentions("but it points to /etc, not a store path");
    assert_eq!(target(&depot.path("result")), Path::new("/etc"));
}
