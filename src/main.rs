use clap::Parser;
use nix_buildkite_build::Args;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match nix_buildkite_build::run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not `eprintln!`, which panics on a stderr whose reader went away, and would
            // turn the status into 101.
            let _ = writeln!(std::io::stderr(), "nix-buildkite-build: error: {err}");
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
