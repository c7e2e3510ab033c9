//! Remote builders (Nix's distributed builds over ssh), for real. The builder is sshd on
//! 127.0.0.1 in a chroot with a Nix store of its own (`scripts/test-nix` binds Debian
//! trixie's, Nix 2.26, read-only at `NBB_TEST_BUILDER`), which each test starts in a mount
//! and PID namespace of its own and stops, so that stopping it ends every session and build
//! on it. Both paths build there with `-j 0`, over `ssh://` and `ssh-ng://`, and the target
//! reads a file only the builder has: a build that ran here instead cannot succeed. Then the
//! faults: the builder unreachable, killed mid-build, and the step cancelled mid-build.
//!
//! Single-user (root), the tool gets `--option builders` and `NIX_SSHOPTS="-F ssh_config"`,
//! README's recipe. Through the daemon (`NBB_TEST_AGENT` names the unprivileged user the
//! tool then runs as), this binary runs as root and sets the builder up as an admin would:
//! the daemon's `/etc/nix/machines` (the default of `builders`) and root's
//! `~/.ssh/config`; those are the daemon's, so those tests take turns.
//!
//! The same builder is a store `--copy-to ssh://` copies to, the agent's own ssh
//! configuration leading there.
//!
//! Without a builder chroot (plain `cargo test`), each test says it is skipped.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The builder's name in the ssh configuration, and so in the machine line.
const HOST: &str = "nbb-builder";

/// Inside the builder's chroot, a file only the builder has. The `where` target copies it
/// to its output, so it builds there or nowhere.
const MARK_FILE: &str = "/run/nbb/where";

const DEPOT: &str = r#"
    { }:
    let
      build = name: script: derivation {
        name = "${name}-@nonce@";
        builder = "/bin/sh";
        args = [ "-c" script "nbb-builder-@nonce@" ];
        system = builtins.currentSystem;
      };
    in
    rec {
      where = build "where" "read -r where < @mark@ && echo \"$where\" > $out";
      fails = build "fails" "echo 'this build fails' >&2; exit 3";
      slow = build "slow" "echo 'slow build started' >&2; /bin/sleep 60; echo > $out";
      # Built here, then copied there: it refers to `lib`, so its closure is both.
      lib = build "lib" "echo lib > $out";
      here = build "here" "echo ${lib} > $out";
    }
"#;

#[derive(Clone, Copy, Debug)]
enum Protocol {
    /// Nix's legacy protocol: `nix-store --serve` on the builder.
    Ssh,
    /// The daemon protocol: `nix-daemon --stdio` on the builder.
    SshNg,
}

impl Protocol {
    fn machine(self) -> String {
        let scheme = match self {
            Protocol::Ssh => "ssh",
            Protocol::SshNg => "ssh-ng",
        };
        format!("{scheme}://{HOST} {}-linux - 1", std::env::consts::ARCH)
    }
}

/// Where the tests run: the builder's chroot, and the user the tool runs as through the
/// daemon (none single-user).
struct Setup {
    chroot: PathBuf,
    agent: Option<Agent>,
}

struct Agent {
    uid: u32,
    gid: u32,
    home: String,
}

/// The setup, or `None` after saying why the test is skipped. Where `scripts/test-nix`
/// provides a builder, anything missing fails the test instead.
fn setup() -> Option<Setup> {
    let Some(chroot) = std::env::var_os("NBB_TEST_BUILDER") else {
        eprintln!(
            "skipped: no remote builder chroot (scripts/test-nix provides one, NBB_TEST_BUILDER)"
        );
        return None;
    };
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")),
        "the remote builder needs root (mount, chroot)"
    );
    let agent = std::env::var("NBB_TEST_AGENT").ok().map(|name| {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let fields: Vec<&str> = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == name)
            .unwrap_or_else(|| panic!("no user {name}"));
        Agent {
            uid: fields[2].parse().unwrap(),
            gid: fields[3].parse().unwrap(),
            home: fields[5].to_owned(),
        }
    });
    Some(Setup {
        chroot: chroot.into(),
        agent,
    })
}

/// sshd in the builder's chroot, with a store, host key and authorized key of its own,
/// listening on 127.0.0.1 and a free port. Dropping it stops it.
struct Builder {
    state: tempfile::TempDir,
    port: u16,
    /// What the `where` target copies to its output on this builder.
    mark: String,
    /// `unshare`, whose child, the namespace's init, is sshd.
    unshare: Option<std::process::Child>,
    sshd: u32,
}

/// Mounts the builder's store and state over its chroot, in the namespace `unshare` made,
/// and becomes sshd there: the namespace's init, so that killing it kills every session.
const START_SSHD: &str = r#"
    chroot=$1 state=$2
    mount --bind "$chroot" "$chroot"
    mount -o remount,bind,ro "$chroot"
    mount -t proc proc "$chroot/proc"
    mount --rbind /dev "$chroot/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$chroot/tmp"
    mount -t tmpfs -o mode=755 tmpfs "$chroot/run"
    mount -t tmpfs -o mode=700 tmpfs "$chroot/root"
    mount --bind "$state/nix" "$chroot/nix"
    mount --bind "$state/etc-nix" "$chroot/etc/nix"
    mkdir "$chroot/run/sshd" "$chroot/run/nbb"
    mount --bind "$state/run" "$chroot/run/nbb"
    exec /usr/sbin/chroot "$chroot" /usr/sbin/sshd -D -e -f /run/nbb/sshd_config
"#;

impl Builder {
    fn start(setup: &Setup) -> Builder {
        let state = tempfile::Builder::new()
            .prefix("nbb-remote-")
            .tempdir()
            .unwrap();
        let dir = state.path();
        for sub in ["nix", "etc-nix", "run", "client"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
        }
        // Single-user Nix as root, as on the agent: no sandbox in a chroot, no cache.
        std::fs::write(
            dir.join("etc-nix/nix.conf"),
            "sandbox = false\nsubstituters =\nbuild-users-group =\n",
        )
        .unwrap();
        let mark = format!("built on the remote builder {}", dir.display());
        std::fs::write(dir.join("run/where"), format!("{mark}\n")).unwrap();
        keygen(&dir.join("run/host_key"));
        keygen(&dir.join("client/id"));
        std::fs::copy(dir.join("client/id.pub"), dir.join("run/authorized_keys")).unwrap();
        let host_key = std::fs::read_to_string(dir.join("run/host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();

        let mut builder = Builder {
            state,
            port: 0,
            mark,
            unshare: None,
            sshd: 0,
        };
        // The port is free when chosen, but another process may take it before sshd
        // binds it: then sshd says so and exits, and another is tried.
        for _ in 0..5 {
            builder.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            builder.configure(&host_key.join(" "));
            if builder.listen(setup) {
                builder.check_login();
                return builder;
            }
        }
        panic!("sshd did not start:\n{}", builder.log());
    }

    fn dir(&self) -> &Path {
        self.state.path()
    }

    /// sshd's configuration, and the client's for this port.
    fn configure(&self, host_key: &str) {
        let port = self.port;
        std::fs::write(
            self.dir().join("run/sshd_config"),
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey /run/nbb/host_key\n\
                 AuthorizedKeysFile /run/nbb/authorized_keys\n\
                 AuthenticationMethods publickey\n\
                 PermitRootLogin prohibit-password\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PidFile none\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 UseDNS no\n"
            ),
        )
        .unwrap();
        std::fs::write(
            self.dir().join("client/known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}\n"),
        )
        .unwrap();
        std::fs::write(self.ssh_config(), self.host_block()).unwrap();
    }

    /// The `Host` block that points `ssh HOST` at this builder: NIX_SSHOPTS's `-F` file
    /// single-user, root's `~/.ssh/config` for the daemon.
    fn host_block(&self) -> String {
        let client = self.dir().join("client");
        format!(
            "Host {HOST}\n\
             \x20 HostName 127.0.0.1\n\
             \x20 Port {}\n\
             \x20 User root\n\
             \x20 IdentityFile {}\n\
             \x20 IdentitiesOnly yes\n\
             \x20 UserKnownHostsFile {}\n\
             \x20 GlobalKnownHostsFile /dev/null\n\
             \x20 StrictHostKeyChecking yes\n\
             \x20 BatchMode yes\n\
             \x20 ConnectTimeout 10\n",
            self.port,
            client.join("id").display(),
            client.join("known_hosts").display(),
        )
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir().join("client/ssh_config")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }

    /// Starts sshd; true once it listens, false if it exited (its port was taken).
    fn listen(&mut self, setup: &Setup) -> bool {
        let log = std::fs::File::create(self.dir().join("sshd.log")).unwrap();
        let unshare = Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--kill-child"])
            .args([
                "--propagation",
                "private",
                "--",
                "sh",
                "-euc",
                START_SSHD,
                "sh",
            ])
            .arg(&setup.chroot)
            .arg(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run unshare");
        self.unshare = Some(unshare);
        let listening = format!("Server listening on 127.0.0.1 port {}.", self.port);
        let start = std::time::Instant::now();
        loop {
            if self.log().contains(&listening) {
                let sshd = children(self.unshare.as_ref().unwrap().id());
                assert_eq!(sshd.len(), 1, "{}", self.log());
                self.sshd = sshd[0];
                return true;
            }
            if let Some(status) = self.unshare.as_mut().unwrap().try_wait().unwrap() {
                self.unshare = None;
                assert!(
                    self.log().contains("Address already in use"),
                    "sshd exited with {status}:\n{}",
                    self.log()
                );
                return false;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "sshd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client gets in with its key and finds Nix there.
    fn check_login(&self) {
        let ssh = Spawned::start(
            Command::new("ssh")
                .arg("-F")
                .arg(self.ssh_config())
                .args([HOST, "nix-store", "--version"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .finish(PATIENCE);
        assert!(
            ssh.out.status.success() && ssh.stdout().contains("nix-store (Nix)"),
            "cannot log in to the builder\n{}\nsshd:\n{}",
            ssh.explain(),
            self.log()
        );
    }

    /// Kills sshd, the namespace's init, and with it every session and build on the
    /// builder; returns once they are all gone (`unshare` exits after its child, which the
    /// kernel reaps only once the namespace is empty).
    fn kill(&mut self) {
        let Some(mut unshare) = self.unshare.take() else {
            return;
        };
        match self.sshd {
            // Not listening yet: unshare's --kill-child kills its child when it dies.
            0 => {
                let _ = unshare.kill();
            }
            sshd => kill(sshd, Signal::SIGKILL),
        }
        self.sshd = 0;
        let start = std::time::Instant::now();
        while unshare.try_wait().unwrap().is_none() {
            if start.elapsed() > PATIENCE {
                let _ = unshare.kill();
                panic!("the builder's namespace did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Processes on the builder other than the listening sshd: sessions, Nix, builds.
    fn sessions(&self) -> Vec<String> {
        let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let Some(builder) = ns(self.sshd) else {
            return Vec::new();
        };
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != self.sshd && alive(pid) && ns(pid).as_ref() == Some(&builder))
            .map(|pid| {
                let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&line).replace('\0', " ")
                )
            })
            .collect()
    }

    /// Whether the builder's store holds `path` (a store path of the agent's store).
    fn has(&self, path: &Path) -> bool {
        self.dir()
            .join("nix/store")
            .join(path.file_name().unwrap())
            .exists()
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        self.kill();
    }
}

fn keygen(file: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", HOST, "-f"])
        .arg(file)
        .output()
        .expect("cannot run ssh-keygen");
    assert!(out.status.success(), "{out:?}");
}

/// Live children of `parent`.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            alive(pid)
                && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    let after = &stat[stat.rfind(')').unwrap() + 1..];
                    after.split_whitespace().nth(1) == Some(&parent.to_string())
                })
        })
        .collect()
}

/// The daemon's builders are the daemon's: one machines file, one root's ssh
/// configuration. A test that sets them holds this lock, and removes them when done.
static DAEMON: Mutex<()> = Mutex::new(());

const MACHINES: &str = "/etc/nix/machines";
const ROOT_SSH_CONFIG: &str = "/root/.ssh/config";
/// The first line of what these tests write there: a file without it is not theirs.
const WRITTEN_HERE: &str = "# written by nix-buildkite-build's tests/remote.rs\n";

/// Writes one of the daemon's files, never over one these tests did not write.
fn write_daemon_file(path: &str, text: &str) {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        old.is_empty() || old.starts_with(WRITTEN_HERE),
        "{path} exists: NBB_TEST_AGENT is for scripts/test-nix's chroots"
    );
    std::fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, format!("{WRITTEN_HERE}{text}")).unwrap();
}

struct DaemonTurn {
    _turn: MutexGuard<'static, ()>,
}

impl DaemonTurn {
    fn take() -> Self {
        DaemonTurn {
            _turn: DAEMON.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Drop for DaemonTurn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(MACHINES);
        let _ = std::fs::remove_file(ROOT_SSH_CONFIG);
    }
}

/// One test's world: a depot, a builder, and the way commands reach it.
struct Remote {
    setup: Setup,
    depot: Depot,
    builder: Builder,
    protocol: Protocol,
    _turn: Option<DaemonTurn>,
}

impl Remote {
    fn new(setup: Setup, protocol: Protocol) -> Self {
        let depot = Depot::empty();
        depot.write("default.nix", &DEPOT.replace("@mark@", MARK_FILE));
        let turn = setup.agent.as_ref().map(|agent| {
            // The tool runs as the agent, and makes its links here.
            std::os::unix::fs::chown(&depot.dir, Some(agent.uid), Some(agent.gid)).unwrap();
            DaemonTurn::take()
        });
        let builder = Builder::start(&setup);
        let remote = Remote {
            setup,
            depot,
            builder,
            protocol,
            _turn: turn,
        };
        remote.configure_daemon();
        remote
    }

    /// Through the daemon, what an admin sets up: the daemon's machines file (which the
    /// default `builders = @/etc/nix/machines` reads) and root's ssh configuration, as
    /// the daemon runs as root and ssh reads its user's.
    fn configure_daemon(&self) {
        if self.setup.agent.is_some() {
            write_daemon_file(ROOT_SSH_CONFIG, &self.builder.host_block());
            write_daemon_file(MACHINES, &format!("{}\n", self.protocol.machine()));
        }
    }

    /// A new builder in place of the one there, as after a reboot.
    fn replace_builder(&mut self) {
        self.builder.kill();
        self.builder = Builder::start(&self.setup);
        self.configure_daemon();
    }

    /// `program` with `args` in the depot, as the agent runs it, building only remotely:
    /// single-user with README's options, through the daemon with the daemon's builders.
    fn command<I, S>(&self, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(program);
        command
            .args(args)
            .args(["-j", "0"])
            .current_dir(&self.depot.dir)
            .env("NIX_CONFIG", nix_config());
        match &self.setup.agent {
            None => self.builders_option(&mut command),
            Some(agent) => command
                .uid(agent.uid)
                .gid(agent.gid)
                .env("HOME", &agent.home)
                .env("USER", "agent"),
        };
        command
    }

    /// README's recipe for single-user Nix: the machine on the command line, and the ssh
    /// options (here the port) through NIX_SSHOPTS.
    fn builders_option<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        let mut sshopts = OsString::from("-F ");
        sshopts.push(self.builder.ssh_config());
        command
            .args(["--option", "builders", &self.protocol.machine()])
            .env("NIX_SSHOPTS", sshopts)
    }

    fn tool<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command(BIN, args)
    }

    /// The output path of a .drv.
    fn output_of(&self, drv: &Path) -> PathBuf {
        let out = nix(
            &self.depot.dir,
            "nix-store",
            [os("-q"), os("--outputs"), drv.into()],
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }

    /// The run built `out` on the builder: exactly its path on stdout, the path here with
    /// the builder's mark in it, the link `result` to it and a GC root here.
    #[track_caller]
    fn built_remotely(&self, run: &Run, out: &Path) {
        run.success();
        assert_eq!(
            run.stdout(),
            format!("{}\n", out.display()),
            "{}",
            run.explain()
        );
        assert!(
            self.builder.has(out),
            "not built on the builder\n{}",
            run.explain()
        );
        let content = std::fs::read_to_string(out).unwrap_or_default();
        assert_eq!(content.trim(), self.builder.mark, "{}", run.explain());
        let link = self.depot.path("result");
        assert_eq!(target(&link), out);
        assert!(
            is_gc_root(&link),
            "{} is not a GC root here",
            link.display()
        );
    }
}

/// Runs `command` to the end, which must come (a remote build that hangs fails the test).
fn run(command: &mut Command) -> Run {
    Spawned::start(command.stdout(Stdio::piped()).stderr(Stdio::piped())).finish(PATIENCE)
}

/// Nix's last error line (with the next line, where Nix 2.26 and later start the message
/// on a line of its own).
fn nix_error(run: &Run) -> String {
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    let last = lines.iter().rposition(|l| l.starts_with("error:"));
    let last = last.unwrap_or_else(|| panic!("no error from Nix\n{}", run.explain()));
    match lines[last].trim_end() {
        "error:" => lines[last..=last + 1].join("\n"),
        line => line.to_owned(),
    }
}

/// The tool failed as bare Nix did: the same status, Nix's error among its lines, nothing
/// on stdout, no link.
#[track_caller]
fn failed_as(remote: &Remote, ours: &Run, bare: &Run) {
    let code = bare.code().filter(|&c| c != 0);
    let code = code.unwrap_or_else(|| panic!("bare Nix did not fail\n{}", bare.explain()));
    ours.fails_with(code);
    ours.stderr_contains(&nix_error(bare));
    assert!(ours.out.stdout.is_empty(), "{}", ours.explain());
    assert!(!remote.depot.path("result").exists(), "{}", ours.explain());
}

/// The arguments that build `attr` from `drv` on the realise path, or on the fallback
/// after deleting `drv`.
fn target_args(drv: &Path, attr: &str, fallback: bool) -> Vec<OsString> {
    let mut args = vec![os("--drv-path"), drv.into()];
    if fallback {
        delete(drv);
        args.extend([os("-A"), os(attr)]);
    }
    args
}

fn build_remotely(protocol: Protocol, fallback: bool) {
    let Some(setup) = setup() else { return };
    let remote = Remote::new(setup, protocol);
    let drv = remote.depot.instantiate("where");
    let out = remote.output_of(&drv);
    let run = run(&mut remote.tool(target_args(&drv, "where", fallback)));
    remote.built_remotely(&run, &out);
}

#[test]
fn realise_builds_on_the_remote_builder_over_ssh() {
    build_remotely(Protocol::Ssh, false);
}

#[test]
fn fallback_builds_on_the_remote_builder_over_ssh() {
    build_remotely(Protocol::Ssh, true);
}

#[test]
fn realise_builds_on_the_remote_builder_over_ssh_ng() {
    build_remotely(Protocol::SshNg, false);
}

#[test]
fn fallback_builds_on_the_remote_builder_over_ssh_ng() {
    build_remotely(Protocol::SshNg, true);
}

#[test]
fn a_failing_remote_build_fails_as_bare_nix_does_on_both_paths() {
    let Some(setup) = setup() else { return };
    let remote = Remote::new(setup, Protocol::Ssh);
    let drv = remote.depot.instantiate("fails");
    let bare = run(&mut remote.command("nix-store", [os("--realise"), drv.clone().into()]));
    let ours = run(&mut remote.tool(target_args(&drv, "fails", false)));
    failed_as(&remote, &ours, &bare);
    ours.stderr_contains("this build fails");

    let bare = run(&mut remote.command("nix-build", ["-A", "fails", "--no-out-link"]));
    let ours = run(&mut remote.tool(target_args(&drv, "fails", true)));
    failed_as(&remote, &ours, &bare);
    ours.stderr_contains("this build fails");
}

#[test]
fn an_unreachable_builder_fails_as_bare_nix_does() {
    let Some(setup) = setup() else { return };
    let mut remote = Remote::new(setup, Protocol::Ssh);
    remote.builder.kill();
    let drv = remote.depot.instantiate("where");
    let bare = run(&mut remote.command("nix-store", [os("--realise"), drv.clone().into()]));
    let mut args = target_args(&drv, "where", false);
    args.extend([os("--retries"), os("1")]);
    let ours = run(&mut remote.tool(args));
    failed_as(&remote, &ours, &bare);
    ours.stderr_contains("Connection refused");
    retried_as_transient(&ours);
}

/// The failure was one another attempt may fix, and `--retries 1` made that attempt.
#[track_caller]
fn retried_as_transient(run: &Run) {
    run.stderr_contains("failed in a way another attempt may fix")
        .stderr_contains("retry 1 of 1 in 1 s");
}

/// Starts `command`, which builds `slow`, and waits until the build runs on the builder.
fn start_slow(remote: &Remote, command: &mut Command) -> Spawned {
    let run = Spawned::start(command.stdout(Stdio::piped()).stderr(Stdio::piped()));
    wait_until(PATIENCE, "the slow build to start on the builder", || {
        let sessions = remote.builder.sessions();
        remote
            .depot
            .builders()
            .iter()
            .any(|pid| sessions.iter().any(|p| p.starts_with(&format!("{pid}: "))))
    });
    run
}

#[test]
fn a_builder_killed_mid_build_fails_as_bare_nix_does_and_nothing_hangs() {
    let Some(setup) = setup() else { return };
    let mut remote = Remote::new(setup, Protocol::Ssh);
    let drv = remote.depot.instantiate("slow");
    let run = start_slow(
        &remote,
        &mut remote.command("nix-store", [os("--realise"), drv.clone().into()]),
    );
    remote.builder.kill();
    let bare = run.finish(PATIENCE);

    remote.replace_builder();
    let run = start_slow(&remote, &mut remote.tool(target_args(&drv, "slow", false)));
    remote.builder.kill();
    let ours = run.finish(PATIENCE);
    failed_as(&remote, &ours, &bare);
    // The summary says another attempt may fix it, as `--retries` would try.
    ours.stderr_contains("failed in a way another attempt may fix");
    assert!(remote.depot.builders().is_empty());
}

/// SIGTERM to the step while its build runs on the builder: it ends within 10 s, and the
/// build on the builder stops, well before its 60 s would end it.
fn cancel_mid_build(fallback: bool) {
    let Some(setup) = setup() else { return };
    let remote = Remote::new(setup, Protocol::Ssh);
    let drv = remote.depot.instantiate("slow");
    let run = start_slow(
        &remote,
        &mut remote.tool(target_args(&drv, "slow", fallback)),
    );
    run.signal(Signal::SIGTERM, false);
    let run = run.finish(Duration::from_secs(10));
    run.error_mentions("cancelled by signal 15 (SIGTERM); Nix has stopped");
    assert_eq!(run.out.status.signal(), Some(15), "{}", run.explain());
    wait_until(
        Duration::from_secs(30),
        "the build on the builder to stop",
        || remote.builder.sessions().is_empty(),
    );
    assert!(remote.depot.builders().is_empty());
    assert!(alive(remote.builder.sshd), "the builder itself went away");
}

#[test]
fn sigterm_mid_remote_build_ends_the_step_and_the_remote_build_while_realising() {
    cancel_mid_build(false);
}

#[test]
fn sigterm_mid_remote_build_ends_the_step_and_the_remote_build_while_re_evaluating() {
    cancel_mid_build(true);
}

/// What README's recipe warns of: through the daemon, `builders` is a restricted setting,
/// so an untrusted agent's is ignored (with Nix's warning) and, with `-j 0`, nothing can
/// build. The builders are the daemon's to configure.
#[test]
fn through_the_daemon_an_untrusted_agents_builders_option_is_ignored() {
    let Some(setup) = setup() else { return };
    if setup.agent.is_none() {
        eprintln!("skipped: single-user Nix, which takes the option (the other tests)");
        return;
    }
    let remote = Remote::new(setup, Protocol::Ssh);
    std::fs::remove_file(MACHINES).unwrap();
    let drv = remote.depot.instantiate("where");
    let out = remote.output_of(&drv);
    let bare = run(remote
        .builders_option(&mut remote.command("nix-store", [os("--realise"), drv.clone().into()])));
    let ours = run(remote.builders_option(&mut remote.tool(target_args(&drv, "where", false))));
    failed_as(&remote, &ours, &bare);
    // Nix's warning, where the daemon sends it (2.8's says nothing).
    let stderr = bare.stderr();
    let warning = stderr.lines().find(|l| l.contains("'builders'"));
    if let Some(warning) = warning {
        assert!(warning.contains("not a trusted user"), "{}", bare.explain());
        ours.stderr_contains(warning);
    }
    assert!(!remote.builder.has(&out));
}

/// The agent's own ssh configuration for the builder, for the copy it runs itself: the
/// client key and known hosts, made the agent's, which ssh then takes.
fn agent_ssh_config(remote: &Remote) -> PathBuf {
    let client = remote.builder.dir().join("client");
    let dir = remote.depot.path("ssh");
    std::fs::create_dir(&dir).unwrap();
    for file in ["id", "known_hosts"] {
        std::fs::copy(client.join(file), dir.join(file)).unwrap();
    }
    let block = remote
        .builder
        .host_block()
        .replace(&client.display().to_string(), &dir.display().to_string());
    std::fs::write(dir.join("config"), block).unwrap();
    if let Some(agent) = &remote.setup.agent {
        for file in ["", "id", "known_hosts", "config"] {
            std::os::unix::fs::chown(dir.join(file), Some(agent.uid), Some(agent.gid)).unwrap();
        }
    }
    dir.join("config")
}

#[test]
fn a_copy_to_an_ssh_store_leaves_the_closure_there() {
    let Some(setup) = setup() else { return };
    let remote = Remote::new(setup, Protocol::Ssh);
    let config = agent_ssh_config(&remote);
    let mut command = Command::new(BIN);
    command
        .args(["-A", "here", "--no-out-link", "--copy-to"])
        .arg(format!("ssh://{HOST}"))
        .current_dir(&remote.depot.dir)
        .env("NIX_CONFIG", nix_config())
        .env("NIX_SSHOPTS", format!("-F {}", config.display()));
    if let Some(agent) = &remote.setup.agent {
        command
            .uid(agent.uid)
            .gid(agent.gid)
            .env("HOME", &agent.home)
            .env("USER", "agent");
    }
    let run = run(&mut command);
    run.success();
    assert!(run.notes().is_empty(), "{}", run.explain());
    let paths = run.paths();
    assert_eq!(paths.len(), 1, "{}", run.explain());
    let lib = remote.output_of(&remote.depot.instantiate("lib"));
    for path in [&paths[0], &lib] {
        assert!(
            remote.builder.has(path),
            "{} is not on the builder\n{}",
            path.display(),
            run.explain()
        );
    }
}
