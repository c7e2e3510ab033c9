//! The one place that runs Nix.
//!
//! Nix's stdout is captured (it carries the paths we verify); its stderr, the build log, goes
//! straight to ours so it streams live. Only when the evaluation must report back to us is
//! stderr read, alongside stdout, and even then every byte but our own report line is
//! passed on as soon as it arrives. How the process is started is in `crate::spawn`.

use crate::error::{Error, Result, Status};
use crate::signals::Forwarding;
use crate::spawn;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::WaitPidFlag;
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Nix prints one path per output; anything near this size is not that.
const STDOUT_LIMIT: u64 = 1 << 20;

/// A Nix command line, built up and then run once.
pub struct NixCommand {
    program: &'static str,
    args: Vec<OsString>,
    /// Read stderr for the line our evaluated expression traces (see `crate::evaluate`).
    watch_report: bool,
}

/// What a finished Nix process left us.
pub struct Finished {
    pub status: Status,
    /// Nix's stdout, or `None` if it printed more than any list of paths could be.
    pub stdout: Option<Vec<u8>>,
    /// The payload of the report line, when watched for and printed.
    pub report: Option<Vec<u8>>,
}

impl NixCommand {
    pub fn new(program: &'static str) -> Self {
        NixCommand {
            program,
            args: Vec::new(),
            watch_report: false,
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

    pub fn watch_report(&mut self) -> &mut Self {
        self.watch_report = true;
        self
    }

    pub fn program(&self) -> &'static str {
        self.program
    }

    /// The exact command, shell-quoted, as a person would paste it.
    pub fn display(&self) -> String {
        std::iter::once(OsStr::new(self.program))
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command on one line, for error messages: a multi-line argument (the generated
    /// expression) is shown as `'…'`; `--verbose` prints it whole.
    pub fn display_brief(&self) -> String {
        std::iter::once(OsStr::new(self.program))
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|arg| {
                if arg.as_bytes().contains(&b'\n') {
                    Cow::Borrowed("'…'")
                } else {
                    shell_quote(arg)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command to completion, calling `started` as soon as Nix has started. A
    /// signal to us is forwarded to Nix and reported as `Error::Cancelled` once Nix has
    /// exited; any other status is left to the caller.
    pub fn run(&self, verbose: bool, started: impl FnOnce()) -> Result<Finished> {
        if let Some(signal) = crate::signals::received() {
            return Err(Error::Cancelled(signal));
        }
        if verbose {
            // A closed stderr loses the line, not the build.
            let _ = writeln!(io::stderr(), "$ {}", self.display());
        }
        Forwarding::install();
        let mut command = std::process::Command::new(self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if self.watch_report {
            command.stderr(Stdio::piped());
        }
        let mut child = spawn::spawn(&mut command).map_err(|e| self.spawn_error(e))?;
        let pid = child.id();
        let forwarding = Forwarding::to(pid);
        started();

        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let collected = collect(pid, stdout, stderr, self.watch_report);
        // Nix has exited (`collect` returns only then; waited for here if reading failed)
        // but is not yet reaped, so its pid cannot have been reused: only now may signals
        // stop going to it.
        if collected.is_err() {
            let _ = spawn::has_exited(pid, WaitPidFlag::empty());
        }
        drop(forwarding);
        let status = child.wait().map(Status::from);

        if let Some(signal) = crate::signals::received() {
            return Err(Error::Cancelled(signal));
        }
        let status = status.map_err(|e| Error::io(format!("waiting for {}", self.program), e))?;
        let collected = collected
            .map_err(|e| Error::io(format!("reading the output of {}", self.program), e))?;
        Ok(Finished {
            status,
            stdout: collected.stdout,
            report: collected.report,
        })
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
            _ => Error::io(format!("cannot start {program}"), err),
        }
    }
}

/// What Nix printed, read while it ran.
struct Collected {
    /// `None` if Nix printed more than `STDOUT_LIMIT`.
    stdout: Option<Vec<u8>>,
    report: Option<Vec<u8>>,
}

/// Reads Nix's stdout, and its stderr when piped (passing the log on through the report
/// filter), until Nix exits; returns with Nix exited but not reaped.
///
/// Nix's exit, not the end of its pipes, ends the reading: a process Nix leaves behind
/// holding them open (a wrapper's daemon, say) must not hold us too. What Nix wrote before
/// exiting is still in the pipes then, and is read without waiting for more.
fn collect(
    pid: u32,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    watch_report: bool,
) -> io::Result<Collected> {
    let mut stdout = stdout.map(Pipe::new).transpose()?;
    let mut stderr = stderr.map(Pipe::new).transpose()?;
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut on_stdout = |chunk: &[u8]| {
        let room = (STDOUT_LIMIT as usize + 1).saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        overflow |= kept.len() as u64 > STDOUT_LIMIT;
    };
    let mut filter = ReportFilter::default();
    let mut log = io::stderr();
    let mut on_stderr = |chunk: &[u8]| filter.feed(chunk, &mut log);

    // Nix's exit is looked for when its pipes go quiet, and at least this often while
    // they are busy (something it left behind may keep writing to them).
    const EXIT_CHECK: Duration = Duration::from_millis(100);
    let mut checked = Instant::now();
    loop {
        let pipes = [&stdout, &stderr];
        let mut fds: Vec<PollFd> = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (index, pipe) in pipes.iter().enumerate() {
            if let Some(pipe) = pipe.as_ref().filter(|p| p.open) {
                fds.push(PollFd::new(pipe.fd.as_fd(), PollFlags::POLLIN));
                which.push(index);
            }
        }
        if fds.is_empty() {
            // Nix closed its end of the pipes, which it does on the way out.
            spawn::has_exited(pid, WaitPidFlag::empty())?;
            break;
        }
        // A signal interrupting the wait is forwarded by the handler and needs nothing here.
        let ready = match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(ready) => ready,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let readable: Vec<usize> = fds
            .iter()
            .zip(which)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, index)| index)
            .collect();
        drop(fds);
        for index in readable {
            match (index, &mut stdout, &mut stderr) {
                (0, Some(pipe), _) => pipe.drain(false, &mut on_stdout)?,
                (1, _, Some(pipe)) => pipe.drain(false, &mut on_stderr)?,
                _ => {}
            }
        }
        if ready == 0 || checked.elapsed() >= EXIT_CHECK {
            checked = Instant::now();
            if spawn::has_exited(pid, WaitPidFlag::WNOHANG)? {
                break;
            }
        }
    }
    // What Nix wrote before exiting is still in the pipes: read it, without waiting for more.
    if let Some(pipe) = &mut stdout {
        pipe.drain(true, &mut on_stdout)?;
    }
    if let Some(pipe) = &mut stderr {
        pipe.drain(true, &mut on_stderr)?;
    }
    if watch_report {
        filter.finish(&mut log);
    }
    Ok(Collected {
        stdout: (!overflow).then_some(kept),
        report: filter.report,
    })
}

/// Our end of one of Nix's output pipes, read without blocking.
struct Pipe {
    fd: OwnedFd,
    open: bool,
}

impl Pipe {
    fn new(end: impl Into<OwnedFd>) -> io::Result<Self> {
        let fd = end.into();
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Pipe { fd, open: true })
    }

    /// Passes on what can be read now: up to a short read, which says the pipe is empty for
    /// the moment (saving a read that would fail), or with `to_the_end` until it is.
    fn drain(&mut self, to_the_end: bool, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let mut buf = [0; 8192];
        while self.open {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    each(&buf[..n]);
                    if n < buf.len() && !to_the_end {
                        break;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The prefix of the line the evaluated expression prints with `builtins.trace`.
pub const REPORT_MARKER: &[u8] = b"trace: @nix-buildkite-build-report ";
/// A report is a few store paths per target; a longer line is cut and fails to parse.
const REPORT_LIMIT: usize = 16 << 20;

/// Passes a byte stream on unchanged, except for lines starting with `REPORT_MARKER`,
/// whose rest is kept. Bytes are written as soon as they can be told apart from a
/// report line, so the log stays live.
#[derive(Default)]
struct ReportFilter {
    state: LineState,
    report: Option<Vec<u8>>,
    current: Vec<u8>,
}

#[derive(Clone, Copy, Default)]
enum LineState {
    /// At the start of a line, having held back this many bytes that match the marker.
    #[default]
    Start,
    Matching(usize),
    /// In a line that is not a report.
    Passing,
    /// In a report line.
    Capturing,
}

impl ReportFilter {
    // Errors writing our stderr are ignored: the log is lost either way, and the build's
    // result must still be reported.
    fn feed(&mut self, chunk: &[u8], to: &mut impl Write) {
        let mut pass_from = 0;
        for (i, &b) in chunk.iter().enumerate() {
            self.state = match self.state {
                LineState::Passing if b == b'\n' => LineState::Start,
                LineState::Passing => LineState::Passing,
                LineState::Start | LineState::Matching(_) => {
                    let held = match self.state {
                        LineState::Matching(held) => held,
                        _ => 0,
                    };
                    if b == REPORT_MARKER[held] {
                        let _ = to.write_all(&chunk[pass_from..i]);
                        pass_from = i + 1;
                        if held + 1 == REPORT_MARKER.len() {
                            self.current.clear();
                            LineState::Capturing
                        } else {
                            LineState::Matching(held + 1)
                        }
                    } else {
                        let _ = to.write_all(&REPORT_MARKER[..held]);
                        if b == b'\n' {
                            LineState::Start
                        } else {
                            LineState::Passing
                        }
                    }
                }
                LineState::Capturing => {
                    pass_from = i + 1;
                    if b == b'\n' {
                        self.report = Some(std::mem::take(&mut self.current));
                        LineState::Start
                    } else {
                        if self.current.len() < REPORT_LIMIT {
                            self.current.push(b);
                        }
                        LineState::Capturing
                    }
                }
            };
        }
        let _ = to.write_all(&chunk[pass_from..]);
    }

    fn finish(&mut self, to: &mut impl Write) {
        match self.state {
            LineState::Matching(held) => {
                let _ = to.write_all(&REPORT_MARKER[..held]);
            }
            LineState::Capturing => self.report = Some(std::mem::take(&mut self.current)),
            _ => {}
        }
        let _ = to.flush();
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

    fn filter(chunks: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut filter = ReportFilter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            filter.feed(chunk, &mut out);
        }
        filter.finish(&mut out);
        (out, filter.report)
    }

    #[test]
    fn passes_the_log_and_keeps_the_report() {
        let log = b"building\ntrace: @nix-buildkite-build-report {\"a\":1}\ntrace: other\ndone\n";
        let expected = b"building\ntrace: other\ndone\n";
        let (out, report) = filter(&[log]);
        assert_eq!(out, expected);
        assert_eq!(report.as_deref(), Some(&b"{\"a\":1}"[..]));
        // Split at every byte: the result must not depend on how reads chunk the stream.
        let chunks: Vec<&[u8]> = log.chunks(1).collect();
        assert_eq!(filter(&chunks), (expected.to_vec(), report));
    }

    #[test]
    fn a_partial_marker_is_passed_on() {
        for log in [
            &b"trace: @nix-buildkite"[..],
            b"trace: @nix\n",
            b"tr",
            b"x trace: @nix-buildkite-build-report 1\n",
        ] {
            assert_eq!(filter(&[log]), (log.to_vec(), None));
        }
    }

    #[test]
    fn quotes_like_a_shell() {
        assert_eq!(shell_quote(OsStr::new("plain")), "plain");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::from_bytes(b"a\xffb'")), "$'a\\xffb\\''");
    }
}
