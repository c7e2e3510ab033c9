//! What the integration tests share: a freshly generated depot, running the real binary
//! against the real Nix store, and cleaning up exactly what a test made.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

pub const BIN: &str = env!("CARGO_BIN_EXE_nix-buildkite-build");

/// The Nix settings the tests' Nix commands get through `NIX_CONFIG`: no binary cache
/// (unreachable here, and slow to fail), no build users (single-user Nix). `scripts/test-nix`
/// writes its settings into `nix.conf` instead (Nix 2.3 ignores `NIX_CONFIG`, and a daemon
/// warns about each setting an untrusted user gives) and says so by setting
/// `NBB_TEST_NIX_CONFIG`, to what the tests should pass, often nothing.
pub fn nix_config() -> String {
    std::env::var("NBB_TEST_NIX_CONFIG")
        .unwrap_or_else(|_| "substituters =\nbuild-users-group =\n".into())
}

/// A depot generated for one test, with a nonce no other run shares.
pub struct Depot {
    pub dir: PathBuf,
    pub nonce: String,
    _temp: tempfile::TempDir,
}

impl Depot {
    /// The fixture depot (`tests/fixtures/depot`).
    pub fn new() -> Self {
        let depot = Self::empty();
        depot.write("default.nix", include_str!("../fixtures/depot/default.nix"));
        depot
    }

    /// The depot of failing builds (`tests/fixtures/failing.nix`).
    pub fn failing() -> Self {
        let depot = Self::empty();
        depot.write("default.nix", include_str!("../fixtures/failing.nix"));
        depot
    }

    /// A depot with no files yet; `write` fills it.
    pub fn empty() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let temp = tempfile::Builder::new()
            .prefix("nbb-depot-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let nonce = format!(
            "t{}x{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        Depot {
            dir: temp.path().to_path_buf(),
            nonce,
            _temp: temp,
        }
    }

    /// Writes `text` to `name` in the depot, with `@nonce@` replaced.
    pub fn write(&self, name: impl AsRef<Path>, text: &str) {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.replace("@nonce@", &self.nonce)).unwrap();
    }

    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// `nix-instantiate -A ATTR`: the .drv, not built, not rooted.
    pub fn instantiate(&self, attr: &str) -> PathBuf {
        let out = nix(&self.dir, "nix-instantiate", ["-A", attr]);
        let text = String::from_utf8(out.stdout).unwrap();
        // nix-instantiate names a derivation without `out` by its first output: `DRV!bin`.
        PathBuf::from(text.trim().split('!').next().unwrap())
    }

    /// Writes `drvmap.json`, a drvmap as a pipeline writes it, with each `(label, attr)`:
    /// the attribute's instantiated `.drv` and the attribute path `[attr]`.
    pub fn write_drvmap(&self, labels: &[(&str, &str)]) {
        let map: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(label, attr)| {
                let drv = self.instantiate(attr);
                let entry = serde_json::json!({ "drvPath": drv, "attrPath": [attr] });
                (label.to_string(), entry)
            })
            .collect();
        self.write("drvmap.json", &serde_json::Value::Object(map).to_string());
    }

    /// A .drv the garbage collector has taken: instantiated, then deleted.
    pub fn collected_drv(&self, attr: &str) -> PathBuf {
        let drv = self.instantiate(attr);
        delete(&drv);
        drv
    }

    /// Runs the binary in the depot.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::new(Command::new(BIN).args(args).current_dir(&self.dir))
    }

    /// Runs bare Nix (`program`, e.g. nix-store) in the depot: what the binary must agree
    /// with. Nix's statuses differ between versions and setups (a failed build exits 100
    /// single-user, 1 through the daemon), so tests compare with it, not with a number.
    pub fn bare<I, S>(&self, program: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::new(Command::new(program).args(args).current_dir(&self.dir))
    }

    /// A command for the binary in the depot, for tests that need to adjust it.
    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(&self.dir)
            .env("NIX_CONFIG", nix_config());
        command
    }

    /// Running processes that build this depot's derivations: their builders carry
    /// `BUILDER_MARK` and the nonce in their command line (as `$0` of `sh -c`), and
    /// whatever they start descends from them. A command line and a parent are public,
    /// where an environment is not: a daemon's builders run as other users.
    pub fn builders(&self) -> Vec<u32> {
        let mark = format!("{BUILDER_MARK}{}", self.nonce);
        let processes: Vec<(u32, u32)> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| match proc_stat(pid)? {
                (ppid, _, false) => Some((pid, ppid)),
                _ => None,
            })
            .collect();
        let mut builders: Vec<u32> = processes
            .iter()
            .map(|&(pid, _)| pid)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|line| line.split(|b| *b == 0).any(|arg| arg == mark.as_bytes()))
            })
            .collect();
        let mut from = 0;
        while from < builders.len() {
            let parent = builders[from];
            builders.extend(processes.iter().filter(|p| p.1 == parent).map(|p| p.0));
            from += 1;
        }
        builders
    }

    /// The outputs this depot's builds made: its store paths other than `.drv`s. Empty
    /// means nothing was built.
    pub fn outputs(&self) -> Vec<PathBuf> {
        let mut paths = self.store_paths();
        paths.retain(|p| p.extension().is_none_or(|e| e != "drv"));
        paths
    }

    /// Store paths this depot's builds made (their names carry the nonce).
    pub fn store_paths(&self) -> Vec<PathBuf> {
        // A fresh store has no /nix/store until Nix first uses it.
        let Ok(entries) = std::fs::read_dir("/nix/store") else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains(&self.nonce)
            })
            .collect();
        paths.sort();
        paths
    }
}

impl Drop for Depot {
    /// Removes the depot, and with it every out-link (GC root) in it, then deletes the
    /// store paths its builds made and nothing else.
    fn drop(&mut self) {
        for pid in self.builders() {
            kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        forget_roots_under(&self.dir);
        let paths = self.store_paths();
        if !paths.is_empty() {
            let _deleting = DELETING.read().unwrap_or_else(PoisonError::into_inner);
            let _ = Command::new("nix-store")
                .arg("--delete")
                .args(&paths)
                .env("NIX_CONFIG", nix_config())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The Nix the tests run, as (major, minor): what a test expects may depend on it, where
/// README says so (build times need Nix 2.4).
pub fn nix_version() -> (u32, u32) {
    let out = Command::new("nix-store")
        .arg("--version")
        .output()
        .expect("cannot run nix-store");
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().last().expect("no version");
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let mut number = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("no version")
    };
    (number(), number())
}

/// Sends `signal` to `pid`, if it still exists.
pub fn kill(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Whether the store is the suite's own, where a test may collect garbage store-wide:
/// `scripts/test-nix` says so with `NBB_TEST_OWN_STORE=1`. This machine's store is shared,
/// so elsewhere the test says it is skipped.
pub fn own_store() -> bool {
    let own = std::env::var_os("NBB_TEST_OWN_STORE").is_some_and(|v| v == "1");
    if !own {
        eprintln!("skipped: the store is shared (scripts/test-nix runs this in its own)");
    }
    own
}

/// Removes Nix's records of out-links under `dir` once they are gone (as a GC would).
pub fn forget_roots_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/nix/var/nix/gcroots/auto") else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.starts_with(dir) && !t.exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Runs a Nix command that must succeed.
pub fn nix<I, S>(cwd: &Path, program: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env("NIX_CONFIG", nix_config());
    let out = output_of_setup(&mut command);
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deletes one store path, as the garbage collector would. `keep-derivations` is off so that
/// a .drv can go while its outputs stay rooted, as in a real collection with that setting.
pub fn delete(path: &Path) {
    delete_all(&[path]);
}

/// Held for reading while a test of this binary deletes store paths: a deletion holds Nix's
/// garbage collector lock, and a Nix that then wants it says "waiting for the big garbage
/// collector lock..." on stderr (Nix 2.3, as it roots what it built). [`no_deletions`]
/// holds it for writing.
static DELETING: RwLock<()> = RwLock::new(());

/// Until dropped, no other test of this binary deletes store paths, so that no Nix waits
/// for the garbage collector's lock and says so.
pub fn no_deletions() -> RwLockWriteGuard<'static, ()> {
    DELETING.write().unwrap_or_else(PoisonError::into_inner)
}

/// Deletes `paths` in one `nix-store --delete`, as [`delete`] does one.
pub fn delete_all<P: AsRef<Path>>(paths: &[P]) {
    let _deleting = DELETING.read().unwrap_or_else(PoisonError::into_inner);
    let out = output_of_setup(
        Command::new("nix-store")
            .arg("--delete")
            .args(paths.iter().map(|p| p.as_ref()))
            .env(
                "NIX_CONFIG",
                format!("{}keep-derivations = false\n", nix_config()),
            ),
    );
    let left = paths.iter().filter(|p| p.as_ref().exists()).count();
    assert!(
        out.status.success() && left == 0,
        "cannot delete {} paths ({left} still there): {}",
        paths.len(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether Nix's stderr says it aborted (`std::terminate`), as its collector sometimes does
/// under load: libstdc++ words it "terminate called without an active exception"; Nix's
/// own crash handler, in newer versions such as 2.34, "std::terminate() called without
/// exception". Through the daemon it is the daemon's worker that aborts, and the client
/// sees only its connection end: "unexpected end-of-file" (`nix-store --gc`, Nix 2.8, seen
/// once in CI).
pub fn nix_aborted(stderr: &str) -> bool {
    stderr.contains("terminate called")
        || stderr.contains("std::terminate() called")
        || stderr.contains("error: unexpected end-of-file")
}

/// Runs a Nix command that sets a test up. On a store busy with the other tests, Nix itself
/// sometimes gives up, and the command is tried again for a few seconds; what the test checks
/// never is. The ways Nix gives up:
/// - it reports SQLite busy as an error (Nix 2.26, single-user);
/// - it aborts a deletion while another process deletes ([`nix_aborted`], Nix 2.8);
/// - through the daemon, a path the previous command used is "still alive" for a moment after
///   that command exits: the daemon's worker for it holds the path as a temporary root until
///   it has read the end of its connection and exited itself (Nix 2.34, seen once in CI).
fn output_of_setup(command: &mut Command) -> Output {
    let gave_up = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        !out.status.success()
            && (stderr.contains("' is busy")
                || nix_aborted(&stderr)
                || stderr.contains("since it is still alive"))
    };
    let mut run = || {
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?} (is Nix installed?): {e}"))
    };
    let mut out = run();
    for _ in 0..15 {
        if !gave_up(&out) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = run();
    }
    out
}

/// A finished run, with everything needed to explain a failed assertion.
pub struct Run {
    pub command: String,
    pub out: Output,
}

impl Run {
    pub fn new(command: &mut Command) -> Self {
        if !command.get_envs().any(|(key, _)| key == "NIX_CONFIG") {
            command.env("NIX_CONFIG", nix_config());
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Run {
            command: format!("{command:?}"),
            out,
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// The lines of stdout as paths.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| PathBuf::from(OsStr::from_bytes(l)))
            .collect()
    }

    pub fn explain(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(
            self.out.status.success(),
            "expected success\n{}",
            self.explain()
        );
        self
    }

    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "wrong exit status\n{}",
            self.explain()
        );
        self
    }

    /// stdout empty, and stderr's last line (our error) mentions `needle`.
    #[track_caller]
    pub fn error_mentions(&self, needle: &str) -> &Self {
        assert!(
            self.out.stdout.is_empty(),
            "stdout not empty\n{}",
            self.explain()
        );
        let last = self.stderr().lines().last().unwrap_or("").to_owned();
        assert!(
            last.starts_with("nix-buildkite-build: error: ") && last.contains(needle),
            "the error line does not mention {needle:?}\n{}",
            self.explain()
        );
        self
    }

    /// Our own lines on stderr (notes, warnings, the error), told from Nix's by their prefix.
    pub fn notes(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.starts_with("nix-buildkite-build:"))
            .map(str::to_owned)
            .collect()
    }

    /// stdout as the one JSON value `--json` prints.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.explain()))
    }

    /// The run ended by `signal`, as a shell's child killed by it.
    #[track_caller]
    pub fn ended_by(&self, signal: nix::sys::signal::Signal) -> &Self {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            self.out.status.signal(),
            Some(signal as i32),
            "not ended by {signal}\n{}",
            self.explain()
        );
        self
    }

    /// The Nix commands `--verbose` showed, each `$ …`.
    pub fn nix_commands(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.starts_with("$ "))
            .map(str::to_owned)
            .collect()
    }

    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.explain()
        );
        self
    }
}

/// Where a link points, which must be a store path.
pub fn target(link: &Path) -> PathBuf {
    std::fs::read_link(link).unwrap_or_else(|e| panic!("{} is no link: {e}", link.display()))
}

/// Whether `link` is registered with Nix as an indirect GC root: Nix records one as a
/// symlink to the link in `gcroots/auto`.
pub fn is_gc_root(link: &Path) -> bool {
    std::fs::read_dir("/nix/var/nix/gcroots/auto")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == link))
}

/// What a test derivation's builder is passed as `$0`, with its depot's nonce, so that
/// `Depot::builders` can find it: `args = [ "-c" SCRIPT "nbb-builder-@nonce@" ]`.
pub const BUILDER_MARK: &str = "nbb-builder-";

pub fn os(s: &str) -> OsString {
    OsString::from(s)
}

// Helpers for the reliability tests (issue 5): FAKE Nix programs, runs that are signalled
// or watched while they build, and a build that waits until the test lets it finish.

/// A directory holding a FAKE `program` (sh) first on PATH; `$REAL` in `script` is the
/// real program. Tests name the fault the script injects.
pub struct Fake {
    pub dir: tempfile::TempDir,
    /// The PATH to run under.
    pub path: OsString,
}

impl Fake {
    pub fn new(program: &str, script: &str) -> Self {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .expect("cannot run sh");
        let real = String::from_utf8(real.stdout).unwrap();
        assert!(!real.trim().is_empty(), "{program} is not on PATH");
        Fake::with_text(
            program,
            &format!(
                "#!/bin/sh\n# FAKE {program}, injecting a fault.\nREAL={}\n{script}\n",
                real.trim()
            ),
        )
    }

    /// A FAKE `program` whose file holds exactly `text`: no `#!` is added.
    pub fn with_text(program: &str, text: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("nbb-fake-")
            .tempdir()
            .unwrap();
        let fake = dir.path().join(program);
        std::fs::write(&fake, text).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut path = dir.path().as_os_str().to_owned();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        Fake { dir, path }
    }
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The parent pid and command name of a process, from /proc, and whether it has exited (a
/// zombie its parent has not reaped yet).
fn proc_stat(pid: u32) -> Option<(u32, String, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold anything, so fields are read after the last.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let exited = state == "Z" || state == "X";
    Some((ppid, stat[open + 1..close].to_owned(), exited))
}

/// Whether `pid` is a running process (a zombie has stopped running).
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(_, _, exited)| !exited)
}

/// Live children of `parent` whose command name is `name`.
pub fn children_named(parent: u32, name: &str) -> Vec<u32> {
    children(parent, name, false)
}

/// Children of `parent` whose command name is `name` that it has not reaped, running or
/// exited.
pub fn unreaped_children_named(parent: u32, name: &str) -> Vec<u32> {
    children(parent, name, true)
}

fn children(parent: u32, name: &str, with_exited: bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            proc_stat(pid).is_some_and(|(ppid, comm, exited)| {
                ppid == parent && comm == name && (with_exited || !exited)
            })
        })
        .collect()
}

/// The binary running in the background, its stdout and stderr collected as it goes.
pub struct Spawned {
    pub child: std::process::Child,
    pub command: String,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr_so_far: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Spawned {
    /// Starts `command` with stdout and stderr piped (unless already set), in its own
    /// process group, as Buildkite starts a step.
    pub fn start(command: &mut Command) -> Self {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        if !command.get_envs().any(|(key, _)| key == "NIX_CONFIG") {
            command.env("NIX_CONFIG", nix_config());
        }
        // The signals tests send act by default, as for a step Buildkite starts, even when
        // the suite itself runs under `nohup` or as a background job, which ignore SIGHUP
        // or SIGINT in what they start. A test of an ignored signal ignores it itself.
        // SAFETY: signal(2) is async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                for signal in [nix::libc::SIGINT, nix::libc::SIGHUP, nix::libc::SIGTERM] {
                    nix::libc::signal(signal, nix::libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = out.read_to_end(&mut buf);
                buf
            })
        });
        let stderr_so_far = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().map(|mut err| {
            let so_far = stderr_so_far.clone();
            std::thread::spawn(move || {
                let mut chunk = [0; 4096];
                while let Ok(n @ 1..) = err.read(&mut chunk) {
                    so_far.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
                so_far.lock().unwrap().clone()
            })
        });
        Spawned {
            child,
            command: format!("{command:?}"),
            stdout,
            stderr,
            stderr_so_far,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr_so_far.lock().unwrap()).into_owned()
    }

    /// Sends `signal` to the process, or with `group` to its whole process group, as
    /// Buildkite does on cancel.
    pub fn signal(&self, signal: nix::sys::signal::Signal, group: bool) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        let sent = match group {
            true => nix::sys::signal::killpg(pid, signal),
            false => nix::sys::signal::kill(pid, signal),
        };
        sent.unwrap_or_else(|e| panic!("cannot send {signal} to {}: {e}", self.command));
    }

    /// The one live child named `name` (a Nix program), once it has started.
    #[track_caller]
    pub fn wait_for_child(&self, name: &str) -> u32 {
        let mut found = Vec::new();
        wait_until(
            PATIENCE,
            &format!("{name} to start under {}", self.command),
            || {
                found = children_named(self.pid(), name);
                !found.is_empty()
            },
        );
        assert_eq!(found.len(), 1, "more than one {name}");
        found[0]
    }

    /// Waits for the process to exit, killing it and panicking after `timeout`.
    pub fn finish(mut self, timeout: std::time::Duration) -> Run {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} still running after {timeout:?}; stderr so far:\n{}",
                    self.command,
                    self.stderr_so_far()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let join = |t: Option<std::thread::JoinHandle<Vec<u8>>>| {
            t.map(|t| t.join().unwrap()).unwrap_or_default()
        };
        Run {
            command: std::mem::take(&mut self.command),
            out: Output {
                status,
                stdout: join(self.stdout.take()),
                stderr: join(self.stderr.take()),
            },
        }
    }
}

impl Drop for Spawned {
    /// A test that panics before `finish` must not leave the run, or the Nix it started,
    /// running: the whole process group goes.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let group = nix::unistd::Pid::from_raw(self.pid() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A generous bound on a run that should end soon, for a machine busy with other builds.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// A depot whose `gated` target (outputs `out` and `dev`) builds only once `Gate::open`
/// is called, so a test can act while Nix is building. The builder gives up after 120 s
/// in case a test never opens it.
pub struct Gate {
    pub file: PathBuf,
}

impl Gate {
    pub fn depot() -> (Depot, Gate) {
        let depot = Depot::empty();
        let gate = Gate {
            file: depot.path("gate"),
        };
        let text = r#"
            { }:
            {
              gated = derivation {
                name = "gated-@nonce@";
                builder = "/bin/sh";
                outputs = [ "out" "dev" ];
                args = [ "-c" ''
                  echo "gated build waiting" >&2
                  i=0
                  while [ ! -e '@gate@' ] && [ $i -lt 2400 ]; do /bin/sleep 0.05; i=$((i+1)); done
                  [ -e '@gate@' ] || exit 1
                  echo out > $out; echo dev > $dev
                '' "nbb-builder-@nonce@" ];
                system = builtins.currentSystem;
              };
            }
        "#;
        let gate_path = gate.file.to_str().expect("temporary directory not UTF-8");
        depot.write("default.nix", &text.replace("@gate@", gate_path));
        (depot, gate)
    }

    pub fn open(&self) {
        std::fs::write(&self.file, "").unwrap();
    }
}
