//! A garbage collection that runs while Nix finishes can delete an output Nix has just built
//! and linked: it listed the roots before the link was made, and through a daemon Nix's own
//! temporary roots do not always hold the output for it (measured through a daemon under a
//! collection in a loop: bare `nix-build` printed a path the collection then deleted in 2 of
//! 1,655 runs, ours in 1 of 1,467, and 1 in 287 under `tests/gc_stress.rs`'s heavier load;
//! NixOS/nix#6757). So before the outputs are checked and printed,
//! a collection that is running is told to keep them, as Nix itself tells it of a temporary
//! root: a store path per line on its socket, each acknowledged once the collection will
//! not delete it (or has finished deleting it, which the check that follows then sees).
//! Later collections find the out-links, which Nix has registered as roots by then.
//!
//! The socket exists from Nix 2.5; when no collection runs, or
//! with an older Nix, connecting fails and there is nothing to do. Best effort: whatever
//! goes wrong here, the check for the outputs still runs.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest a collection may take to answer for one path: it waits to answer while it
/// deletes that very path, which is quick.
const PATIENCE: Duration = Duration::from_secs(10);

/// The first of `paths` that is not in the store, once a collection that is running has
/// been told to keep them all.
pub fn taken<'a>(paths: impl Iterator<Item = &'a Path> + Clone) -> Option<&'a Path> {
    if let Ok(stream) = UnixStream::connect(socket()) {
        let _ = send(stream, paths.clone());
    }
    paths
        .into_iter()
        .find(|path| std::fs::symlink_metadata(path).is_err())
}

fn send<'a>(mut stream: UnixStream, paths: impl IntoIterator<Item = &'a Path>) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    for path in paths {
        let mut line = path.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        stream.write_all(&line)?;
        // One byte, "1", once the path is a root for the rest of the collection.
        stream.read_exact(&mut [0; 1])?;
    }
    Ok(())
}

/// Where a running collection listens: `gc-socket/socket` in Nix's state directory.
fn socket() -> PathBuf {
    let state = match std::env::var_os("NIX_STATE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/nix/var/nix"),
    };
    state.join("gc-socket/socket")
}
