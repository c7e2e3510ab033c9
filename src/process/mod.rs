//! Starting processes: the one place that does. Nix above all, and beside it git (for the
//! out-links' work tree) and buildkite-agent (for the annotation).
//!
//! A `CommandLine` is built up, shown shell-quoted (`--verbose`, `--dry-run`, and every error
//! about it), then run once. Its stdout is captured, bounded, as it carries what we parse;
//! its stderr goes to the caller as it arrives, so that Nix's log streams live. Signals to us
//! go on to the child while it runs (`signals`), and how it ended comes back exactly
//! (`Status`). Every child gets a parent-death signal (`spawn`).

mod pipes;
pub mod signals;

use crate::error::{Error, Result};
use crate::status::Status;
use crate::text;
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::Signal;
use signals::Forwarding;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command line, built up and then run once.
pub struct CommandLine {
    program: &'static str,
    args: Vec<OsString>,
    /// What the program reads on stdin (an expression, for `nix-build -`); else /dev/null.
    stdin: Option<Vec<u8>>,
    /// How much of its stdout is kept, in MiB (`stdout_limit_for`).
    stdout_mib: usize,
    /// How long it may run before it is killed (SIGKILL); without one, as long as it takes.
    limit: Option<Duration>,
    /// Whether it runs although the run was cancelled (to tell what the cancel stopped).
    despite_cancel: bool,
}

/// Ends the here-document that shows a command's stdin. No line of a generated expression
/// is this: every name in one is a string literal, with its line breaks escaped.
const HEREDOC_END: &str = "NIX_BUILDKITE_BUILD_EXPRESSION";

/// What a finished process left us.
pub struct Ran {
    pub status: Status,
    /// Its stdout, or `None` if it printed more than `stdout_limit_mib`.
    pub stdout: Option<Vec<u8>>,
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
        let room = (4 * text::LINE_SHOWN + 4).saturating_sub(self.current.len());
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
        let line = text::shorten(&text::printable(&self.current));
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

impl CommandLine {
    pub fn new(program: &'static str) -> Self {
        CommandLine {
            program,
            args: Vec::new(),
            stdin: None,
            stdout_mib: 1,
            limit: None,
            despite_cancel: false,
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

    /// Kills the command (SIGKILL) if it runs longer than `limit`.
    pub fn time_limit(&mut self, limit: Duration) -> &mut Self {
        self.limit = Some(limit);
        self
    }

    /// Runs the command even after a signal cancelled the run, as the report of what the
    /// cancel stopped needs; a further signal still reaches it.
    pub fn despite_cancel(&mut self) -> &mut Self {
        self.despite_cancel = true;
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

    /// Runs the command to completion, calling `started` as soon as it has started, and
    /// handing its stderr to `on_stderr` as it arrives. A signal to us is forwarded to it and
    /// reported as `Error::Cancelled` once it has exited; any other status is the caller's.
    pub fn run(
        &self,
        verbose: bool,
        started: impl FnOnce(),
        on_stderr: &mut dyn FnMut(&[u8]),
    ) -> Result<Ran> {
        let limit = self.stdout_mib << 20;
        let mut kept = Vec::new();
        let mut keep = |chunk: &[u8]| {
            let room = (limit + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        };
        let status = self.run_with(verbose, started, &mut keep, on_stderr)?;
        Ok(Ran {
            status,
            stdout: (kept.len() <= limit).then_some(kept),
        })
    }

    /// Runs the command for the last `lines` lines of its stdout (`nix-store --read-log`,
    /// whose output may be as long as a build log), each made `text::printable`; its
    /// stderr is not shown.
    pub fn run_for_tail(&self, verbose: bool, lines: usize) -> Result<(Status, Vec<String>)> {
        let mut tail = Tail::new(lines);
        let status = self.run_with(verbose, || (), &mut |out| tail.feed(out), &mut |_| {})?;
        Ok((status, tail.finish()))
    }

    /// Runs the command once, handing its stdout and stderr to `on_stdout` and `on_stderr`
    /// as they arrive.
    fn run_with(
        &self,
        verbose: bool,
        started: impl FnOnce(),
        on_stdout: &mut dyn FnMut(&[u8]),
        on_stderr: &mut dyn FnMut(&[u8]),
    ) -> Result<Status> {
        let cancelled = || signals::received().filter(|_| !self.despite_cancel);
        if let Some(signal) = cancelled() {
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
        // A child that runs despite the cancel is not given it: only a further signal stops it.
        let forwarding = Forwarding::to(child.id(), !self.despite_cancel);
        started();

        let deadline = self.limit.map(|limit| Instant::now() + limit);
        let read = pipes::read_until_exit(&mut child, deadline, on_stdout, on_stderr);
        // The child has exited (`read_until_exit` returns only then; waited for here if
        // reading failed) but is not yet reaped, so its pid cannot have been reused: only now
        // may signals stop going to it.
        if read.is_err() {
            let _ = pipes::wait_for_exit(child.id());
        }
        drop(forwarding);
        let status = child.wait();

        if let Some(signal) = cancelled() {
            return Err(Error::Cancelled(signal));
        }
        let status = status.map_err(|e| Error::io(format!("waiting for {}", self.program), e))?;
        read.map_err(|e| Error::io(format!("reading the output of {}", self.program), e))?;
        Ok(status.into())
    }

    /// The error for a Nix command that ran and failed, carrying the command line.
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
                let hint = match program.starts_with("nix") {
                    true => "; is Nix installed?",
                    false => "",
                };
                Error::ProgramMissing(format!("{program} not found on PATH{hint}"))
            }
            io::ErrorKind::PermissionDenied => {
                Error::ProgramMissing(format!("{program} on PATH is not executable: {err}"))
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
