//! `--exec`: replace this process with the program that was just built, as a step script
//! runs, so its exit status is the step's and signals reach it directly.

use crate::built::Built;
use crate::error::{Error, Result};
use crate::log;
use crate::process::signals;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the one program in `built`; returns only if it cannot be run.
pub fn exec(built: &[Built], args: &[OsString], log_groups: bool) -> Result<()> {
    let [target] = built else {
        return Err(Error::NotAProgram(format!(
            "--exec runs one program, but {} targets were built",
            built.len()
        )));
    };
    let [output] = &target.outputs[..] else {
        let names: Vec<&str> = target.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(Error::NotAProgram(format!(
            "--exec runs one program, but {} has outputs {}: choose one with --output",
            target.drv_path.display(),
            names.join(", ")
        )));
    };
    let program = program_in(&output.path)?;
    log::group(log_groups, &format!("Running {}", program.display()));
    // Once the step is cancelled the program must not start: from here a signal ends us
    // before exec, and one that came before is found now.
    signals::restore_defaults();
    if let Some(signal) = signals::received() {
        return Err(Error::Cancelled(signal));
    }
    let err = Command::new(&program).args(args).exec();
    Err(Error::NotAProgram(format!(
        "cannot run {}: {err}",
        program.display()
    )))
}

/// The program a result holds: the result itself if it is an executable file, or the one
/// executable in its `bin/`.
fn program_in(result: &Path) -> Result<PathBuf> {
    let refuse = |found: String| {
        Err(Error::NotAProgram(format!(
            "--exec needs an executable file or a directory with exactly one executable in \
             bin/, but {} {found}",
            result.display()
        )))
    };
    let meta = std::fs::metadata(result).map_err(|e| Error::io(result.display(), e))?;
    if meta.is_file() {
        return if is_executable(&meta) {
            Ok(result.to_path_buf())
        } else {
            refuse("is a file that is not executable".into())
        };
    }
    let bin = result.join("bin");
    let Ok(entries) = std::fs::read_dir(&bin) else {
        return refuse(format!("has no bin/ (it holds: {})", list(result)));
    };
    let mut programs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && is_executable(&m)))
        .collect();
    programs.sort();
    match &programs[..] {
        [program] => Ok(program.clone()),
        [] => refuse(format!(
            "has no executable in bin/ (it holds: {})",
            list(&bin)
        )),
        _ => refuse(format!(
            "has {} executables in bin/: {}",
            programs.len(),
            names(&programs)
        )),
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

/// The names in `dir`, for an error message.
fn list(dir: &Path) -> String {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    if entries.is_empty() {
        "nothing".into()
    } else {
        names(&entries)
    }
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
