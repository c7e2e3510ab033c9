//! Attribute names are data, never code: any byte string reaches Nix as the name it is,
//! through `--attr` (as generated commands pass them) and through `-A` (as people type).

mod common;
use common::*;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Each name in `tests/fixtures/odd-names.nix`, as a path of raw bytes, with the number
/// its target prints.
fn cases() -> Vec<(Vec<&'static [u8]>, &'static str)> {
    vec![
        (vec![b"it's"], "1"),
        (vec![b"q\"uote"], "2"),
        (
            vec![b"${builtins.abort \"evaluated an attribute name\"}"],
            "3",
        ),
        (vec![b"back\\slash\\"], "4"),
        (vec![b"sp ace"], "5"),
        (vec![b"new\nline"], "6"),
        (vec![b"dot.ted"], "7"),
        (vec![b"$(touch pwned)`touch pwned`"], "8"),
        (vec![b"\"; builtins.abort \"x"], "9"),
        (vec![b""], "10"),
        (vec![b"cr\rlf\ttab"], "11"),
        (vec![b"dollar$$${{}}"], "12"),
        (vec![b"non-utf8-\xff"], "13"),
        // Names that look like flags are still names.
        (vec![b"-dash"], "15"),
        (vec![b"--strict"], "16"),
        (vec![b"outer", b"in'ner\""], "14"),
    ]
}

fn odd_depot() -> Depot {
    let depot = Depot::empty();
    let text = include_str!("fixtures/odd-names.nix").replace("@nonce@", &depot.nonce);
    // A raw 0xff byte: Nix names need not be UTF-8.
    let bytes = text.into_bytes();
    let at = bytes.windows(6).position(|w| w == b"@byte@").unwrap();
    let bytes = [&bytes[..at], b"\xff", &bytes[at + 6..]].concat();
    std::fs::write(depot.path("default.nix"), bytes).unwrap();
    depot
}

/// `-A` syntax for a path: every name quoted, `"` and `\` escaped.
fn quoted(path: &[&[u8]]) -> OsString {
    let mut text = Vec::new();
    for (i, name) in path.iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.push(b'"');
        for &b in *name {
            if b == b'"' || b == b'\\' {
                text.push(b'\\');
            }
            text.push(b);
        }
        text.push(b'"');
    }
    OsString::from_vec(text)
}

fn built_number(run: &Run) -> String {
    run.success();
    assert_eq!(run.paths().len(), 1, "{}", run.explain());
    std::fs::read_to_string(&run.paths()[0])
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn every_odd_name_builds_through_attr_flags_and_through_a_path() {
    let depot = odd_depot();
    for (i, (path, number)) in cases().into_iter().enumerate() {
        let mut args = vec![os("--no-out-link")];
        for name in &path {
            args.push(os("--attr"));
            args.push(OsString::from_vec(name.to_vec()));
        }
        let run = depot.run(&args);
        assert_eq!(built_number(&run), number, "--attr {path:?}");

        let run = depot.run([os("-o"), os(&format!("link{i}")), os("-A"), quoted(&path)]);
        assert_eq!(built_number(&run), number, "-A {:?}", quoted(&path));
        assert_eq!(run.paths(), [target(&depot.path(format!("link{i}")))]);
    }
    assert!(
        !depot.path("pwned").exists(),
        "a name ran as a shell command"
    );
}

#[test]
fn a_collected_drv_with_an_odd_name_is_re_evaluated_to_the_same_drv() {
    let depot = odd_depot();
    let drv = {
        let out = nix(
            &depot.dir,
            "nix-instantiate",
            ["-E", r#"(import ./.).outer."in'ner\"""#],
        );
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(out.stdout.trim_ascii_end()))
    };
    delete(&drv);
    let run = depot.run([
        os("--drv-path"),
        drv.clone().into(),
        os("--attr"),
        os("outer"),
        os("--attr"),
        os("in'ner\""),
    ]);
    assert_eq!(built_number(&run), "14");
    run.stderr_contains("re-evaluating outer.\"in'ner\\\"\"");
    assert!(
        drv.exists(),
        "evaluated a different derivation than the one recorded"
    );
}

#[test]
fn a_line_break_in_a_name_stays_inside_our_line() {
    // Else a name could start a line of its own, such as a Buildkite group header.
    let depot = odd_depot();
    let run = depot.run(["--log-groups", "--no-out-link", "--attr", "new\nline"]);
    assert_eq!(built_number(&run), "6");
    run.stderr_contains(r#"--- Re-evaluating "new\nline""#);
    assert!(
        !run.stderr().lines().any(|l| l.starts_with("line\"")),
        "{}",
        run.explain()
    );
}

#[test]
fn bare_nix_syntax_works_for_plain_and_dotted_names() {
    let depot = odd_depot();
    assert_eq!(
        built_number(&depot.run(["--no-out-link", "-A", "\"dot.ted\""])),
        "7"
    );
    assert_eq!(
        built_number(&depot.run(["--no-out-link", "-A", "outer.\"in'ner\\\"\""])),
        "14"
    );
    depot
        .run(["--no-out-link", "-A", "dot.ted"])
        .fails_with(1)
        .error_mentions("cannot build dot.ted: the root");
}
