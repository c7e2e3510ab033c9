//! After Nix failed: what failed and why, for a person. Each derivation that failed of
//! itself, with its `.drv`, the kind of failure (`failure` reads it from Nix's messages),
//! the targets that needed it and the last lines of its build log; then each target that
//! failed for another reason. Shown on stderr, in a group that opens; under Buildkite also
//! as an annotation (`buildkite-agent annotate`); with `--json` as the array on stdout.

use crate::built::Method;
use crate::command::{NixCommand, Status};
use crate::drv::{self, Output};
use crate::error::{Error, Result};
use crate::failure::{Kind, Seen};
use crate::request::{Form, Request, Target};
use crate::{log, store};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A target as Nix was asked to build it; its `.drv` is `None` when evaluation failed first.
pub struct Attempted<'a> {
    pub target: &'a Target,
    pub drv: Option<PathBuf>,
}

/// What to do once Nix has failed with `status`: explain it on stderr, in an annotation and
/// in `--json`, then return the error that passes Nix's status on (or the cancel that came
/// meanwhile). `seen` is what Nix said.
pub fn nix_failed(
    request: &Request,
    command: &NixCommand,
    status: Status,
    seen: &Seen,
    attempted: Vec<Attempted>,
    method: Method,
) -> Error {
    log::expand_failed(request.log_groups);
    let nix_error = command.failed(status);
    let summary = match Summary::new(request, seen, attempted, method) {
        Ok(summary) => summary,
        Err(cancelled) => return cancelled,
    };
    log::raw(&summary.text(request.log_groups));
    match summary.publish(request) {
        Err(cancelled @ Error::Cancelled(_)) => cancelled,
        _ => nix_error,
    }
}

/// The attribute path of `attempted[index]` names no derivation (`error`, Nix having
/// succeeded): the one line of `error` is the summary on stderr, but the annotation and
/// `--json` say it too.
pub fn no_derivation(
    request: &Request,
    attempted: Vec<Attempted>,
    index: usize,
    error: Error,
) -> Error {
    let why = vec![error.to_string()];
    let targets = attempted
        .iter()
        .enumerate()
        .map(|(i, a)| {
            TargetOutcome::failed(
                a,
                if i == index {
                    Kind::MissingAttribute
                } else {
                    Kind::Cancelled
                },
                vec![],
            )
        })
        .collect();
    let summary = Summary {
        method: Method::Evaluate,
        failed: Vec::new(),
        targets,
        nix_said: why,
        logs: false,
    };
    match summary.publish(request) {
        Err(cancelled @ Error::Cancelled(_)) => cancelled,
        _ => error,
    }
}

/// At most this many failed derivations get their logs read, one `nix-store` each.
const MAX_LOGS: usize = 20;
/// Buildkite refuses an annotation over 1 MiB; logs are left out past this.
const ANNOTATION_LIMIT: usize = 512 << 10;

/// A derivation that failed of itself, not for a dependency.
struct FailedDrv {
    /// `None` where Nix did not say which (Nix 2.34's timeouts, several builds running).
    drv: Option<PathBuf>,
    kind: Kind,
    /// The targets that needed it, as a person names them.
    needed_by: Vec<String>,
    /// What Nix quoted with the failure besides the log (a hash mismatch's hashes).
    detail: Vec<String>,
    /// The last lines of its build log; `None` where there is none to show.
    log: Option<Vec<String>>,
}

impl FailedDrv {
    fn name(&self) -> String {
        match &self.drv {
            Some(drv) => drv_name(drv),
            None => "a build (Nix did not say which)".into(),
        }
    }
}

struct TargetOutcome {
    label: Option<String>,
    name: String,
    drv: Option<PathBuf>,
    /// Its outputs, if it was built all the same; else why not, and the failed derivations
    /// (indices into `Summary::failed`) that explain it.
    outcome: std::result::Result<Vec<Output>, (Kind, Vec<usize>)>,
}

impl TargetOutcome {
    fn failed(attempted: &Attempted, kind: Kind, causes: Vec<usize>) -> Self {
        TargetOutcome {
            label: attempted.target.label.clone(),
            name: attempted.target.describe(),
            drv: attempted.drv.clone(),
            outcome: Err((kind, causes)),
        }
    }
}

struct Summary {
    method: Method,
    failed: Vec<FailedDrv>,
    targets: Vec<TargetOutcome>,
    /// What Nix said, for targets no derivation explains (an evaluation error).
    nix_said: Vec<String>,
    /// Whether build logs were asked for (`--log-lines` is not 0).
    logs: bool,
}

impl Summary {
    fn new(
        request: &Request,
        seen: &Seen,
        attempted: Vec<Attempted>,
        method: Method,
    ) -> Result<Self> {
        // The builds that started, if a failure Nix named no derivation for needs placing.
        let mut drvs: Vec<&Path> = attempted.iter().filter_map(|a| a.drv.as_deref()).collect();
        if !seen.unnamed.is_empty() {
            drvs.extend(seen.started.iter().map(PathBuf::as_path));
        }
        let known = Known::read(request, drvs)?;
        let mut failed = failed_drvs(seen, &known);

        let transient = seen.transient().is_some();
        let below = failed_below(&attempted, &failed);
        let mut shown: HashSet<&Path> = HashSet::new();
        let mut targets: Vec<TargetOutcome> = Vec::with_capacity(attempted.len());
        for a in &attempted {
            // Targets that are one derivation are built once, and shown once, as on success.
            if let Some(drv) = &a.drv
                && !shown.insert(drv)
            {
                continue;
            }
            let outcome = match &a.drv {
                None if transient => Err((Kind::Transient, Vec::new())),
                None => Err((Kind::EvaluationError, Vec::new())),
                Some(drv) => outcome(drv, &failed, seen, &known, &below),
            };
            if let Err((_, causes)) = &outcome {
                let name = a.target.describe();
                for &i in causes {
                    // A target known only by its `.drv` is already named.
                    let drv = failed[i].drv.as_ref().map(|d| d.display().to_string());
                    if drv.as_ref() != Some(&name) {
                        failed[i].needed_by.push(name.clone());
                    }
                }
            }
            targets.push(TargetOutcome {
                label: a.target.label.clone(),
                name: a.target.describe(),
                drv: a.drv.clone(),
                outcome,
            });
        }

        if request.log_lines > 0 {
            read_logs(request, seen, &mut failed)?;
        }
        let unexplained = targets.iter().any(
            |t| matches!(&t.outcome, Err((kind, causes)) if causes.is_empty() && shows_nix(kind)),
        );
        // Nix failed, though every target is built (a transient failure after the builds).
        let nothing_failed = failed.is_empty() && targets.iter().all(|t| t.outcome.is_ok());
        let nix_said = match unexplained || nothing_failed {
            true => seen.excerpt(request.log_lines),
            false => Vec::new(),
        };
        Ok(Summary {
            method,
            failed,
            targets,
            nix_said,
            logs: request.log_lines > 0,
        })
    }

    /// The line that heads the summary.
    fn title(&self) -> String {
        if self.failed.is_empty() && self.failing_targets().next().is_none() {
            return "Nix failed, though every target is built".into();
        }
        let (count, what, names): (usize, &str, Vec<String>) = if self.failed.is_empty() {
            let names = self
                .failing_targets()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>();
            (names.len(), "target", names)
        } else {
            (
                self.failed.len(),
                "derivation",
                self.failed.iter().map(FailedDrv::name).collect(),
            )
        };
        let mut shown: Vec<String> = names.iter().take(3).cloned().collect();
        if names.len() > 3 {
            shown.push("…".into());
        }
        let plural = if count == 1 { "" } else { "s" };
        format!("{count} {what}{plural} failed: {}", shown.join(", "))
    }

    fn failing_targets(&self) -> impl Iterator<Item = &TargetOutcome> {
        self.targets.iter().filter(|t| t.outcome.is_err())
    }

    /// Targets whose failure no failed derivation explains, grouped by kind.
    fn unexplained(&self) -> Vec<(&Kind, Vec<&str>)> {
        let mut groups: Vec<(&Kind, Vec<&str>)> = Vec::new();
        for target in &self.targets {
            let Err((kind, causes)) = &target.outcome else {
                continue;
            };
            if !causes.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, names)) => names.push(&target.name),
                None => groups.push((kind, vec![&target.name])),
            }
        }
        groups
    }

    /// The summary for stderr.
    fn text(&self, log_groups: bool) -> Vec<u8> {
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

    /// The summary as Buildkite annotation Markdown: every name and path in a code span,
    /// every log in a fenced block no line of it can close, the rest escaped, so that no
    /// text from a build is read as Markdown or HTML.
    fn markdown(&self) -> String {
        let mut out = format!("**nix-buildkite-build: {}**\n", md_text(&self.title()));
        for f in &self.failed {
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
        for (kind, names) in self.unexplained() {
            let names: Vec<String> = names.iter().map(|n| md_code(n)).collect();
            out += &format!("\n{}: {}\n", names.join(", "), md_text(&kind.describe()));
        }
        if !self.nix_said.is_empty() {
            let block = format!(
                "\nWhat Nix said ({}):\n\n{}",
                lines(self.nix_said.len()),
                md_block(&self.nix_said)
            );
            if out.len() + block.len() <= ANNOTATION_LIMIT {
                out += &block;
            }
        }
        out
    }

    /// `--json`, as the array on stdout: each target's status, and for a failed one why.
    fn json(&self) -> Value {
        let path = |p: &Path| Value::from(p.to_string_lossy());
        let failed_drv = |i: usize| {
            let f = &self.failed[i];
            let mut object = Map::new();
            if let Some(drv) = &f.drv {
                object.insert("drvPath".into(), path(drv));
            }
            object.insert("name".into(), f.name().into());
            object.insert("kind".into(), f.kind.slug().into());
            object.insert("message".into(), f.kind.describe().into());
            if !f.detail.is_empty() {
                object.insert("detail".into(), f.detail.clone().into());
            }
            object.insert("log".into(), f.log.clone().into());
            Value::Object(object)
        };
        let targets = self.targets.iter().map(|t| {
            let mut object = Map::new();
            if let Some(label) = &t.label {
                object.insert("label".into(), label.as_str().into());
            }
            if let Some(drv) = &t.drv {
                object.insert("drvPath".into(), path(drv));
            }
            object.insert("method".into(), self.method.as_str().into());
            match &t.outcome {
                Ok(outputs) => {
                    object.insert("status".into(), "built".into());
                    let outputs = outputs
                        .iter()
                        .filter_map(|o| Some((o.name.clone(), path(o.path.as_ref()?))));
                    object.insert("outputs".into(), Value::Object(outputs.collect()));
                    object.insert("outLinks".into(), json!({}));
                }
                Err((kind, causes)) => {
                    object.insert("status".into(), "failed".into());
                    let mut failure = Map::new();
                    failure.insert("kind".into(), kind.slug().into());
                    failure.insert("message".into(), kind.describe().into());
                    let drvs: Vec<Value> = causes.iter().map(|&i| failed_drv(i)).collect();
                    failure.insert("derivations".into(), drvs.into());
                    if causes.is_empty() && shows_nix(kind) {
                        failure.insert("log".into(), self.nix_said.clone().into());
                    }
                    object.insert("failure".into(), Value::Object(failure));
                }
            }
            Value::Object(object)
        });
        Value::Array(targets.collect())
    }

    /// The annotation, under Buildkite, and `--json`. A `buildkite-agent` that is missing or
    /// fails changes nothing but a warning.
    fn publish(&self, request: &Request) -> Result<()> {
        if let Some(context) = &request.annotation {
            annotate(request, context, self.markdown())?;
        }
        if let Form::Json = request.form {
            let mut json = self.json().to_string().into_bytes();
            json.push(b'\n');
            if let Err(e) = crate::stdout::write(&json) {
                if let Error::Cancelled(_) = e {
                    return Err(e);
                }
                log::warn(&e.to_string());
            }
        }
        Ok(())
    }
}

/// The outputs of some derivations, and which of them Nix has: a failed build can leave an
/// invalid output in the store, so a file there is no proof.
struct Known<'a> {
    outputs: HashMap<&'a Path, Vec<Output>>,
    valid: HashSet<PathBuf>,
    /// The outputs asked for (`--output`); all if empty.
    wanted: &'a [String],
}

impl<'a> Known<'a> {
    fn read(request: &'a Request, drvs: Vec<&'a Path>) -> Result<Self> {
        let mut outputs = HashMap::new();
        for drv in drvs {
            if !outputs.contains_key(drv)
                && let Ok(Some(outs)) = drv::read_outputs(drv)
            {
                outputs.insert(drv, outs);
            }
        }
        let paths = outputs
            .values()
            .flat_map(|outs| outs.iter().filter_map(|o| o.path.as_deref()));
        let valid = valid_paths(request, paths.collect())?;
        Ok(Known {
            outputs,
            valid,
            wanted: &request.outputs,
        })
    }

    /// The outputs of `drv` asked for, if Nix has every one.
    fn built(&self, drv: &Path) -> Option<Vec<Output>> {
        let outs = drv::select(self.outputs.get(drv)?.clone(), self.wanted, drv).ok()?;
        let all = outs
            .iter()
            .all(|o| o.path.as_ref().is_some_and(|p| self.valid.contains(p)));
        all.then_some(outs)
    }

    /// The one derivation with an output named as `output` is, if only one has.
    fn named(&self, output: &Path) -> Option<PathBuf> {
        let name = store_name(output);
        let named: Vec<&Path> = self
            .outputs
            .iter()
            .filter(|(_, outs)| {
                outs.iter()
                    .any(|o| o.path.as_deref().map(store_name) == Some(name))
            })
            .map(|(drv, _)| *drv)
            .collect();
        match named[..] {
            [one] => Some(one.to_path_buf()),
            _ => None,
        }
    }
}

/// The derivations that failed of themselves, from what Nix said. One Nix named no
/// derivation for is placed if it can be: by the output Nix named (2.3's hash mismatch names
/// where the output would be, had it its wrong hash: a path with the output's name), else
/// as the one build that started and neither finished nor failed otherwise.
fn failed_drvs(seen: &Seen, known: &Known) -> Vec<FailedDrv> {
    let failed = |drv: Option<PathBuf>, kind: &Kind, quoted: &[String]| FailedDrv {
        drv,
        kind: kind.clone(),
        needed_by: Vec::new(),
        detail: match kind {
            Kind::HashMismatch => quoted.to_vec(),
            _ => Vec::new(),
        },
        log: None,
    };
    let mut all: Vec<FailedDrv> = seen
        .failed
        .iter()
        .filter(|f| f.kind != Kind::DependencyFailed)
        .map(|f| failed(Some(f.drv.clone()), &f.kind, &f.quoted))
        .collect();
    for unnamed in &seen.unnamed {
        let drv = match &unnamed.output {
            Some(output) => known.named(output),
            None => {
                let unexplained: Vec<&PathBuf> = seen
                    .started
                    .iter()
                    .filter(|d| {
                        !seen.failed.iter().any(|f| &f.drv == *d) && known.built(d).is_none()
                    })
                    .collect();
                match unexplained[..] {
                    [one] => Some(one.clone()),
                    _ => None,
                }
            }
        };
        let drv = drv.filter(|d| !all.iter().any(|f| f.drv.as_ref() == Some(d)));
        all.push(failed(drv, &unnamed.kind, &unnamed.quoted));
    }
    all
}

/// Why the target whose derivation is `drv` was not built, and the failed derivations that
/// explain it; or its outputs, if it was built all the same.
fn outcome(
    drv: &Path,
    failed: &[FailedDrv],
    seen: &Seen,
    known: &Known,
    below: &HashMap<PathBuf, Vec<usize>>,
) -> std::result::Result<Vec<Output>, (Kind, Vec<usize>)> {
    let which = |test: &dyn Fn(&FailedDrv) -> bool| -> Vec<usize> {
        (0..failed.len()).filter(|&i| test(&failed[i])).collect()
    };
    let own = which(&|f| f.drv.as_deref() == Some(drv));
    if let Some(&first) = own.first() {
        return Err((failed[first].kind.clone(), own));
    }
    if let Some(deps) = below.get(drv) {
        return Err((Kind::DependencyFailed, deps.clone()));
    }
    if let Some(outputs) = known.built(drv) {
        return Ok(outputs);
    }
    // Nix said a dependency failed, but not which (one it could not substitute).
    if seen.failed.iter().any(|f| f.drv == drv) {
        return Err((Kind::DependencyFailed, Vec::new()));
    }
    let unnamed = which(&|f| f.drv.is_none());
    if let Some(&first) = unnamed.first() {
        return Err((failed[first].kind.clone(), unnamed));
    }
    let kind = if seen.transient().is_some() {
        Kind::Transient
    } else if !failed.is_empty() {
        Kind::Cancelled
    } else {
        Kind::Unknown
    };
    Err((kind, Vec::new()))
}

/// Reads the build log of each failed derivation that has one, up to `MAX_LOGS`; without a
/// log file (`keep-build-log = false`), takes what Nix quoted of it, if anything.
fn read_logs(request: &Request, seen: &Seen, failed: &mut [FailedDrv]) -> Result<()> {
    let with_logs = failed
        .iter_mut()
        .filter(|f| is_build(&f.kind) && f.drv.is_some());
    for f in with_logs.take(MAX_LOGS) {
        let Some(drv) = &f.drv else { continue };
        f.log = match read_log(request, drv)? {
            Some(lines) => Some(lines),
            None => seen
                .failed
                .iter()
                .find(|s| &s.drv == drv && s.kind != Kind::HashMismatch)
                .map(|s| last(&s.quoted, request.log_lines))
                .filter(|lines| !lines.is_empty()),
        };
    }
    Ok(())
}

fn annotate(request: &Request, context: &std::ffi::OsStr, markdown: String) -> Result<()> {
    let mut command = NixCommand::new("buildkite-agent");
    command
        .args(["annotate", "--style", "error", "--context"])
        .arg(context)
        .stdin(markdown.into_bytes());
    // Its output is shown, on stderr: our stdout carries nothing but the result.
    let mut to_stderr = |out: &[u8]| {
        let _ = std::io::stderr().write_all(out);
    };
    match command.run_reading_stderr(request.verbose, &mut to_stderr) {
        Ok(finished) if finished.status.success() => {
            if let Some(out) = finished.stdout {
                to_stderr(&out);
            }
        }
        Ok(finished) => log::warn(&format!(
            "buildkite-agent annotate failed with {}; the summary is in the log only",
            finished.status
        )),
        Err(Error::Cancelled(signal)) => return Err(Error::Cancelled(signal)),
        // Not on PATH: not a Buildkite agent after all.
        Err(Error::NixMissing(_)) => {}
        Err(e) => log::warn(&format!("cannot annotate the build: {e}")),
    }
    Ok(())
}

/// The last `lines` lines of `drv`'s build log, or `None` if Nix has none.
fn read_log(request: &Request, drv: &Path) -> Result<Option<Vec<String>>> {
    let mut command = NixCommand::new("nix-store");
    command.arg("--read-log").arg(drv);
    match command.run_for_tail(request.verbose, request.log_lines) {
        Ok((status, lines)) if status.success() => Ok(Some(lines)),
        Err(cancelled @ Error::Cancelled(_)) => Err(cancelled),
        _ => Ok(None),
    }
}

/// Whether a target's failure of this kind, with no failed derivation to explain it, is
/// explained by what Nix said last.
fn shows_nix(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::EvaluationError
            | Kind::MissingAttribute
            | Kind::Transient
            | Kind::Unknown
            | Kind::DependencyFailed
    )
}

/// Whether the kind is of a build that ran, which has a log.
fn is_build(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::BuildFailed(_) | Kind::TimedOut | Kind::HashMismatch | Kind::NotDeterministic
    )
}

/// How many paths one `nix-store --check-validity` is given: about 90 KiB of command line,
/// well under the kernel's limit (a quarter of the stack limit, 2 MiB by default).
const VALIDITY_CHUNK: usize = 1000;

/// Which of `paths` are valid in the store, a `nix-store` per `VALIDITY_CHUNK`; none, with a
/// warning, if it cannot tell.
fn valid_paths(request: &Request, paths: Vec<&Path>) -> Result<HashSet<PathBuf>> {
    let mut valid = HashSet::new();
    for chunk in paths.chunks(VALIDITY_CHUNK) {
        let mut command = NixCommand::new("nix-store");
        command
            .args(["--check-validity", "--print-invalid"])
            .args(chunk);
        match command.run_reading_stderr(request.verbose, &mut |_| {}) {
            Ok(finished) if finished.status.success() => {
                let stdout = finished.stdout.unwrap_or_default();
                let invalid: HashSet<&[u8]> = stdout.split(|b| *b == b'\n').collect();
                valid.extend(
                    chunk
                        .iter()
                        .filter(|p| !invalid.contains(p.as_os_str().as_bytes()))
                        .map(|p| p.to_path_buf()),
                );
            }
            Err(cancelled @ Error::Cancelled(_)) => return Err(cancelled),
            _ => {
                log::warn(
                    "cannot tell which targets were built all the same: nix-store \
                     --check-validity failed",
                );
                return Ok(HashSet::new());
            }
        }
    }
    Ok(valid)
}

/// `STORE/HASH-NAME` → `NAME`.
fn store_name(path: &Path) -> &[u8] {
    store::name_part(path.file_name().unwrap_or_default()).as_bytes()
}

/// `STORE/HASH-NAME.drv` → `NAME`.
fn drv_name(drv: &Path) -> String {
    let name = store_name(drv);
    String::from_utf8_lossy(name.strip_suffix(b".drv").unwrap_or(name)).into_owned()
}

/// "The last line", "The last 25 lines".
fn last_lines(n: usize) -> String {
    match n {
        1 => "The last line".into(),
        n => format!("The last {n} lines"),
    }
}

fn lines(n: usize) -> String {
    match n {
        1 => "1 line".into(),
        n => format!("{n} lines"),
    }
}

fn last(lines: &[String], n: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// For each derivation a target needs (the targets too), the failed derivations it needs,
/// directly or not, as indices into `failed`, in order. One walk down from the targets that
/// did not fail of themselves, reading each `.drv` once, then one up from each failed
/// derivation: linear in the graph, however many targets share it.
fn failed_below(attempted: &[Attempted], failed: &[FailedDrv]) -> HashMap<PathBuf, Vec<usize>> {
    let failed_drvs: HashSet<&Path> = failed.iter().filter_map(|f| f.drv.as_deref()).collect();
    let mut below: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    if failed_drvs.is_empty() {
        return below;
    }
    let mut needed_by: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    let mut queue: Vec<PathBuf> = attempted
        .iter()
        .filter_map(|a| a.drv.clone())
        .filter(|drv| !failed_drvs.contains(drv.as_path()))
        .collect();
    let mut read: HashSet<PathBuf> = queue.iter().cloned().collect();
    while let Some(drv) = queue.pop() {
        for input in drv::read_input_drvs(&drv).unwrap_or_default() {
            needed_by
                .entry(input.clone())
                .or_default()
                .push(drv.clone());
            if read.insert(input.clone()) {
                queue.push(input);
            }
        }
    }
    for (i, drv) in failed.iter().enumerate() {
        let Some(drv) = &drv.drv else { continue };
        let mut marked: HashSet<&Path> = HashSet::new();
        let mut up = vec![drv.as_path()];
        while let Some(next) = up.pop() {
            for parent in needed_by.get(next).into_iter().flatten() {
                if marked.insert(parent) {
                    below.entry(parent.clone()).or_default().push(i);
                    up.push(parent);
                }
            }
        }
    }
    below
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

    #[test]
    fn names_a_derivation_by_its_name() {
        assert_eq!(
            drv_name(Path::new(
                "/nix/store/98r7a3nc957saavy3znrlfggxgjx6gdm-fails-t1.drv"
            )),
            "fails-t1"
        );
    }
}
