//! Paths: out-links and working directories whose names hold spaces, newlines, shell
//! syntax and bytes that are not UTF-8; relative links from a subdirectory; links through
//! a symlinked directory. A link that cannot be made (its directory missing, not a
//! directory, or read-only even to root) is refused before anything is built, exit 4.

mod common;
use common::*;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Names that break naive quoting, line splitting or UTF-8 decoding.
const ODD: &[&[u8]] = &[
    b"sp ace",
    b"new\nline",
    b"trailing-newline\n",
    b"tab\tand\rcr",
    b"non-utf8-\xff\xfe",
    b"bad-pair-\xc3\x28",
    b"-dash",
    b"quote'\"back\\slash",
    b"$(touch pwned)`touch pwned`",
    b"*?[glob]",
    b" ",
];

fn odd(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// The three links of `multi` made from `base`, each pointing at its printed output and
/// registered as a GC root.
#[track_caller]
fn multi_linked(run: &Run, base: &Path) {
    run.success();
    let mut links = Vec::new();
    for suffix in ["", "-dev", "-doc"] {
        let mut link = base.as_os_str().to_owned();
        link.push(suffix);
        links.push(PathBuf::from(link));
    }
    let targets: Vec<PathBuf> = links.iter().map(|l| target(l)).collect();
    assert_eq!(run.paths(), targets, "{}", run.explain());
    for link in &links {
        assert!(is_gc_root(link), "{:?} is not a GC root", link);
    }
}

#[test]
fn odd_out_link_names_on_both_paths() {
    let depot = Depot::new();
    for name in ODD {
        let link = depot.path(odd(name));
        let drv = depot.instantiate("multi");
        let run = depot.run([
            os("--drv-path"),
            drv.into(),
            os("--out-link"),
            link.clone().into(),
        ]);
        multi_linked(&run, &link);
        for suffix in ["", "-dev", "-doc"] {
            let mut name = link.clone().into_os_string();
            name.push(suffix);
            std::fs::remove_file(name).unwrap();
        }

        let drv = depot.collected_drv("multi");
        let mut relative = OsString::from("./");
        relative.push(odd(name));
        let run = depot.run([
            os("--drv-path"),
            drv.into(),
            os("-A"),
            os("multi"),
            os("--out-link"),
            relative,
        ]);
        multi_linked(&run, &link);
    }
    assert!(
        !depot.path("pwned").exists(),
        "a link name ran as a command"
    );
}

#[test]
fn odd_working_directories_on_both_paths_and_relative_links_from_below() {
    let depot = Depot::new();
    for name in ODD {
        // A copy of the depot in a directory with the odd name, and a subdirectory of it.
        let dir = depot.path(odd(name));
        depot.write(
            dir.join("default.nix"),
            include_str!("fixtures/depot/default.nix"),
        );
        std::fs::create_dir(dir.join("sub")).unwrap();

        let drv = depot.instantiate("multi");
        let run = Run::new(depot.command().current_dir(&dir).args([
            os("--drv-path"),
            drv.into(),
            os("-o"),
            os("result"),
        ]));
        multi_linked(&run, &dir.join("result"));

        // The fallback imports the odd directory itself as the root.
        let drv = depot.collected_drv("multi");
        let run = Run::new(depot.command().current_dir(&dir).args([
            os("--drv-path"),
            drv.into(),
            os("-A"),
            os("multi"),
            os("-o"),
            os("again"),
        ]));
        multi_linked(&run, &dir.join("again"));
        run.stderr_contains("re-evaluating multi");

        // From the subdirectory: a link up, one down, and the root given relative.
        std::fs::create_dir(dir.join("sub/down")).unwrap();
        for link in ["../up", "down/./link"] {
            let drv = depot.collected_drv("multi");
            let run = Run::new(depot.command().current_dir(dir.join("sub")).args([
                os("--drv-path"),
                drv.into(),
                os("-A"),
                os("multi"),
                os("-f"),
                os(".."),
                os("-o"),
                os(link),
            ]));
            let expected = request_absolute(&dir.join("sub").join(link));
            multi_linked(&run, &expected);
        }
    }
}

/// `path` with `.` and `..` resolved lexically, as Nix resolves an out-link.
fn request_absolute(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

#[test]
fn a_link_through_a_symlinked_directory_is_made_and_rooted_there() {
    let depot = Depot::new();
    std::fs::create_dir(depot.path("real")).unwrap();
    std::os::unix::fs::symlink("real", depot.path("via")).unwrap();
    let drv = depot.instantiate("multi");
    let run = depot.run([os("--drv-path"), drv.into(), os("-o"), os("via/result")]);
    multi_linked(&run, &depot.path("via/result"));
    assert!(depot.path("real/result").is_symlink());
}

/// Nothing of the depot's was built: only `.drv`s are in the store.
#[track_caller]
fn nothing_built(depot: &Depot) {
    let built = depot.outputs();
    assert!(
        built.is_empty(),
        "built although the link was refused: {built:?}"
    );
}

#[test]
fn a_link_in_a_missing_directory_or_under_a_file_is_refused_on_both_paths() {
    let depot = Depot::new();
    depot.write("file", "mine");
    for (link, problem) in [
        ("missing/deeper/result", "its directory"),
        ("file/result", "file is not a directory"),
    ] {
        let drv = depot.instantiate("hello");
        depot
            .run([os("--drv-path"), drv.into(), os("-o"), os(link)])
            .fails_with(4)
            .error_mentions(problem);
        let drv = depot.collected_drv("hello");
        depot
            .run([
                os("--drv-path"),
                drv.into(),
                os("-A"),
                os("hello"),
                os("-o"),
                os(link),
            ])
            .fails_with(4)
            .error_mentions(problem);
    }
    nothing_built(&depot);
    assert_eq!(std::fs::read_to_string(depot.path("file")).unwrap(), "mine");
}

/// Runs `script` (sh, `$1` the directory) with `dir` bind-mounted read-only, in a mount
/// namespace of its own, so that the mount is seen by nothing else and needs no cleanup.
/// chmod cannot make a directory read-only to root; a read-only mount can.
fn with_read_only(dir: &Path, script: &str) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            r#"mount --bind -o ro "$1" "$1" || exit; shift; {script}"#
        ))
        .arg("sh")
        .arg(dir);
    command
}

#[test]
fn a_link_in_a_read_only_directory_is_refused_before_building_even_for_root() {
    let depot = Depot::new();
    let ro = depot.path("ro");
    std::fs::create_dir(&ro).unwrap();
    // Only root can make the mount (CAP_SYS_ADMIN), and only where mounts can be made
    // private: not in a chroot whose / is no mount point, say.
    let possible = Run::new(&mut with_read_only(&ro, "exit 0"));
    if !possible.out.status.success() {
        eprintln!(
            "skipped: cannot make a read-only bind mount here\n{}",
            possible.explain()
        );
        return;
    }
    // The premise: root itself cannot write there.
    let probe = Run::new(with_read_only(&ro, r#"touch "$0/probe""#).arg(&ro));
    assert_ne!(
        probe.code(),
        Some(0),
        "root could write to the read-only directory"
    );
    assert!(!ro.join("probe").exists());

    // A link already there, pointing into the store: Nix would replace it, which also
    // needs the directory writable.
    let hello = depot.run(["-A", "hello", "-o", "ro/existing"]);
    hello.success();
    let hello_out = hello.paths()[0].clone();

    let run_ro = |args: Vec<OsString>| {
        let mut command = with_read_only(&ro, r#"exec "$@""#);
        command.arg(BIN).args(args).current_dir(&depot.dir);
        Run::new(&mut command)
    };
    for link in ["ro/result", "ro/existing"] {
        let drv = depot.instantiate("multi");
        run_ro(vec![os("--drv-path"), drv.into(), os("-o"), os(link)])
            .fails_with(4)
            .error_mentions(&format!(
                "cannot create links in {}: Read-only file system",
                ro.display()
            ));
        let drv = depot.collected_drv("multi");
        run_ro(vec![
            os("--drv-path"),
            drv.into(),
            os("-A"),
            os("multi"),
            os("-o"),
            os(link),
        ])
        .fails_with(4)
        .error_mentions("Read-only file system");
    }
    assert!(
        depot.outputs().iter().all(|p| *p == hello_out),
        "built although the link was refused"
    );
    assert_eq!(target(&ro.join("existing")), hello_out);
}

#[test]
fn a_deleted_working_directory_is_one_error_line() {
    let depot = Depot::new();
    let in_deleted_dir = |args: &[&OsStr]| {
        std::fs::create_dir(depot.path("gone")).unwrap();
        Run::new(
            Command::new("sh")
                .arg("-c")
                .arg(r#"cd gone && rmdir "$PWD" && exec "$0" "$@""#)
                .arg(BIN)
                .args(args)
                .current_dir(&depot.dir),
        )
    };
    // A relative link (or root) cannot be made absolute: refused before Nix runs.
    in_deleted_dir(&["-A".as_ref(), "hello".as_ref()])
        .fails_with(7)
        .error_mentions("cannot find the working directory");
    // With everything absolute, Nix itself refuses, with its own status.
    let link = depot.path("abs");
    in_deleted_dir(&[
        "-A".as_ref(),
        "hello".as_ref(),
        "-f".as_ref(),
        depot.dir.as_os_str(),
        "-o".as_ref(),
        link.as_os_str(),
    ])
    .fails_with(1)
    .stderr_contains("cannot get cwd");
    nothing_built(&depot);
}
