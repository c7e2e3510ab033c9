use clap::Parser;
use nix_buildkite_build::Args;
use std::process::ExitCode;

fn main() -> ExitCode {
    match nix_buildkite_build::run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nix-buildkite-build: error: {err}");
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
