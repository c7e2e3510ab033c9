//! Running one Nix command: its log passes on to our stderr as it arrives, while `failure`
//! reads it for what went wrong; after a failure Nix reports as transient, the command runs
//! again (`retrying`).

use super::failure::{Scanner, Seen};
use crate::error::{Error, Result};
use crate::process::{CommandLine, signals};
use crate::status::Status;
use crate::{log, store};
use std::io::Write;
use std::time::Duration;

/// What a finished Nix process left us.
pub struct Finished {
    pub status: Status,
    /// Nix's stdout, or `None` if it printed more than any list of paths could be.
    pub stdout: Option<Vec<u8>>,
    /// What Nix's stderr said went wrong.
    pub seen: Seen,
}

/// Runs `command`, a Nix command, calling `started` once Nix runs. Nix's stderr passes to
/// ours byte for byte as it arrives.
pub fn run(command: &CommandLine, verbose: bool, started: impl FnOnce()) -> Result<Finished> {
    run_reading_stderr(command, verbose, started, &mut |log| {
        // A closed stderr loses the log, not the build.
        let _ = std::io::stderr().write_all(log);
    })
}

/// As `run`, but Nix's stderr is handed to `log` as it arrives instead.
pub fn run_reading_stderr(
    command: &CommandLine,
    verbose: bool,
    started: impl FnOnce(),
    log: &mut dyn FnMut(&[u8]),
) -> Result<Finished> {
    let mut scanner = Scanner::new(&store::store_dir());
    let ran = command.run(verbose, started, &mut |chunk| {
        log(chunk);
        scanner.feed(chunk);
    })?;
    Ok(Finished {
        status: ran.status,
        stdout: ran.stdout,
        seen: scanner.finish(),
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
