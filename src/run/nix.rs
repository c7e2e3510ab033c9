//! Running one Nix command: its log passes on to our stderr as it arrives, while `failure`
//! reads it for what went wrong and which builds started, and `build_log` tells when each
//! ended; after a failure Nix reports as transient, the command runs again (`retrying`). A
//! cancel ends the run with what Nix was doing then, for the report.

use super::build_log;
use super::failure::{Scanner, Seen};
use crate::error::{Error, Result};
use crate::process::{CommandLine, signals};
use crate::request::Request;
use crate::status::Status;
use crate::{log, store};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
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

/// One build Nix ran: when it started, as its `building '…'` line reached us; when it ended
/// is asked of its build log (`build_log::closed`) by a report that wants it, once Nix has
/// stopped.
#[derive(Clone, Debug)]
pub struct Build {
    pub drv: PathBuf,
    pub started: SystemTime,
    started_at: Instant,
}

impl Build {
    /// How long it took, if its build log says. A log last written before the build
    /// started is an earlier build's: this one wrote none (started, a build truncates its
    /// log, within a clock tick). A file's time is the file system's clock tick, a few
    /// milliseconds behind ours: a build that short took no time.
    pub fn took(&self) -> Option<Duration> {
        let ended = build_log::closed(&self.drv).filter(|e| *e + CLOCK_TICK >= self.started)?;
        Some(ended.duration_since(self.started).unwrap_or_default())
    }

    /// How long it had been building by now.
    pub fn so_far(&self) -> Duration {
        self.started_at.elapsed()
    }
}

/// More than the file system's clock lags behind ours.
const CLOCK_TICK: Duration = Duration::from_millis(100);

/// Runs `command`, a Nix command, calling `started` once Nix runs. What Nix prints on
/// stderr passes to ours as it arrives, byte for byte.
pub fn run(command: &CommandLine, request: &Request, started: impl FnOnce()) -> Result<Finished> {
    run_reading_stderr(command, request, started, &mut |log| {
        // A closed stderr loses the log, not the build.
        let _ = std::io::stderr().write_all(log);
    })
}

/// As `run`, but what Nix prints on stderr is handed to `log` as it arrives instead.
pub fn run_reading_stderr(
    command: &CommandLine,
    request: &Request,
    started: impl FnOnce(),
    log: &mut dyn FnMut(&[u8]),
) -> Result<Finished> {
    let mut scanner = Scanner::new(&store::store_dir());
    let mut starts: Vec<(Instant, SystemTime)> = Vec::new();
    let ran = command.run(request.verbose, started, &mut |chunk| {
        log(chunk);
        scanner.feed(chunk);
        while starts.len() < scanner.started().len() {
            starts.push((Instant::now(), SystemTime::now()));
        }
    });
    let seen = scanner.finish();
    // Each once, as Nix builds each once: a line that says so again is not Nix's.
    let mut named: HashSet<&Path> = HashSet::with_capacity(seen.started.len());
    let builds = seen
        .started
        .iter()
        .zip(starts)
        .filter(|(drv, _)| named.insert(drv))
        .map(|(drv, (started_at, started))| Build {
            drv: drv.clone(),
            started,
            started_at,
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
    // What earlier attempts built stays built, and is reported with the last attempt's.
    let mut earlier: Vec<Build> = Vec::new();
    loop {
        let mut finished = attempt()?;
        earlier.retain(|b| !finished.builds.iter().any(|f| f.drv == b.drv));
        earlier.append(&mut finished.builds);
        let again = !finished.status.success() && finished.cancelled.is_none() && retried < retries;
        let why = match finished.seen.transient() {
            Some(why) if again => why.to_owned(),
            _ => {
                finished.builds = earlier;
                return Ok(finished);
            }
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
