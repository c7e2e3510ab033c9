//! Running Nix: the one place that does, and the one place that starts any process (git too).
//!
//! A command is built up, shown shell-quoted (`--verbose`, `--dry-run`, and every error about
//! it), then run; `retrying` runs it again after a failure Nix reports as transient. Nix's
//! stdout is captured, as it carries the paths we verify; its stderr, the build log, passes
//! through us to our stderr as it arrives, so it streams live, while `failure::Scanner`
//! reads it for what went wrong; a caller may take it instead (`crate::evaluate` does, for
//! its report line). Signals to us go on to Nix while it runs (`crate::signals`), and how
//! Nix ended comes back exactly (`Status`).

use crate::error::{Error, Result};
use crate::failure::{self, Scanner, Seen};
use crate::signals::{self, Forwarding};
use crate::{log, pipes, store};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::Signal;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Nix command line, built up and then run once.
pub struct NixCommand {
    program: &'static str,
    args: Vec<OsString>,
    /// What Nix reads on stdin (an expression, for `nix-build -`); else /dev/null.
    stdin: Option<Vec<u8>>,
    /// How much of Nix's stdout is kept, in MiB (`stdout_limit_for`).
    stdout_mib: usize,
}

/// Ends the here-document that shows a command's stdin. No line of a generated expression
/// is this: every name in one is a string literal, with its line breaks escaped.
const HEREDOC_END: &str = "NIX_BUILDKITE_BUILD_EXPRESSION";

/// What a finished Nix process left us.
pub struct Finished {
    pub status: Status,
    /// Nix's stdout, or `None` if it printed more than any list of paths could be.
    pub stdout: Option<Vec<u8>>,
    /// What Nix's stderr said went wrong.
    pub seen: Seen,
}

/// Pauses between attempts double up to 2^6 s, about a minute.
const MAX_PAUSE_DOUBLINGS: u32 = 6;

/// The pause before the `retry`-th attempt after the first (from 1): 1 s, 2 s, 4 s …
pub fn pause_before(retry: u32) -> Duration {
    Duration::from_secs(1 << retry.saturating_sub(1).min(MAX_PAUSE_DOUBLINGS))
}

/// The last lines of a stream, each cut to what a summary shows: memory stays bounded
/// however long the stream.
struct Tail {
    lines: VecDeque<String>,
    max: usize,
    current: Vec<u8>,
}

impl Tail {
    fn new(max: usize) -> Self {
        Tail {
            lines: VecDeque::new(),
            max,
            current: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.take(&rest[..end]);
            self.push();
            rest = &rest[end + 1..];
        }
        self.take(rest);
    }

    fn take(&mut self, bytes: &[u8]) {
        // More than a shown line needs is dropped (four bytes a character at most).
        let room = (4 * failure::LINE_SHOWN + 4).saturating_sub(self.current.len());
        self.current
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn push(&mut self) {
        if self.max == 0 {
            return;
        }
        if self.lines.len() == self.max {
            self.lines.pop_front();
        }
        let line = failure::shorten(&failure::printable(&self.current));
        self.lines.push_back(line);
        self.current.clear();
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.push();
        }
        self.lines.into()
    }
}

impl NixCommand {
    pub fn new(program: &'static str) -> Self {
        NixCommand {
            program,
            args: Vec::new(),
            stdin: None,
            stdout_mib: 1,
        }
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(&mut self, args: I) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Gives Nix `text` on its stdin. However long, it never meets the kernel's limit on
    /// one argument (128 KiB), as an expression passed with `-E` does.
    pub fn stdin(&mut self, text: Vec<u8>) -> &mut Self {
        self.stdin = Some(text);
        self
    }

    /// Sizes what is kept of Nix's stdout for a command building `targets` targets. Nix
    /// prints a path per output, so 1 MiB, and 1 MiB more per 64 targets (16 KiB each), is
    /// no list of paths; the bound keeps a Nix gone wrong from filling our memory.
    pub fn stdout_limit_for(&mut self, targets: usize) -> &mut Self {
        self.stdout_mib = 1 + targets / 64;
        self
    }

    /// What is kept of Nix's stdout, in MiB: printing more fails the run.
    pub fn stdout_limit_mib(&self) -> usize {
        self.stdout_mib
    }

    pub fn program(&self) -> &'static str {
        self.program
    }

    /// The exact command, shell-quoted, as a person would paste it, with its stdin as a
    /// here-document: lines that a shell runs as they are.
    pub fn display(&self) -> Vec<u8> {
        let mut shown = self.display_line().into_bytes();
        if let Some(text) = &self.stdin {
            shown.extend_from_slice(format!(" <<'{HEREDOC_END}'\n").as_bytes());
            shown.extend_from_slice(text);
            if !text.ends_with(b"\n") {
                shown.push(b'\n');
            }
            shown.extend_from_slice(HEREDOC_END.as_bytes());
        }
        shown
    }

    /// The command on one line, for error messages: the stdin is left out (`--verbose` and
    /// `--dry-run` show it whole).
    pub fn display_brief(&self) -> String {
        let mut line = self.display_line();
        if self.stdin.is_some() {
            line.push_str(" <<'…'");
        }
        line
    }

    fn display_line(&self) -> String {
        self.words().map(shell_quote).collect::<Vec<_>>().join(" ")
    }

    fn words(&self) -> impl Iterator<Item = &OsStr> {
        std::iter::once(OsStr::new(self.program)).chain(self.args.iter().map(OsString::as_os_str))
    }

    /// Runs the command to completion, calling `started` as soon as Nix has started. Nix's
    /// stderr passes through to ours as it arrives, byte for byte. A signal to us is
    /// forwarded to Nix and reported as `Error::Cancelled` once Nix has exited; any other
    /// status is left to the caller.
    pub fn run(&self, verbose: bool, started: impl FnOnce()) -> Result<Finished> {
        self.run_keeping_stdout(verbose, started, &mut |log| {
            // A closed stderr loses the log, not the build.
            let _ = io::stderr().write_all(log);
        })
    }

    /// As `run`, but Nix's stderr is handed to `log` as it arrives instead.
    pub fn run_reading_stderr(
        &self,
        verbose: bool,
        log: &mut dyn FnMut(&[u8]),
    ) -> Result<Finished> {
        self.run_keeping_stdout(verbose, || (), log)
    }

    /// Runs the command for the last `lines` lines of its stdout (`nix-store --read-log`,
    /// whose output may be as long as a build log), each made `failure::printable`; its
    /// stderr is not shown.
    pub fn run_for_tail(&self, verbose: bool, lines: usize) -> Result<(Status, Vec<String>)> {
        let mut tail = Tail::new(lines);
        let (status, _) = self.run_with(verbose, || (), &mut |out| tail.feed(out), &mut |_| {})?;
        Ok((status, tail.finish()))
    }

    /// Runs `attempt`, a run of this command, and after a failure Nix reports as transient
    /// (`failure::Seen::transient`) runs it again, up to `retries` times, pausing 1 s, 2 s,
    /// 4 s … first. A cancel during a pause cancels at once.
    pub fn retrying(
        &self,
        retries: u32,
        mut attempt: impl FnMut() -> Result<Finished>,
    ) -> Result<Finished> {
        let mut retried = 0;
        loop {
            let finished = attempt()?;
            if finished.status.success() || retried == retries {
                return Ok(finished);
            }
            let Some(why) = finished.seen.transient() else {
                return Ok(finished);
            };
            retried += 1;
            let pause = pause_before(retried);
            log::note(&format!(
                "{} failed in a way another attempt may fix ({why}); retry {retried} of \
                 {retries} in {} s",
                self.program,
                pause.as_secs()
            ));
            if let Some(signal) = signals::pause(pause) {
                return Err(Error::Cancelled(signal));
            }
        }
    }

    fn run_keeping_stdout(
        &self,
        verbose: bool,
        started: impl FnOnce(),
        log: &mut dyn FnMut(&[u8]),
    ) -> Result<Finished> {
        let limit = self.stdout_mib << 20;
        let mut kept = Vec::new();
        let mut keep = |chunk: &[u8]| {
            let room = (limit + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        };
        let (status, seen) = self.run_with(verbose, started, &mut keep, log)?;
        Ok(Finished {
            status,
            stdout: (kept.len() <= limit).then_some(kept),
            seen,
        })
    }

    /// Runs the command once, handing its stdout and stderr to `on_stdout` and `log` as
    /// they arrive; its stderr is also read for what went wrong (`failure::Scanner`).
    fn run_with(
        &self,
        verbose: bool,
        started: impl FnOnce(),
        on_stdout: &mut dyn FnMut(&[u8]),
        log: &mut dyn FnMut(&[u8]),
    ) -> Result<(Status, Seen)> {
        if let Some(signal) = signals::received() {
            return Err(Error::Cancelled(signal));
        }
        if verbose {
            // A closed stderr loses the line, not the build.
            let mut line = b"$ ".to_vec();
            line.extend(self.display());
            line.push(b'\n');
            let _ = io::stderr().write_all(&line);
        }
        let stdin =
            match &self.stdin {
                Some(text) => Stdio::from(file_holding(text).map_err(|e| {
                    Error::io(format!("cannot prepare {}'s stdin", self.program), e)
                })?),
                None => Stdio::null(),
            };
        Forwarding::install();
        let mut command = Command::new(self.program);
        command
            .args(&self.args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut command).map_err(|e| self.spawn_error(e))?;
        let forwarding = Forwarding::to(child.id());
        started();

        let mut scanner = Scanner::new(&store::store_dir());
        let read = pipes::read_until_exit(&mut child, on_stdout, &mut |chunk| {
            log(chunk);
            scanner.feed(chunk);
        });
        // Nix has exited (`read_until_exit` returns only then; waited for here if reading
        // failed) but is not yet reaped, so its pid cannot have been reused: only now may
        // signals stop going to it.
        if read.is_err() {
            let _ = pipes::wait_for_exit(child.id());
        }
        drop(forwarding);
        let status = child.wait();

        if let Some(signal) = signals::received() {
            return Err(Error::Cancelled(signal));
        }
        let status = status.map_err(|e| Error::io(format!("waiting for {}", self.program), e))?;
        read.map_err(|e| Error::io(format!("reading the output of {}", self.program), e))?;
        Ok((status.into(), scanner.finish()))
    }

    /// The error for a Nix that ran and failed, carrying the command line.
    pub fn failed(&self, status: Status) -> Error {
        Error::Nix {
            command: self.display_brief(),
            program: self.program,
            status,
        }
    }

    fn spawn_error(&self, err: io::Error) -> Error {
        let program = self.program;
        match err.kind() {
            io::ErrorKind::NotFound => {
                Error::NixMissing(format!("{program} not found on PATH; is Nix installed?"))
            }
            io::ErrorKind::PermissionDenied => {
                Error::NixMissing(format!("{program} on PATH is not executable: {err}"))
            }
            // Only nix-store's .drvs grow the command line: one word each.
            io::ErrorKind::ArgumentListTooLong => Error::io(
                format!(
                    "cannot start {program} with {} arguments, over the kernel's limit on \
                     a command line (ARG_MAX); build fewer targets at once",
                    self.args.len()
                ),
                err,
            ),
            _ => Error::io(format!("cannot start {program}"), err),
        }
    }
}

/// Starts `command` as Nix's own `startProcess` starts a process: with a parent-death
/// signal. Should we die without passing a signal on (SIGKILL), the child gets SIGTERM, so
/// that Nix stops its builders instead of building for nobody. The kernel sends it when the
/// thread that started the child ends, which is our one thread, so only when we do.
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: the hook runs in the forked child before exec, and makes two system calls,
    // which are async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // We may have died before that took effect, and then no signal will come.
            if nix::unistd::getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        })
    };
    command.spawn()
}

/// A file in memory holding `bytes`, read from its start: a child's stdin. A file, not a
/// pipe, so that no write of ours waits for the child to read, however much there is.
pub fn file_holding(bytes: &[u8]) -> io::Result<File> {
    let mut file = File::from(memfd_create(c"nix-buildkite-build", MFdFlags::MFD_CLOEXEC)?);
    file.write_all(bytes)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// How a child process ended, as the exit status a shell would report for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Code(i32),
    Signal(i32),
}

impl Status {
    pub fn success(self) -> bool {
        self == Status::Code(0)
    }

    /// The status a caller of this tool sees: Nix's own code unchanged, 128+N for signal N.
    pub fn exit_code(self) -> u8 {
        match self {
            // An exit status is a byte; std hands it over as an i32.
            Status::Code(code) => code as u8,
            Status::Signal(signal) => 128 + signal as u8,
        }
    }
}

impl From<std::process::ExitStatus> for Status {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Status::Code(code),
            (None, Some(signal)) => Status::Signal(signal),
            // Stopped or continued: not reported by wait; a failure if ever seen.
            (None, None) => Status::Code(1),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Code(code) => write!(f, "exit status {code}"),
            Status::Signal(signal) => {
                let name = Signal::try_from(*signal)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "signal {signal} ({name})")
            }
        }
    }
}

/// Quotes one argument for a POSIX shell: bare when safe, else in single quotes; bytes that
/// are not UTF-8 in bash's `$'\xNN'` form, so what is shown is exactly what was run.
pub fn shell_quote(arg: &OsStr) -> Cow<'_, str> {
    match arg.to_str() {
        Some(text) => shell_words::quote(text),
        None => {
            let mut quoted = String::from("$'");
            for &b in arg.as_bytes() {
                match b {
                    b'\'' | b'\\' => {
                        quoted.push('\\');
                        quoted.push(b as char);
                    }
                    0x20..=0x7e => quoted.push(b as char),
                    _ => quoted.push_str(&format!("\\x{b:02x}")),
                }
            }
            quoted.push('\'');
            Cow::Owned(quoted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_a_shell() {
        assert_eq!(shell_quote(OsStr::new("plain")), "plain");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::from_bytes(b"a\xffb'")), "$'a\\xffb\\''");
    }
}
