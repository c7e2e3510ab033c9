//! The summary on stderr of a failed or cancelled run: each derivation that failed of
//! itself, how, the targets that needed it and the last lines of its log; each target that
//! failed otherwise; after a cancel, what was building and for how long.

use super::results::{Results, drv_name, is_build, last_lines, lines};

pub fn summary(results: &Results, log_groups: bool) -> Vec<u8> {
    let mut out = match log_groups {
        true => format!("+++ {}\n", results.title()),
        false => format!("nix-buildkite-build: {}\n", results.title()),
    };
    for (build, names) in results.running() {
        out += &format!("{}: {}", drv_name(&build.drv), build.drv.display());
        if !names.is_empty() {
            out += &format!(", needed by {}", crate::log::some_of(&names));
        }
        out.push('\n');
    }
    for f in &results.failed {
        out += &format!("{}: {}\n", f.name(), f.kind.describe());
        let mut what = f
            .drv
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        if !f.needed_by.is_empty() {
            let sep = if what.is_empty() { "" } else { ", " };
            what += &format!("{sep}needed by {}", f.needed_by.join(", "));
        }
        if !what.is_empty() {
            out += &format!("  {what}\n");
        }
        for line in &f.detail {
            out += &format!("  {line}\n");
        }
        match &f.log {
            Some(lines) if lines.is_empty() => out += "  (its build log is empty)\n",
            Some(lines) => {
                out += &format!("  {} of its log:\n", last_lines(lines.len()));
                for line in lines {
                    out += &format!("  > {line}\n");
                }
            }
            None if results.logs && is_build(&f.kind) && f.drv.is_some() => {
                out += "  (no build log to show: Nix keeps none with keep-build-log = false)\n";
            }
            None => {}
        }
    }
    for (kind, names) in results.unexplained() {
        out += &format!("{}: {}\n", names.join(", "), kind.describe());
    }
    if !results.nix_said.is_empty() {
        out += &format!("  What Nix said ({}):\n", lines(results.nix_said.len()));
        for line in &results.nix_said {
            out += &format!("  > {line}\n");
        }
    }
    let cancelled = results.cancelled_targets();
    if !cancelled.is_empty() {
        out += &format!("not built: {}\n", cancelled.join(", "));
    }
    let built = results.built_all_the_same();
    if !built.is_empty() {
        out += &format!("built all the same: {}\n", built.join(", "));
    }
    out.into_bytes()
}
