//! Build times in `--json` and `--junit`: each derivation Nix built, once, with the targets
//! that needed it, when it started and how long it took; each target, what the builds it
//! needed took. Checked against the builders' own clocks: two builds that run at once
//! (`-j 2`) and sleep 2 s and 4 s. Without a build log (`keep-build-log = false`), which
//! tells when a build ended, the time is `null`, never a guess.

mod common;
use common::*;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `two` and `four` each write, to their output, when their builder started and ended by
/// its own clock; `both` needs them.
const DEPOT: &str = r#"
    { }:
    let
      timed = name: seconds: derivation {
        name = "${name}-@nonce@";
        builder = "/bin/sh";
        args = [ "-c" ''
          start=$(/bin/date +%s.%N)
          /bin/sleep ${seconds}
          echo "$start $(/bin/date +%s.%N)" > $out
        '' "nbb-builder-@nonce@" ];
        system = builtins.currentSystem;
      };
    in rec {
      two = timed "two" "2";
      four = timed "four" "4";
      both = derivation {
        name = "both-@nonce@";
        builder = "/bin/sh";
        args = [ "-c" "echo ${two} ${four} > $out" "nbb-builder-@nonce@" ];
        system = builtins.currentSystem;
      };
    }
"#;

/// When a builder started and ended, by its own clock, from its output.
fn builder_clock(output: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(output).unwrap();
    let mut times = text.split_whitespace().map(|t| t.parse::<f64>().unwrap());
    (times.next().unwrap(), times.next().unwrap())
}

fn epoch_seconds(rfc3339: &str) -> f64 {
    let time = humantime_like(rfc3339);
    time.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form the tool writes.
fn humantime_like(text: &str) -> SystemTime {
    assert!(
        text.len() == 24 && text.ends_with('Z'),
        "not RFC 3339 UTC: {text}"
    );
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let seconds = days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    UNIX_EPOCH + Duration::from_secs(seconds as u64) + Duration::from_millis(n(20..23) as u64)
}

#[test]
fn builds_at_once_are_timed_within_half_a_second_of_their_builders() {
    let depot = Depot::empty();
    depot.write("default.nix", DEPOT);
    let run = depot.run([
        "-A",
        "both",
        "-j",
        "2",
        "--no-out-link",
        "--json",
        "--junit",
        "junit.xml",
    ]);
    run.success();
    let value = run.json();
    let builds = value["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 3, "{value:#}");
    let mut seconds_of = std::collections::HashMap::new();
    for build in builds {
        let drv = build["drvPath"].as_str().unwrap();
        assert_eq!(build["neededBy"], serde_json::json!(["both"]), "{build}");
        assert_eq!(build["status"], "built", "{build}");
        let seconds = build["seconds"].as_f64();
        seconds_of.insert(drv.to_owned(), seconds);
        let started = epoch_seconds(build["started"].as_str().unwrap());
        let Some(name) = ["two", "four"]
            .into_iter()
            .find(|n| drv.contains(&format!("-{n}-")))
        else {
            continue;
        };
        let output = depot.instantiate(name);
        let output = nix(
            &depot.dir,
            "nix-store",
            [os("-q"), os("--outputs"), output.into()],
        );
        let output = String::from_utf8(output.stdout).unwrap();
        let (begun, ended) = builder_clock(output.trim());
        assert!(
            (started - begun).abs() < 0.5,
            "{name} started at {started}, its builder at {begun}"
        );
        let seconds = seconds.unwrap_or_else(|| panic!("{name} was not timed: {build}"));
        assert!(
            (seconds - (ended - begun)).abs() < 0.5,
            "{name} took {seconds} s, its builder {} s",
            ended - begun
        );
    }
    // The target: what its three builds took, together.
    let target = value["targets"][0]["seconds"].as_f64().unwrap();
    let sum: f64 = seconds_of.values().map(|s| s.unwrap()).sum();
    assert!((target - sum).abs() < 0.01, "{value:#}");
    let xml = std::fs::read_to_string(depot.path("junit.xml")).unwrap();
    let report = junit_parser::from_reader(xml.as_bytes()).unwrap();
    let case = &report.suites[0].cases[0];
    assert!((case.time - target).abs() < 0.01, "{xml}");
}

#[test]
fn without_a_build_log_a_build_is_not_timed_but_not_guessed() {
    let depot = Depot::empty();
    depot.write("default.nix", DEPOT);
    // Single-user, Nix keeps none; a daemon takes no such setting from an untrusted user,
    // but the empty log directory we are given has no log of its builds.
    let logs = tempfile::tempdir().unwrap();
    let run = Run::new(
        depot
            .command()
            .args(["-A", "two", "--no-out-link", "--json"])
            .args(["--option", "keep-build-log", "false"])
            .env("NIX_LOG_DIR", logs.path()),
    );
    run.success();
    let value = run.json();
    assert_eq!(value["builds"][0]["seconds"], Value::Null, "{value:#}");
    assert_eq!(value["targets"][0]["seconds"], Value::Null, "{value:#}");
}
