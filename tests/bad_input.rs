//! Bad input gets a one-line error naming the problem, a documented exit status, and
//! nothing lost: no file of the user's is replaced, and nothing is built for nothing.

mod common;
use common::*;
use std::os::unix::fs::symlink;

#[test]
fn a_collected_drv_without_an_attribute_path_exits_3() {
    let depot = Depot::new();
    let drv = depot.collected_drv("hello");
    depot
        .run([os("--drv-path"), drv.clone().into()])
        .fails_with(3)
        .error_mentions(&format!("{} is gone (garbage-collected)", drv.display()))
        .error_mentions("give its attribute path (--attr or -A)");
    assert!(depot.store_paths().is_empty(), "something was built");
}

#[test]
fn drv_paths_outside_the_store_or_not_drvs_are_usage_errors() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    depot.write("copy.drv", &std::fs::read_to_string(&drv).unwrap());
    for (path, problem) in [
        (depot.path("copy.drv"), "is not a path in the Nix store"),
        ("copy.drv".into(), "is not a path in the Nix store"),
        (
            "/nix/store/../etc/x.drv".into(),
            "is not a path in the Nix store",
        ),
        (drv.with_extension(""), "does not name a derivation (.drv)"),
        (drv.join("x.drv"), "is not a path in the Nix store"),
    ] {
        depot
            .run([os("--drv-path"), path.into()])
            .fails_with(2)
            .error_mentions(problem);
    }
}

#[test]
fn nothing_to_build_and_bad_attribute_syntax_are_usage_errors() {
    let depot = Depot::new();
    depot
        .run(["-o", "x"])
        .fails_with(2)
        .error_mentions("nothing to build");
    depot
        .run(["-A", "a..b"])
        .fails_with(2)
        .error_mentions("empty attribute name");
    depot
        .run(["-A", "a.\"b"])
        .fails_with(2)
        .error_mentions("missing closing quote");
    // clap's own errors use the same status.
    depot.run(["--no-such-flag"]).fails_with(2);
    depot.run(["--attr", "a", "-A", "a"]).fails_with(2);
}

#[test]
fn an_out_link_never_replaces_a_file_a_directory_or_a_foreign_symlink() {
    let depot = Depot::new();
    depot.write("result", "precious");
    depot.write("result-dev", "precious too");
    std::fs::create_dir(depot.path("dir")).unwrap();
    depot.write("dir/inside", "kept");
    symlink("/etc/hostname", depot.path("foreign")).unwrap();
    let drv = depot.instantiate("multi");

    for (link, what) in [
        ("result", "a file is in the way"),
        ("dir", "a directory is in the way"),
        (
            "foreign",
            "is a symlink to /etc/hostname, outside the Nix store",
        ),
    ] {
        depot
            .run([os("--drv-path"), drv.clone().into(), os("-o"), os(link)])
            .fails_with(4)
            .error_mentions(what);
    }
    // On the fallback too, refused before anything is evaluated or built.
    let collected = depot.collected_drv("hello");
    depot
        .run([os("--drv-path"), collected.into(), os("-A"), os("hello")])
        .fails_with(4)
        .error_mentions("a file is in the way");
    // A second output's link is checked before building as well.
    depot
        .run([os("--drv-path"), drv.clone().into(), os("-o"), os("fresh")])
        .success();
    for link in ["fresh", "fresh-doc"] {
        std::fs::remove_file(depot.path(link)).unwrap();
    }
    std::fs::write(depot.path("fresh-doc"), "mine").unwrap();
    depot
        .run([os("--drv-path"), drv.into(), os("-o"), os("fresh")])
        .fails_with(4)
        .error_mentions("fresh-doc: a file is in the way");

    assert_eq!(
        std::fs::read_to_string(depot.path("result")).unwrap(),
        "precious"
    );
    assert_eq!(
        std::fs::read_to_string(depot.path("result-dev")).unwrap(),
        "precious too"
    );
    assert_eq!(
        std::fs::read_to_string(depot.path("dir/inside")).unwrap(),
        "kept"
    );
    assert_eq!(
        std::fs::read_link(depot.path("foreign")).unwrap(),
        std::path::Path::new("/etc/hostname")
    );
    assert_eq!(
        std::fs::read_to_string(depot.path("fresh-doc")).unwrap(),
        "mine"
    );
    assert!(
        !depot.path("fresh").exists(),
        "built although a link was refused"
    );
}

#[test]
fn an_out_link_in_the_store_is_refused_before_building() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    depot
        .run([
            os("--drv-path"),
            drv.into(),
            os("-o"),
            os("/nix/store/result"),
        ])
        .fails_with(4)
        .error_mentions("is inside the Nix store");
    assert!(!std::path::Path::new("/nix/store/result").exists());
}

#[test]
fn an_out_link_in_a_missing_directory_is_refused_before_building() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    depot
        .run([os("--drv-path"), drv.into(), os("-o"), os("missing/result")])
        .fails_with(4)
        .error_mentions("its directory");
    assert_eq!(depot.outputs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn on_the_fallback_a_file_where_any_output_link_goes_is_refused_before_building() {
    let depot = Depot::new();
    depot.write("result-doc", "mine");
    let drv = depot.collected_drv("multi");
    depot
        .run([os("--drv-path"), drv.into(), os("-A"), os("multi")])
        .fails_with(4)
        .error_mentions("out-link");
    assert_eq!(
        std::fs::read_to_string(depot.path("result-doc")).unwrap(),
        "mine"
    );
    assert!(!depot.path("result").exists() && !depot.path("result-dev").exists());
    assert_eq!(depot.outputs(), Vec::<std::path::PathBuf>::new(), "built");
}

#[test]
fn on_the_fallback_a_file_no_link_needs_is_left_alone_without_refusing() {
    // No `out` output, so no link is called `result`: a file there is not in the way.
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: { tool = derivation {
            name = "tool-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            outputs = [ "bin" "dev" ];
            args = [ "-c" "echo bin > $bin; echo dev > $dev" ]; }; }"#,
    );
    depot.write("result", "mine");
    let drv = depot.collected_drv("tool");
    let run = depot.run([os("--drv-path"), drv.into(), os("-A"), os("tool")]);
    run.success();
    assert_eq!(
        run.paths(),
        [
            target(&depot.path("result-bin")),
            target(&depot.path("result-dev"))
        ]
    );
    assert_eq!(
        std::fs::read_to_string(depot.path("result")).unwrap(),
        "mine"
    );
}
