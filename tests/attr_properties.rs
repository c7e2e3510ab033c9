//! Properties of attribute paths over generated names, not only the hand-picked ones in
//! `odd_names`: every path survives `-A` rendering and parsing, every name survives being
//! written as a Nix string literal and read back by the real Nix, and the parser copes
//! with any bytes (including the fuzzer's corpus in `fuzz/corpus/attr_path/`).
//!
//! Names given to Nix never contain NUL: argv cannot carry it, and neither can a Nix string.

mod common;
use common::nix_config;
use nix_buildkite_build::attr::{AttrPath, nix_string};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

#[path = "../fuzz/round_trip.rs"]
mod round_trip;
use round_trip::check_parse;

/// A name built from the pieces that have broken attribute-name quoting somewhere: the
/// `-A` separators and quotes, Nix's string delimiters, escapes and interpolations, line
/// ends Nix would normalise, and bytes that are not UTF-8. Random bytes fill the gaps
/// between the pieces nobody thought of.
fn name() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => "[a-zA-Z0-9_'+-]{1,4}".prop_map(String::into_bytes),
        3 => prop::sample::select(vec![
            &b"."[..], b"\"", b"\\", b"\\\\", b"\\\"", b"\"\"", b"$", b"${", b"$${", b"$$",
            b"{", b"}", b"''", b"''$", b"''\\", b"\r", b"\n", b"\r\n", b"\t", b" ",
            b"${builtins.abort \"interpolated\"}", b"\xff", b"\xc3", b"\xe2\x80", b"#", b"/*",
        ])
        .prop_map(<[u8]>::to_vec),
        2 => (1u8..=255).prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn path() -> impl Strategy<Value = AttrPath> {
    prop::collection::vec(name(), 0..6).prop_map(AttrPath)
}

/// How a byte of a name is written in `-A` text other than `render`'s way.
#[derive(Clone, Copy, Debug)]
enum Writing {
    /// Bare if it can be (not `.` or `"`), else quoted.
    Bare,
    Quoted,
    /// Quoted and preceded by `\`, which `render` only does for `"` and `\`.
    Escaped,
    /// Quoted, in a new pair of quotes right after the previous one (`"a""b"`).
    NewQuotes,
}

/// A path, and how to write each byte of it: every way `-A` syntax allows, so that `parse`
/// is checked against the syntax itself and not only against `render`.
fn written_path() -> impl Strategy<Value = Vec<Vec<(u8, Writing)>>> {
    let byte = prop_oneof![prop::sample::select(&b".\"\\$a{}\n"[..]), 1u8..=255,];
    let writing = prop::sample::select(vec![
        Writing::Bare,
        Writing::Quoted,
        Writing::Escaped,
        Writing::NewQuotes,
    ]);
    prop::collection::vec(prop::collection::vec((byte, writing), 0..8), 0..5)
}

fn write(path: &[Vec<(u8, Writing)>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in path.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if name.is_empty() {
            out.extend_from_slice(b"\"\"");
            continue;
        }
        let mut quoted = false;
        for &(b, writing) in name {
            let bare = matches!(writing, Writing::Bare) && b != b'.' && b != b'"';
            if bare && quoted {
                out.push(b'"');
                quoted = false;
            } else if !bare && (!quoted || matches!(writing, Writing::NewQuotes)) {
                if quoted {
                    out.push(b'"');
                }
                out.push(b'"');
                quoted = true;
            }
            if quoted && (matches!(writing, Writing::Escaped) || b == b'"' || b == b'\\') {
                out.push(b'\\');
            }
            out.push(b);
        }
        if quoted {
            out.push(b'"');
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn render_then_parse_gives_back_the_path(path in path()) {
        let rendered = path.render();
        prop_assert_eq!(AttrPath::parse(&rendered), Ok(path.clone()), "rendered as {}", rendered.escape_ascii());
        // The binary turns `-A` into an OsString through `From`, which must be `render`.
        prop_assert_eq!(OsString::from(path).into_vec(), rendered);
    }

    #[test]
    fn parse_reads_every_way_of_writing_a_path(written in written_path()) {
        let text = write(&written);
        let names: Vec<Vec<u8>> = written
            .iter()
            .map(|name| name.iter().map(|&(b, _)| b).collect())
            .collect();
        prop_assert_eq!(AttrPath::parse(&text), Ok(AttrPath(names)), "written as {:?}", text.escape_ascii().to_string());
    }

    #[test]
    fn parse_accepts_or_refuses_any_bytes_without_panicking(
        text in prop::collection::vec(any::<u8>(), 0..64)
    ) {
        check_parse(&text);
    }

    /// Uniform bytes rarely close a quote or follow a dot with a dot, so also try text
    /// made mostly of the bytes the parser branches on.
    #[test]
    fn parse_handles_texts_dense_in_syntax(
        text in prop::collection::vec(
            prop::sample::select(&b"..\"\"\\\\a$\n\xff"[..]), 0..32)
    ) {
        check_parse(&text);
    }
}

/// Every file of the fuzzer's corpus, so `cargo test` keeps what fuzzing found without
/// needing nightly Rust or cargo-fuzz.
#[test]
fn the_fuzz_corpus_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/attr_path");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let text = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check_parse(&text));
        assert!(result.is_ok(), "corpus file {} fails", path.display());
        files += 1;
    }
    // A missing or emptied corpus would otherwise pass silently.
    assert!(files >= 20, "only {files} files in {}", dir.display());
}

/// Evaluates, in one `nix-instantiate`, whether each literal equals the values passed raw
/// (through argv, untouched by any quoting of ours) as `--argstr vI VALUE`. Returns the
/// indices of the cases that differ, or Nix's error if a literal broke out of its string
/// or interpolated.
fn nix_disagreements(cases: &[(Vec<u8>, Vec<Vec<u8>>)]) -> Result<Vec<usize>, String> {
    let mut expr = b"builtins.filter (i: i != null) [\n".to_vec();
    let mut args: Vec<OsString> = vec!["--eval".into(), "--strict".into(), "--json".into()];
    let mut arg = 0;
    for (index, (literal, values)) in cases.iter().enumerate() {
        expr.extend_from_slice(b"  (if ");
        expr.extend_from_slice(literal);
        expr.extend_from_slice(b" == [");
        for value in values {
            expr.extend_from_slice(format!(" v.v{arg}").as_bytes());
            args.extend(["--argstr".into(), format!("v{arg}").into()]);
            args.push(OsString::from_vec(value.clone()));
            arg += 1;
        }
        expr.extend_from_slice(format!(" ] then null else {index})\n").as_bytes());
    }
    expr.extend_from_slice(b"]\n");
    // Every argument declared: Nix 2.3 passes a function only those it declares, `...` or not.
    let formals: String = (0..arg).map(|i| format!("v{i}, ")).collect();
    let mut function = format!("{{ {formals}... }}@v: ").into_bytes();
    function.extend(expr);
    args.extend(["-E".into(), OsString::from_vec(function)]);
    let out = Command::new("nix-instantiate")
        .args(&args)
        .env("NIX_CONFIG", nix_config())
        .output()
        .expect("cannot run nix-instantiate (is Nix installed?)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))))
}

/// Names that, escaped carelessly, would run code in the fallback's expression. Each is
/// evaluated alone, so that a failure shows which escape is missing.
#[test]
fn no_name_is_ever_evaluated_as_nix() {
    // The injected code is written with '' strings and ends in a comment, so that it stays
    // valid Nix when only some of `"`, `\` and `$` are escaped.
    let names: &[&[u8]] = &[
        b"${builtins.abort ''interpolated''}",
        b"\\${builtins.abort ''interpolated after a backslash''}",
        b"''${builtins.abort ''interpolated after two quotes''}",
        b"\" + builtins.abort ''broke out of the string'' #",
        b"\\\" + builtins.abort ''broke out after a backslash'' #",
    ];
    for name in names {
        let case = (list_of(name), vec![name.to_vec()]);
        assert_eq!(
            nix_disagreements(&[case]),
            Ok(vec![]),
            "{}",
            name.escape_ascii()
        );
    }
    let path = AttrPath(names.iter().map(|n| n.to_vec()).collect());
    assert_eq!(nix_disagreements(&[(path.nix_list(), path.0)]), Ok(vec![]));
}

/// `[ (LITERAL) ]`, so each case compares lists whether it checks one name or a path. The
/// parentheses and line end let code a name smuggles out parse, and so run.
fn list_of(name: &[u8]) -> Vec<u8> {
    [&b"[ ("[..], &nix_string(name), b"\n  ) ]"].concat()
}

/// The seed for the generated names: `NBB_NIX_SEED` to replay a failure, else fresh each
/// run so that CI keeps trying new names.
fn seed() -> u64 {
    std::env::var("NBB_NIX_SEED")
        .ok()
        .map(|s| s.parse().expect("NBB_NIX_SEED must be a number"))
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        })
}

/// Names as the fallback writes them (`nix_list` of the path `-A` text parses to, and
/// `nix_string` of its rendering for messages), each read by the real Nix as exactly the
/// bytes it started as.
#[test]
fn nix_reads_every_literal_as_the_name_it_was_written_from() {
    let seed = seed();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = path();
    let mut cases = Vec::new();
    // Hand-picked first: a random batch might miss them.
    let fixed: &[&[u8]] = &[
        b"",
        b"cr\r\nlf\rcr\n",
        b"trailing$",
        b"trailing\\",
        b"\xff\xfe not utf-8 \xc3(",
        // Nix splits `-abc` into `-a -b -c` on its command line; not in an --argstr value,
        // or this test's own way of passing names would be wrong.
        b"-abc",
        b"--help",
    ];
    let mut paths: Vec<AttrPath> = vec![AttrPath(fixed.iter().map(|n| n.to_vec()).collect())];
    for _ in 0..300 {
        paths.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    for path in &paths {
        let through_a = AttrPath::parse(&path.render()).unwrap();
        cases.push((through_a.nix_list(), path.0.clone()));
        for name in &path.0 {
            cases.push((list_of(name), vec![name.clone()]));
        }
        cases.push((list_of(&path.render()), vec![path.render()]));
    }
    let wrong = nix_disagreements(&cases)
        .unwrap_or_else(|e| panic!("Nix could not evaluate the literals (seed {seed}):\n{e}"));
    let report: Vec<String> = wrong
        .iter()
        .take(5)
        .map(|&i| {
            let names: Vec<String> = cases[i]
                .1
                .iter()
                .map(|n| n.escape_ascii().to_string())
                .collect();
            format!("{} for {names:?}", cases[i].0.escape_ascii())
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} literals read back differently (replay with NBB_NIX_SEED={seed}):\n{}",
        wrong.len(),
        cases.len(),
        report.join("\n")
    );
}
