//! What the integration tests share: a freshly generated depot, running the real binary
//! against the real Nix store, and cleaning up exactly what a test made.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_nix-buildkite-build");

/// No binary cache (unreachable here, and slow to fail), no build users (single-user Nix).
pub const NIX_CONFIG: &str = "substituters =\nbuild-users-group =\n";

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
        PathBuf::from(text.trim())
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

    /// A command for the binary in the depot, for tests that need to adjust it.
    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.current_dir(&self.dir).env("NIX_CONFIG", NIX_CONFIG);
        command
    }

    /// Running processes that build this depot's derivations (their environment names
    /// an output path, which carries the nonce).
    pub fn builders(&self) -> Vec<u32> {
        let needle = format!("-{}", self.nonce);
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                    env.split(|b| *b == 0)
                        .any(|var| var.starts_with(b"out=") && var.ends_with(needle.as_bytes()))
                })
            })
            .collect()
    }

    /// Store paths this depot's builds made (their names carry the nonce).
    pub fn store_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir("/nix/store")
            .unwrap()
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
            let _ = Command::new("nix-store")
                .arg("--delete")
                .args(&paths)
                .env("NIX_CONFIG", NIX_CONFIG)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Sends `signal` to `pid`, if it still exists.
pub fn kill(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
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
        .env("NIX_CONFIG", NIX_CONFIG);
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is Nix installed?): {e}"));
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
    let out = Command::new("nix-store")
        .arg("--delete")
        .arg(path)
        .env(
            "NIX_CONFIG",
            format!("{NIX_CONFIG}keep-derivations = false\n"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success() && !path.exists(),
        "cannot delete {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A finished run, with everything needed to explain a failed assertion.
pub struct Run {
    pub command: String,
    pub out: Output,
}

impl Run {
    pub fn new(command: &mut Command) -> Self {
        if !command.get_envs().any(|(key, _)| key == "NIX_CONFIG") {
            command.env("NIX_CONFIG", NIX_CONFIG);
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

pub fn os(s: &str) -> OsString {
    OsString::from(s)
}
