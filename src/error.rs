//! Why a run failed, and the exit status each reason maps to.
//!
//! The table in README.md ("Exit status") is the contract; `Error::exit_code` is its only
//! implementation.

use crate::status::Status;
use std::fmt;

/// Every way a run can fail. Each variant's message is one line that names the problem.
#[derive(Debug)]
pub enum Error {
    /// The command line or a value on it is invalid. Nothing was run.
    Usage(String),
    /// The `.drv` is gone and there is no attribute path to re-evaluate.
    NoFallback(String),
    /// An out-link cannot be made without destroying something. Nothing was built.
    OutLink(String),
    /// An attribute path names nothing, or no derivation.
    NoDerivation(String),
    /// `--strict` and the evaluated `.drv` differs from the one the pipeline recorded.
    Drift(String),
    /// Nix succeeded but what it reported is not the outputs asked for. Nothing was printed.
    Unverified(String),
    /// `--exec` was asked for but the result is not exactly one program.
    NotAProgram(String),
    /// An output Nix reported was not in the store, though Nix ran twice: a garbage
    /// collection took it as it was built (or Nix never built it). Nothing was printed.
    Collected(String),
    /// `--copy-required`, and a `--copy-to` store did not get the outputs, which were built.
    CopyFailed(String),
    /// A program we run (Nix's, above all) is not on PATH, or not executable.
    ProgramMissing(String),
    /// Nix failed; its status is passed on unchanged.
    Nix {
        command: String,
        program: &'static str,
        status: Status,
    },
    /// This process was asked to stop by signal N, and Nix has exited.
    Cancelled(i32),
    /// Reading or writing something of our own failed (stdout closed, unreadable `.drv`, …).
    Io(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            // Nix's status for an evaluation error, as for any other mistake in a target.
            Error::NoDerivation(_) => 1,
            Error::Usage(_) => 2,
            Error::NoFallback(_) => 3,
            Error::OutLink(_) => 4,
            Error::Drift(_) => 5,
            Error::Unverified(_) => 6,
            Error::Io(_) => 7,
            Error::NotAProgram(_) => 8,
            Error::Collected(_) => 9,
            Error::CopyFailed(_) => 10,
            Error::ProgramMissing(_) => 127,
            Error::Nix { status, .. } => status.exit_code(),
            Error::Cancelled(signal) => Status::Signal(*signal).exit_code(),
        }
    }

    /// An I/O failure, with what was being done when it happened.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Error::Io(format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg)
            | Error::NoDerivation(msg)
            | Error::NoFallback(msg)
            | Error::OutLink(msg)
            | Error::Drift(msg)
            | Error::Unverified(msg)
            | Error::NotAProgram(msg)
            | Error::Collected(msg)
            | Error::CopyFailed(msg)
            | Error::ProgramMissing(msg)
            | Error::Io(msg) => f.write_str(msg),
            Error::Nix {
                command,
                program,
                status,
            } => write!(f, "{program} failed with {status}: $ {command}"),
            Error::Cancelled(signal) => write!(
                f,
                "cancelled by {}; Nix has stopped",
                Status::Signal(*signal)
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
