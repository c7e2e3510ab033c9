//! How a process ended, as data: the exit status a shell would report for it.

use nix::sys::signal::Signal;
use std::fmt;

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
