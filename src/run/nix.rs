//! Running one Nix command: its log passes on to our stderr as it arrives (`nix_log`), while
//! `failure` reads it for what went wrong and the builds it starts are timed; after a
//! failure Nix reports as transient, the command runs again (`retrying`). A cancel ends the
//! run with what Nix was doing then, for the report.

use super::failure::{Scanner, Seen};
use super::nix_log::{Format, NixLog};
use super::version;
use crate::error::{Error, Result};
use crate::process::{CommandLine, signals};
use crate::request::Request;
use crate::status::Status;
use crate::{log, store};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// What a finished Nix process left us.
pub struct Finished {
    pub status: Status,
    /// Nix's stdout, or `None` if it printed more than any list of paths could be.
    pub stdout: Option<Vec<u8>>,
    /// What Nix's stderr said went wrong.
    pub seen: Seen,
    /// The builds Nix started, in order.
    pub builds: Vec<Build>,
    /// The signal that cancelled the run; Nix has stopped.
    pub cancelled: Option<i32>,
}

/// One build Nix ran.
#[derive(Clone, Debug)]
pub struct Build {
    pub drv: PathBuf,
    pub started: SystemTime,
    started_at: Instant,
    /// When it ended, if Nix said so: only where its log is read as JSON.
    ended: Option<Instant>,
    /// Whether Nix says when builds end (its log read as JSON), so that one without an end
    /// had not ended.
    timed: bool,
}

impl Build {
    /// How long it took, if known.
    pub fn took(&self) -> Option<Duration> {
        Some(self.ended? - self.started_at)
    }

    /// Whether it was still building when Nix stopped: `None` where Nix does not say.
    pub fn unfinished(&self) -> Option<bool> {
        self.timed.then_some(self.ended.is_none())
    }

    /// How long it had been building by now.
    pub fn so_far(&self) -> Duration {
        self.started_at.elapsed()
    }
}

/// How Nix is to write its log for `request`: as JSON where build times are wanted and
/// Nix can give them (2.4 and later), else plain.
pub fn log_format(request: &Request) -> Format {
    let wanted = request.junit.is_some() || matches!(request.form, crate::request::Form::Json);
    match wanted && version::nix_version(request.verbose) >= Some((2, 4)) {
        true => Format::Json,
        false => Format::Plain,
    }
}

/// Runs `command`, a Nix command given `format`'s flags, calling `started` once Nix runs.
/// What Nix prints on stderr passes to ours as it arrives.
pub fn run(
    command: &CommandLine,
    request: &Request,
    format: Format,
    started: impl FnOnce(),
) -> Result<Finished> {
    run_reading_stderr(command, request, format, started, &mut |log| {
        // A closed stderr loses the log, not the build.
        let _ = std::io::stderr().write_all(log);
    })
}

/// As `run`, but what Nix prints on stderr is handed to `log` as it arrives instead.
pub fn run_reading_stderr(
    command: &CommandLine,
    request: &Request,
    format: Format,
    started: impl FnOnce(),
    log: &mut dyn FnMut(&[u8]),
) -> Result<Finished> {
    // A JSON line holds the evaluation's report, at most 16 MiB and 16 KiB a target, escaped.
    let cap = (64 << 20) + (request.targets.len() << 15);
    let mut nix_log = NixLog::new(format, cap);
    let mut scanner = Scanner::new(&store::store_dir());
    let mut starts: Vec<(Instant, SystemTime)> = Vec::new();
    let mut read = |text: &[u8]| {
        log(text);
        scanner.feed(text);
        while starts.len() < scanner.started().len() {
            starts.push((Instant::now(), SystemTime::now()));
        }
    };
    let ran = command.run(request.verbose, started, &mut |chunk| {
        nix_log.feed(chunk, &mut read)
    });
    let ended = nix_log.finish(&mut read);
    let timed = format == Format::Json;
    let seen = scanner.finish();
    let builds = seen
        .started
        .iter()
        .zip(starts)
        .map(|(drv, (started_at, started))| Build {
            drv: drv.clone(),
            started,
            started_at,
            ended: ended.get(drv).copied(),
            timed,
        })
        .collect();
    let (status, stdout, cancelled) = match ran {
        Ok(ran) => (ran.status, ran.stdout, None),
        Err(Error::Cancelled(signal)) => (Status::Signal(signal), None, Some(signal)),
        Err(e) => return Err(e),
    };
    Ok(Finished {
        status,
        stdout,
        seen,
        builds,
        cancelled,
    })
}

/// Runs `attempt`, a run of `command`, and after a failure Nix reports as transient
/// (`Seen::transient`) runs it again, up to `retries` times, pausing 1 s, 2 s, 4 s …
/// first. A cancel during a pause cancels at once.
pub fn retrying(
    command: &CommandLine,
    retries: u32,
    mut attempt: impl FnMut() -> Result<Finished>,
) -> Result<Finished> {
    let mut retried = 0;
    loop {
        let finished = attempt()?;
        if finished.status.success() || finished.cancelled.is_some() || retried == retries {
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
            command.program(),
            pause.as_secs()
        ));
        if let Some(signal) = signals::pause(pause) {
            return Err(Error::Cancelled(signal));
        }
    }
}

/// Pauses between attempts double up to 2^6 s, about a minute.
const MAX_PAUSE_DOUBLINGS: u32 = 6;

/// The pause before the `retry`-th attempt after the first (from 1): 1 s, 2 s, 4 s …
pub fn pause_before(retry: u32) -> Duration {
    Duration::from_secs(1 << retry.saturating_sub(1).min(MAX_PAUSE_DOUBLINGS))
}
