//! The summary on stderr.

use super::{Summary, is_build, last_lines, lines};

impl Summary {
    /// The summary for stderr.
    pub fn text(&self, log_groups: bool) -> Vec<u8> {
        let mut out = match log_groups {
            true => format!("+++ {}\n", self.title()),
            false => format!("nix-buildkite-build: {}\n", self.title()),
        };
        for f in &self.failed {
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
                None if self.logs && is_build(&f.kind) && f.drv.is_some() => {
                    out += "  (no build log to show: Nix keeps none with keep-build-log = false)\n";
                }
                None => {}
            }
        }
        for (kind, names) in self.unexplained() {
            out += &format!("{}: {}\n", names.join(", "), kind.describe());
        }
        if !self.nix_said.is_empty() {
            out += &format!("  What Nix said ({}):\n", lines(self.nix_said.len()));
            for line in &self.nix_said {
                out += &format!("  > {line}\n");
            }
        }
        let built: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| t.outcome.is_ok())
            .map(|t| t.name.as_str())
            .collect();
        if !built.is_empty() {
            out += &format!("built all the same: {}\n", built.join(", "));
        }
        out.into_bytes()
    }
}
