//! The garbage collector takes the `.drv` after we read it and before Nix does: the
//! fallback still runs, says so in one line, and ends exactly as if the `.drv` had been
//! gone from the start. Injected by a FAKE nix-store that deletes the `.drv` first (real
//! Nix cannot be timed to collect in that window).

mod common;
use common::*;
use std::path::Path;

/// Deletes every `.drv` it is asked to realise, as a collection would, then runs the real
/// nix-store. `keep-derivations = false` lets a `.drv` go while its outputs stay rooted.
const COLLECTS_FIRST: &str = r#"
if [ "$1" = --realise ]; then
  for arg in "$@"; do
    case "$arg" in *.drv)
      NIX_CONFIG="$NIX_CONFIG
keep-derivations = false" "$REAL" --delete "$arg" >/dev/null 2>&1
      [ ! -e "$arg" ] || { echo "FAKE nix-store: cannot delete $arg" >&2; exit 99; }
      echo "FAKE nix-store: collected $arg" >&2 ;;
    esac
  done
fi
exec "$REAL" "$@"
"#;

/// Runs `attr` by its .drv under the FAKE, and checks the race was hit and recovered from.
fn race(depot: &Depot, attr: &str, links: &[&str]) -> Run {
    let drv = depot.instantiate(attr);
    let fake = Fake::new("nix-store", COLLECTS_FIRST);
    let run = Run::new(
        depot
            .command()
            .args([os("--drv-path"), drv.clone().into(), os("-A"), os(attr)])
            .env("PATH", &fake.path),
    );
    run.success()
        .stderr_contains(&format!("FAKE nix-store: collected {}", drv.display()));
    assert_eq!(
        run.notes(),
        [format!(
            "nix-buildkite-build: {} is gone (garbage-collected); re-evaluating {attr}",
            drv.display()
        )],
        "{}",
        run.explain()
    );
    let linked: Vec<_> = links.iter().map(|l| target(&depot.path(l))).collect();
    assert_eq!(run.paths(), linked, "{}", run.explain());
    for link in links {
        assert!(is_gc_root(&depot.path(link)), "{link} is not a GC root");
    }
    assert!(
        drv.exists(),
        "the re-evaluation made another derivation than the one recorded"
    );
    run
}

#[test]
fn a_drv_collected_before_nix_reads_it_is_re_evaluated_and_built() {
    let depot = Depot::new();
    let run = race(&depot, "hello", &["result"]);
    assert_eq!(
        std::fs::read_to_string(&run.paths()[0]).unwrap(),
        "hello!\n"
    );
}

#[test]
fn a_drv_collected_while_its_outputs_stay_rooted_is_re_evaluated_to_the_same_outputs() {
    let depot = Depot::new();
    let before = depot.run(["-A", "multi"]);
    before.success();
    let run = race(&depot, "multi", &["result", "result-dev", "result-doc"]);
    assert_eq!(run.paths(), before.paths());
}

#[test]
fn without_an_attribute_path_the_race_exits_3_and_prints_nothing() {
    let depot = Depot::new();
    let drv = depot.instantiate("hello");
    let fake = Fake::new("nix-store", COLLECTS_FIRST);
    Run::new(
        depot
            .command()
            .args([os("--drv-path"), drv.clone().into()])
            .env("PATH", &fake.path),
    )
    .fails_with(3)
    .stderr_contains("FAKE nix-store: collected")
    .error_mentions(&format!(
        "{} is gone (garbage-collected) and cannot be re-evaluated",
        drv.display()
    ));
    assert!(!Path::new(&depot.path("result")).exists());
}

/// Reports the outputs the first time as if built, but they are not in the store, as when a
/// collection takes them as Nix finishes (real Nix cannot be timed to lose that race); runs
/// the real nix-store after that. `$MARK` records the first call.
const LOSES_ITS_OUTPUTS_ONCE: &str = r#"
if [ ! -e "$MARK" ]; then
  : > "$MARK"
  for a in "$@"; do case "$a" in *.drv) out=$("$REAL" -q --outputs "$a");; esac; done
  case " $* " in
    *" --add-root "*) ln -sfn "$out" "$PWD/result" && echo "$PWD/result" ;;
    *) echo "$out" ;;
  esac
  echo "FAKE nix-store: its output was collected" >&2
  exit 0
fi
exec "$REAL" "$@"
"#;

#[test]
fn an_output_collected_as_nix_finishes_is_built_again_and_rooted() {
    for link in [true, false] {
        let depot = Depot::new();
        let drv = depot.instantiate("hello");
        let fake = Fake::new("nix-store", LOSES_ITS_OUTPUTS_ONCE);
        let mut args = vec![os("--drv-path"), drv.into()];
        if !link {
            args.push(os("--no-out-link"));
        }
        let run = Run::new(
            depot
                .command()
                .args(args)
                .env("PATH", &fake.path)
                .env("MARK", depot.path("mark")),
        );
        run.success()
            .stderr_contains("FAKE nix-store: its output was collected");
        let [path] = &run.paths()[..] else {
            panic!("not one path\n{}", run.explain());
        };
        assert_eq!(std::fs::read_to_string(path).unwrap(), "hello!\n");
        assert_eq!(
            run.notes(),
            [format!(
                "nix-buildkite-build: {} was deleted by a garbage collection as Nix finished; \
                 running Nix again to build and root it",
                path.display()
            )],
            "{}",
            run.explain()
        );
        if link {
            assert_eq!(target(&depot.path("result")), *path);
            assert!(is_gc_root(&depot.path("result")));
        }
    }
}
