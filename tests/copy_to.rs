//! `--copy-to STORE`: what a step built goes to binary caches, real ones: a directory
//! (`file://`) and nginx serving one over HTTP with WebDAV's PUT (started by each test on
//! 127.0.0.1, from Debian's package; `scripts/test-nix` installs it in every chroot). The
//! proof of a push is a fresh, empty store that substitutes the outputs from the cache
//! instead of building them, with the cache's public key trusted and signatures required.
//! Then the faults: a cache that cannot be written (a read-only directory, HTTP 403), one
//! that cannot be reached, a server killed mid-upload and a SIGTERM mid-copy: the build's
//! status and stdout stay as they were, a warning says why, and no cache claims a path it
//! does not have. (Over ssh: `remote.rs`.)

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `app` refers to `lib`, so its closure is both; `big` is 64 MiB of random bytes.
const DEPOT: &str = r#"
    { }:
    let
      build = name: script: derivation {
        name = "${name}-@nonce@";
        builder = "/bin/sh";
        args = [ "-c" script "nbb-builder-@nonce@" ];
        system = builtins.currentSystem;
      };
    in rec {
      lib = build "lib" "echo lib > $out";
      app = build "app" "echo ${lib} > $out";
      fails = build "fails" "echo 'this build fails' >&2; exit 3";
      big = build "big" "/bin/head -c 67108864 /dev/urandom > $out";
      lists = build "lists" ''
        echo '#!/bin/sh' > $out
        echo 'for f in "$1"/*.narinfo; do echo "$f"; done' >> $out
        /bin/chmod +x $out
      '';
    }
"#;

fn depot() -> Depot {
    let depot = Depot::empty();
    depot.write("default.nix", DEPOT);
    depot
}

/// A signing key pair made by `nix-store --generate-binary-cache-key`.
struct Key {
    secret: PathBuf,
    public: String,
}

impl Key {
    fn new(dir: &Path) -> Key {
        let (secret, public) = (dir.join("key.secret"), dir.join("key.public"));
        nix(
            dir,
            "nix-store",
            [
                os("--generate-binary-cache-key"),
                os("nbb-test-1"),
                secret.clone().into(),
                public.clone().into(),
            ],
        );
        Key {
            secret,
            public: std::fs::read_to_string(public).unwrap().trim().to_owned(),
        }
    }
}

/// The options that keep a failed transfer from being retried by Nix itself for seconds.
fn quick() -> [&'static str; 3] {
    ["--option", "download-attempts", "1"]
}

/// The store paths of `target` in `depot`'s outputs: what `run` printed.
fn printed(run: &Run) -> Vec<PathBuf> {
    run.success();
    run.paths()
}

/// The path `path` refers to (its references), as the store has them.
fn references(path: &Path) -> Vec<PathBuf> {
    let out = nix(
        Path::new("/"),
        "nix-store",
        [os("--query"), os("--references"), path.into()],
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// A fresh, empty store, which substitutes `paths` from `cache`, trusting `key`, with
/// signatures required; Nix cannot build a path it is given as a store path, only
/// substitute it. Returns whether it could, and what Nix said.
fn substitutes(cache: &str, key: &str, paths: &[PathBuf]) -> (bool, String) {
    let root = tempfile::Builder::new()
        .prefix("nbb-fresh-store-")
        .tempdir()
        .unwrap();
    let mut command = Command::new("nix-store");
    command
        .arg("--realise")
        .args(paths)
        .args(["--option", "substituters", cache])
        .args(["--option", "trusted-public-keys", key])
        .args(["--option", "require-sigs", "true"])
        .args(quick())
        .env(
            "NIX_REMOTE",
            format!("local?root={}", root.path().display()),
        )
        .env("NIX_CONFIG", nix_config());
    let out = command.output().unwrap();
    let there = paths
        .iter()
        .all(|p| root.path().join(p.strip_prefix("/").unwrap()).exists());
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success() && there, said)
}

/// No `.narinfo` in `dir` names a NAR the cache does not have, whole.
#[track_caller]
fn claims_only_what_it_has(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".narinfo") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("{name:?} has no {key}\n{text}"))
                .trim()
                .to_owned()
        };
        let nar = dir.join(field("URL:"));
        let size: u64 = field("FileSize:").parse().unwrap();
        let meta = std::fs::metadata(&nar).unwrap_or_else(|e| {
            panic!("{name:?} claims {}, which is not there: {e}", nar.display())
        });
        assert_eq!(meta.len(), size, "{name:?}: {} is cut short", nar.display());
    }
}

#[test]
fn a_signed_file_cache_gets_the_closure_which_a_fresh_store_substitutes() {
    let depot = depot();
    let key = Key::new(&depot.dir);
    let cache = depot.path("cache");
    let uri = format!(
        "file://{}?secret-key={}",
        cache.display(),
        key.secret.display()
    );
    let run = depot.run(["-A", "app", "--copy-to", &uri]);
    let paths = printed(&run);
    assert_eq!(paths.len(), 1, "{}", run.explain());
    assert!(run.notes().is_empty(), "{}", run.explain());
    let closure: Vec<PathBuf> = paths.iter().cloned().chain(references(&paths[0])).collect();
    assert_eq!(closure.len(), 2, "app refers to lib: {closure:?}");

    let plain = format!("file://{}", cache.display());
    let (done, said) = substitutes(&plain, &key.public, &closure);
    assert!(
        done,
        "a fresh store could not substitute {closure:?}:\n{said}"
    );
    // Without the key trusted, the same cache is refused: the signature is what counts.
    let other = Key::new(&depot.path("cache"));
    let (done, _) = substitutes(&plain, &other.public, &paths);
    assert!(
        !done,
        "substituted from a cache whose signature is not trusted"
    );
    claims_only_what_it_has(&cache);
}

#[test]
fn nothing_already_in_the_cache_is_sent_again_and_no_nix_runs_for_it() {
    let depot = depot();
    let cache = format!("file://{}", depot.path("cache").display());
    let drv = depot.instantiate("app");
    let args = [
        os("--drv-path"),
        drv.into(),
        os("--copy-to"),
        os(&cache),
        os("-v"),
    ];
    let first = depot.run(&args);
    first.success();
    let copies = |run: &Run| {
        run.nix_commands()
            .iter()
            .filter(|c| c.contains(" copy --to "))
            .count()
    };
    assert_eq!(copies(&first), 1, "{}", first.explain());
    let again = depot.run(&args);
    assert_eq!(printed(&again), printed(&first));
    assert_eq!(copies(&again), 0, "{}", again.explain());
}

#[test]
fn a_cache_that_cannot_be_written_is_one_warning_and_the_build_stands() {
    let depot = depot();
    std::fs::create_dir(depot.path("ro")).unwrap();
    // A file where the cache's directory would be: no one, root included, can write there.
    depot.write("ro/cache", "not a directory");
    let uri = format!("file://{}", depot.path("ro/cache").display());
    let run = depot.run(["-A", "app", "--copy-to", &uri, "--json"]);
    run.success();
    let notes = run.notes();
    assert_eq!(notes.len(), 1, "{}", run.explain());
    assert!(
        notes[0].starts_with(&format!(
            "nix-buildkite-build: warning: cannot copy to {uri}: "
        )) && notes[0].ends_with("; the build is done, the copy is not"),
        "{}",
        run.explain()
    );
    let json = run.json();
    assert_eq!(json["targets"][0]["copied"][&uri], false, "{json}");
    assert_eq!(
        std::fs::read_to_string(depot.path("ro/cache")).unwrap(),
        "not a directory"
    );

    // Required, it fails the step, with a status of its own, the paths printed all the same.
    let run = depot.run(["-A", "app", "--copy-to", &uri, "--copy-required"]);
    run.fails_with(10);
    assert_eq!(run.paths().len(), 1, "{}", run.explain());
    run.stderr_contains("not copied to");
}

#[test]
fn a_batch_that_fails_in_part_still_copies_what_it_built() {
    let depot = depot();
    let cache = depot.path("cache");
    let uri = format!("file://{}", cache.display());
    let map = serde_json::json!({
        "//app": { "drvPath": depot.instantiate("app"), "attrPath": ["app"] },
        "//fails": { "drvPath": depot.instantiate("fails"), "attrPath": ["fails"] },
    });
    depot.write("drvmap.json", &map.to_string());
    let run = depot.run([
        "--drvmap",
        "drvmap.json",
        "//app",
        "//fails",
        "-k",
        "--no-out-link",
        "--copy-to",
        &uri,
        "--json",
    ]);
    assert!(!run.out.status.success(), "{}", run.explain());
    let json = run.json();
    assert_eq!(json["targets"][0]["status"], "built", "{json}");
    assert_eq!(json["targets"][0]["copied"][&uri], true, "{json}");
    let app = PathBuf::from(json["targets"][0]["outputs"]["out"].as_str().unwrap());
    let closure: Vec<PathBuf> = std::iter::once(app.clone())
        .chain(references(&app))
        .collect();
    let names: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for path in &closure {
        let hash = &path.file_name().unwrap().to_string_lossy()[..32];
        assert!(names.contains(&format!("{hash}.narinfo")), "{names:?}");
    }
}

#[test]
fn with_exec_the_copy_is_done_before_the_program_runs() {
    let depot = depot();
    let cache = depot.path("cache");
    let uri = format!("file://{}", cache.display());
    let run = depot.run([
        os("-A"),
        os("lists"),
        os("--copy-to"),
        os(&uri),
        os("--exec"),
        os("--"),
        cache.clone().into(),
    ]);
    run.success();
    // The program listed the cache's .narinfo as it ran: its own was there.
    assert!(run.stdout().contains(".narinfo"), "{}", run.explain());
}

#[test]
fn a_dry_run_shows_the_copy_and_copies_nothing() {
    let depot = depot();
    let cache = depot.path("cache");
    let uri = format!("file://{}", cache.display());
    let drv = depot.instantiate("app");
    let run = depot.run([
        os("--drv-path"),
        drv.into(),
        os("--copy-to"),
        os(&uri),
        os("--dry-run"),
    ]);
    run.success();
    let lines: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{}", run.explain());
    assert!(lines[1].starts_with("nix "), "{}", run.explain());
    assert!(
        lines[1].contains(&format!(" copy --to {uri} ")) && lines[1].contains(" /nix/store/"),
        "{}",
        run.explain()
    );
    assert!(!cache.exists());
}

#[test]
fn a_sigterm_mid_copy_stops_it_and_leaves_no_false_claim() {
    let depot = depot();
    let cache = depot.path("cache");
    // xz, a file cache's default, takes seconds over 64 MiB of random bytes.
    let uri = format!("file://{}", cache.display());
    nix(&depot.dir, "nix-build", ["-A", "big", "--no-out-link"]);
    let run = Spawned::start(
        depot
            .command()
            .args(["-A", "big", "--no-out-link", "--copy-to", &uri])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let copying = run.wait_for_child("nix");
    std::thread::sleep(Duration::from_millis(500));
    run.signal(Signal::SIGTERM, true);
    let run = run.finish(PATIENCE);
    run.ended_by(Signal::SIGTERM);
    assert_eq!(run.stdout(), "", "{}", run.explain());
    wait_until(PATIENCE, "nix copy to stop", || !alive(copying));
    claims_only_what_it_has(&cache);
}

/// nginx on 127.0.0.1 and a free port, serving `root` as a binary cache that takes PUT
/// (WebDAV), or, `forbidding`, refusing it (403). Killed when dropped.
struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl Nginx {
    /// Starts nginx, or says the test is skipped where there is none (plain `cargo test`;
    /// where `scripts/test-nix` runs the tests, it must be there).
    fn start(forbidding: bool) -> Option<Nginx> {
        let nginx = Path::new("/usr/sbin/nginx");
        if !nginx.exists() {
            assert!(
                std::env::var_os("NBB_TEST_OWN_STORE").is_none(),
                "scripts/test-nix installs nginx, but it is not here"
            );
            eprintln!("skipped: no nginx (scripts/test-nix installs it in every chroot)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("nbb-nginx-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let access = match forbidding {
            true => "limit_except GET HEAD { deny all; }",
            false => "dav_methods PUT; create_full_put_path on;",
        };
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "daemon off; master_process off; worker_processes 1;
                 error_log {d}/error.log; pid {d}/nginx.pid;
                 events {{ worker_connections 64; }}
                 http {{
                   access_log off;
                   client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
                   fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi;
                   scgi_temp_path {d}/scgi;
                   server {{
                     listen 127.0.0.1:{port};
                     root {d}/root;
                     client_max_body_size 0;
                     location / {{ {access} }}
                   }}
                 }}"
            ),
        )
        .unwrap();
        let child = Command::new(nginx)
            .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c"])
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx { dir, port, child };
        wait_until(PATIENCE, "nginx to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", nginx.port)).is_ok()
        });
        Some(nginx)
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Whether an upload is under way: nginx keeps a request body in its temporary
    /// directory until the request is whole.
    fn receiving(&self) -> bool {
        std::fs::read_dir(self.dir.path().join("body"))
            .map(|entries| entries.count() > 0)
            .unwrap_or(false)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn an_http_cache_gets_the_closure_which_a_fresh_store_substitutes() {
    let Some(nginx) = Nginx::start(false) else {
        return;
    };
    let depot = depot();
    let key = Key::new(&depot.dir);
    let uri = format!("{}?secret-key={}", nginx.uri(), key.secret.display());
    let args = [os("-A"), os("app"), os("--copy-to"), os(&uri), os("-v")];
    let run = depot.run(&args);
    let paths = printed(&run);
    assert!(
        !run.notes().iter().any(|n| n.contains("warning")),
        "{}",
        run.explain()
    );
    let closure: Vec<PathBuf> = paths.iter().cloned().chain(references(&paths[0])).collect();
    let (done, said) = substitutes(&nginx.uri(), &key.public, &closure);
    assert!(
        done,
        "a fresh store could not substitute {closure:?}:\n{said}"
    );
    claims_only_what_it_has(&nginx.root());
    // Asked of the server itself, it has them: no Nix runs the second time.
    let again = depot.run(&args);
    assert_eq!(printed(&again), paths);
    assert!(
        !again
            .nix_commands()
            .iter()
            .any(|c| c.contains(" copy --to ")),
        "{}",
        again.explain()
    );
}

#[test]
fn an_http_cache_that_refuses_writes_is_a_warning_not_retried() {
    let Some(nginx) = Nginx::start(true) else {
        return;
    };
    let depot = depot();
    let mut args = vec!["-A", "app", "--retries", "2"];
    args.extend(quick());
    let uri = nginx.uri();
    args.extend(["--copy-to", &uri]);
    let run = depot.run(&args);
    run.success();
    let notes = run.notes();
    assert_eq!(
        notes.len(),
        1,
        "not retried, one warning\n{}",
        run.explain()
    );
    assert!(
        notes[0].contains(&format!("cannot copy to {uri}")),
        "{}",
        run.explain()
    );
    claims_only_what_it_has(&nginx.root());
}

#[test]
fn an_unreachable_http_cache_is_retried_then_a_warning() {
    let Some(mut nginx) = Nginx::start(false) else {
        return;
    };
    nginx.kill();
    let depot = depot();
    let uri = nginx.uri();
    let mut args = vec!["-A", "app", "--retries", "1", "--copy-to", &uri];
    args.extend(quick());
    let run = depot.run(&args);
    assert_eq!(printed(&run).len(), 1);
    let notes = run.notes();
    assert_eq!(notes.len(), 2, "{}", run.explain());
    assert!(
        notes[0].contains("failed in a way another attempt may fix")
            && notes[0].ends_with("retry 1 of 1 in 1 s"),
        "{}",
        run.explain()
    );
    assert!(
        notes[1].contains(&format!("cannot copy to {uri}")),
        "{}",
        run.explain()
    );
}

#[test]
fn a_server_killed_mid_upload_leaves_a_warning_and_no_false_claim() {
    if Nginx::start(false).is_none() {
        return;
    }
    let depot = depot();
    nix(&depot.dir, "nix-build", ["-A", "big", "--no-out-link"]);
    // The upload takes a fraction of a second, and is watched closely; should it end before
    // it is seen under way (a busy machine), the next try has a fresh server.
    for _ in 0..5 {
        let mut nginx = Nginx::start(false).unwrap();
        // Uncompressed, so that the upload starts at once.
        let uri = format!("{}?compression=none", nginx.uri());
        let mut command = depot.command();
        command
            .args(["-A", "big", "--no-out-link", "--copy-to", &uri])
            .args(quick())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut run = Spawned::start(&mut command);
        let start = std::time::Instant::now();
        let caught = loop {
            if nginx.receiving() {
                break true;
            }
            if run.child.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(start.elapsed() < PATIENCE, "the upload did not start");
            std::thread::sleep(Duration::from_millis(1));
        };
        if !caught {
            run.finish(PATIENCE).success();
            continue;
        }
        nginx.kill();
        let run = run.finish(PATIENCE);
        run.success();
        assert_eq!(run.paths().len(), 1, "{}", run.explain());
        assert!(
            run.notes().iter().any(|n| n.contains("cannot copy to")),
            "{}",
            run.explain()
        );
        claims_only_what_it_has(&nginx.root());
        return;
    }
    panic!("in five tries, no upload was seen under way");
}

/// A cancel while the copy waits on a server, after every target was built: the run ends by
/// the signal, and `--json` and the JUnit file say the targets were built. The server is a
/// FAKE, a socket that takes the connection and never answers, which no real server is.
#[test]
fn a_cancel_during_the_copy_of_a_good_build_still_reports_it_built() {
    let depot = depot();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", silent.local_addr().unwrap());
    let run = Spawned::start(
        depot
            .command()
            .args([
                "-A",
                "app",
                "--json",
                "--junit",
                "junit.xml",
                "--copy-to",
                &uri,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    run.wait_for_child("nix");
    std::thread::sleep(Duration::from_millis(300));
    run.signal(Signal::SIGTERM, true);
    let run = run.finish(PATIENCE);
    run.ended_by(Signal::SIGTERM);
    let json = run.json();
    assert_eq!(json["targets"][0]["status"], "built", "{json}");
    let xml = std::fs::read_to_string(depot.path("junit.xml")).unwrap();
    let report = junit_parser::from_reader(xml.as_bytes()).unwrap();
    assert_eq!(
        (report.tests, report.failures, report.skipped),
        (1, 0, 0),
        "{xml}"
    );
    drop(silent);
}
