//! What Rust's start-up does before `main` that we rely on, done without the rest of it.
//!
//! Our `main` is the C one (`#![no_main]` in main.rs). Rust's start-up also reads
//! /proc/self/maps to place a guard for the main thread's stack and installs a handler to
//! report stack overflows: a tenth or more of our process's CPU in a run that finds its
//! outputs built (scripts/bench; BENCHMARKS.md), for nothing this tool needs. What it needs
//! is here: the arguments, SIGPIPE ignored, and the standard descriptors open.

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStringExt;

/// Prepares the process as Rust's start-up would, and returns the command line.
///
/// # Safety
/// `argc` and `argv` must be what the C runtime passed to `main`.
pub unsafe fn start(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    // A reader that goes away must be an error we report (EPIPE), not a silent death; Rust
    // programs expect this, and std resets it to the default in the processes it starts.
    // SAFETY: setting a disposition to SIG_IGN runs no code of ours.
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    open_standard_descriptors();
    let count = usize::try_from(argc).unwrap_or(0);
    (0..count)
        .map(|i| {
            // SAFETY: the C runtime passes `argc` pointers to NUL-terminated strings.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect()
}

/// Puts /dev/null on a closed stdin, stdout or stderr. Otherwise the next file we open would
/// take that number, and our log, or Nix's, would be written into it. A closed stdout is
/// noted first: the store paths could not be printed (`crate::stdout::check_open`).
fn open_standard_descriptors() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads the flags of a descriptor, for any number.
        if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } != -1 {
            continue;
        }
        if fd == 1 {
            crate::stdout::closed_at_start();
        }
        // The lowest free number, which is `fd`, as those below it are open by now; not
        // close-on-exec, as Nix and an `--exec` program must have it too. Should this
        // fail, the descriptor stays closed, as it was given to us.
        let _ =
            nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()).map(IntoRawFd::into_raw_fd);
    }
}
