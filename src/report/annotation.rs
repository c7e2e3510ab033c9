//! The summary as a Buildkite annotation: Markdown on `buildkite-agent annotate`'s stdin,
//! in which no text from a build can be read as Markdown or HTML. Style `error` when Nix
//! failed, `warning` for a cancel or a copy that failed.

use super::results::{Results, drv_name, last_lines, lines};
use crate::error::{Error, Result};
use crate::log;
use crate::process::CommandLine;
use crate::request::Request;
use std::io::Write;
use std::time::Duration;

/// Buildkite refuses an annotation over 1 MiB; logs are left out past this.
const ANNOTATION_LIMIT: usize = 512 << 10;
/// How long buildkite-agent may take; after a cancel, less: Buildkite kills the step about
/// 10 s after it asked it to stop.
const PATIENCE: Duration = Duration::from_secs(60);
const AFTER_CANCEL: Duration = Duration::from_secs(5);

/// The summary as Buildkite annotation Markdown: every name and path in a code span, every
/// log in a fenced block no line of it can close, the rest escaped, so that no text from a
/// build is read as Markdown or HTML.
pub fn markdown(results: &Results) -> String {
    let mut out = format!("**nix-buildkite-build: {}**\n", md_text(&results.title()));
    for (build, names) in results.running() {
        let names: Vec<String> = names.iter().map(|n| md_code(n)).collect();
        out += &format!(
            "\n**{}** was building: {}",
            md_code(&drv_name(&build.drv)),
            md_code(&build.drv.display().to_string())
        );
        if !names.is_empty() {
            out += &format!(", needed by {}", names.join(", "));
        }
        out.push('\n');
    }
    for f in &results.failed {
        let mut section = format!(
            "\n**{}**: {}  \n",
            md_code(&f.name()),
            md_text(&f.kind.describe())
        );
        let mut what: Vec<String> = f
            .drv
            .iter()
            .map(|d| md_code(&d.display().to_string()))
            .collect();
        if !f.needed_by.is_empty() {
            let names: Vec<String> = f.needed_by.iter().map(|n| md_code(n)).collect();
            what.push(format!("needed by {}", names.join(", ")));
        }
        if !what.is_empty() {
            section += &format!("{}\n", what.join(", "));
        }
        if !f.detail.is_empty() {
            section += &format!("\n{}", md_block(&f.detail));
        }
        let log = match &f.log {
            Some(lines) if lines.is_empty() => "\n(Its build log is empty.)\n".into(),
            Some(lines) => format!(
                "\n{} of its log:\n\n{}",
                last_lines(lines.len()),
                md_block(lines)
            ),
            None => String::new(),
        };
        if out.len() + section.len() + log.len() > ANNOTATION_LIMIT {
            section += "\n(log left out: the annotation is full; see the step's log)\n";
        } else {
            section += &log;
        }
        if out.len() + section.len() <= ANNOTATION_LIMIT {
            out += &section;
        }
    }
    for (kind, names) in results.unexplained() {
        let names: Vec<String> = names.iter().map(|n| md_code(n)).collect();
        out += &format!("\n{}: {}\n", names.join(", "), md_text(&kind.describe()));
    }
    let cancelled: Vec<String> = results
        .cancelled_targets()
        .iter()
        .map(|n| md_code(n))
        .collect();
    if !cancelled.is_empty() {
        out += &format!("\nNot built: {}\n", cancelled.join(", "));
    }
    for (store, why) in results.failed_copies() {
        out += &format!("\nNot copied to {}: {}\n", md_code(&store), md_text(why));
    }
    if !results.nix_said.is_empty() {
        let block = format!(
            "\nWhat Nix said ({}):\n\n{}",
            lines(results.nix_said.len()),
            md_block(&results.nix_said)
        );
        if out.len() + block.len() <= ANNOTATION_LIMIT {
            out += &block;
        }
    }
    out
}

/// Annotates the build with `results`; a `buildkite-agent` that is missing or fails changes
/// nothing but a warning. Fails only if the run is cancelled meanwhile.
pub fn annotate(request: &Request, context: &std::ffi::OsStr, results: &Results) -> Result<()> {
    // A failed build is an error; a cancel, or a copy that failed, a warning.
    let style = match results.cancelled.is_none() && results.failed_anything() {
        true => "error",
        false => "warning",
    };
    let mut command = CommandLine::new("buildkite-agent");
    command
        .args(["annotate", "--style", style, "--context"])
        .arg(context)
        .stdin(markdown(results).into_bytes());
    match crate::process::signals::received() {
        Some(_) => command.despite_cancel().time_limit(AFTER_CANCEL),
        None => command.time_limit(PATIENCE),
    };
    // Its output is shown, on stderr: our stdout carries nothing but the result.
    let mut to_stderr = |out: &[u8]| {
        let _ = std::io::stderr().write_all(out);
    };
    match command.run(request.verbose, || (), &mut to_stderr) {
        Ok(finished) if finished.status.success() => {
            if let Some(out) = finished.stdout {
                to_stderr(&out[..]);
            }
        }
        Ok(finished) => log::warn(&format!(
            "buildkite-agent annotate failed with {}; the summary is in the log only",
            finished.status
        )),
        Err(Error::Cancelled(signal)) => return Err(Error::Cancelled(signal)),
        // Not on PATH: not a Buildkite agent after all.
        Err(Error::ProgramMissing(_)) => {}
        Err(e) => log::warn(&format!("cannot annotate the build: {e}")),
    }
    Ok(())
}

/// Text that Markdown shows as it is: each ASCII punctuation character escaped.
fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as inline code: delimited by more backticks than any run of them in it.
fn md_code(text: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `lines` as a fenced code block whose fence is longer than any run of backticks in them,
/// so that no line can close it.
fn md_block(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .map(|l| longest_backtick_run(l))
        .max()
        .unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = format!("{fence}\n");
    for line in lines {
        out += line;
        out.push('\n');
    }
    out += &fence;
    out.push('\n');
    out
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cannot_be_escaped_from() {
        let lines = vec!["```".to_owned(), "````` <script>".to_owned()];
        let block = md_block(&lines);
        assert!(
            block.starts_with("``````\n") && block.ends_with("\n``````\n"),
            "{block}"
        );
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(
            md_text("<b>*x*</b> [l](u)"),
            "\\<b\\>\\*x\\*\\<\\/b\\> \\[l\\]\\(u\\)"
        );
    }
}
