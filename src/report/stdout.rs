//! Our stdout carries store paths and nothing else; a step captures it with `$(…)`.

use crate::built::Built;
use crate::error::{Error, Result};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;

/// The refusal for a stdout that was closed when we started: what we print would be lost.
pub fn closed() -> Error {
    Error::Io(
        "stdout is closed, so the store paths cannot be printed; \
         redirect it to /dev/null to discard them"
            .into(),
    )
}

/// Prints the store path of every output, one per line, in one write.
pub fn print_paths(built: &[Built]) -> Result<()> {
    let mut text = Vec::new();
    for output in built.iter().flat_map(|b| &b.outputs) {
        text.extend_from_slice(output.path.as_os_str().as_bytes());
        text.push(b'\n');
    }
    write(&text)
}

/// Prints `value`, JSON, on one line. After a cancel too: `--json` says what it stopped.
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut json = value.to_string().into_bytes();
    json.push(b'\n');
    write_out(&json)
}

/// The Nix command of a `--dry-run`, ended by a newline.
pub fn write_line(mut line: Vec<u8>) -> Result<()> {
    line.push(b'\n');
    write(&line)
}

pub fn write(text: &[u8]) -> Result<()> {
    // Asked to stop after Nix finished: the step is cancelled, so nothing is printed.
    if let Some(signal) = crate::process::signals::received() {
        return Err(Error::Cancelled(signal));
    }
    write_out(text)
}

fn write_out(text: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => Error::Io(
                "cannot print to stdout: it was closed (broken pipe); \
                 the build and its out-links are in place"
                    .into(),
            ),
            _ => Error::io("cannot print to stdout", e),
        })
}
