//! The command line in, an exit status out; everything between is the library's.

use clap::Parser;
use nix_buildkite_build::{Args, Error, die_by, run};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args, STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not `eprintln!`, which panics on a stderr whose reader went away, and would
            // turn the status into 101.
            let _ = writeln!(std::io::stderr(), "nix-buildkite-build: error: {err}");
            if let Error::Cancelled(signal) = err {
                die_by(signal);
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Whether stdout was closed when we were started (`>&-`), so that no store path could be
/// printed. std puts /dev/null on a closed stdin, stdout or stderr before `main` (so that no
/// file we open takes their numbers), and our output would vanish there without an error;
/// so this is looked at earlier still, by a function the C runtime calls before `main`.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

// SAFETY: `.init_array` lists the functions the C runtime calls before `main`, as C's
// constructors; it passes (argc, argv, envp), which a C function taking nothing ignores.
#[unsafe(link_section = ".init_array")]
#[used]
static NOTE_CLOSED_STDOUT: extern "C" fn() = note_closed_stdout;

extern "C" fn note_closed_stdout() {
    // SAFETY: F_GETFD only reads a descriptor's flags, and fails if it is not open.
    let closed = unsafe { nix::libc::fcntl(1, nix::libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, Ordering::Relaxed);
}
