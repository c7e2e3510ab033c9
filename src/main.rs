// Rust's own start-up is skipped: `nix_buildkite_build::startup` says why, and does what of
// it we need.
#![no_main]

use nix_buildkite_build::{cli, startup};
use std::ffi::{c_char, c_int};
use std::io::Write;

#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: these are the arguments the C runtime passed.
    let args = unsafe { startup::start(argc, argv) };
    match nix_buildkite_build::run(cli::parse(args)) {
        Ok(()) => 0,
        Err(err) => {
            // Not `eprintln!`, which panics on a stderr whose reader went away, and would
            // turn the status into 101.
            let _ = writeln!(std::io::stderr(), "nix-buildkite-build: error: {err}");
            err.exit_code()
        }
    }
}
