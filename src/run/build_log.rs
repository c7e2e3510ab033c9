//! When Nix ended a build, from its build log. Nix says when a build starts (`building
//! '…'`), but its log does not say when one ends; its JSON log does not either: there a
//! build's activity stops only when the whole run does, or is interrupted (measured on 2.8:
//! a 2 s build in a 4 s run stopped at 4 s). But Nix writes each build's log to a file of its
//! own as the builder runs and closes it once the builder has exited, on every version from
//! 2.3 to 2.34, through a daemon too, whose log files anyone may read: the file's last
//! modification is the build's end (to the file system's clock tick, a few milliseconds).
//! Without a log file (`keep-build-log = false`) a build's end is not known.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// When the build log of `drv` was last written, which, once its build is over, is when
/// the build ended; `None` if there is no log.
pub fn closed(drv: &Path) -> Option<SystemTime> {
    let name = drv.file_name()?.as_bytes();
    let (dir, rest) = (name.get(..2)?, name.get(2..)?);
    let file = log_dir()
        .join("drvs")
        .join(std::ffi::OsStr::from_bytes(dir))
        .join(std::ffi::OsStr::from_bytes(rest));
    // Compressed (`compress-build-log`, the default), or not.
    let mut compressed = OsString::from(&file);
    compressed.push(".bz2");
    [PathBuf::from(compressed), file]
        .iter()
        .find_map(|f| std::fs::metadata(f).ok()?.modified().ok())
}

/// Nix's log directory: `NIX_LOG_DIR` if set (as Nix reads it), else `/nix/var/log/nix`.
fn log_dir() -> PathBuf {
    match std::env::var_os("NIX_LOG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/nix/var/log/nix"),
    }
}
