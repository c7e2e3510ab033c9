//! The fallback: the `.drv` is gone, so evaluate the attribute path and build it, in one
//! `nix-build` (one Nix process, so the fallback costs no more than Nix itself).
//!
//! The expression is `evaluate.nix` applied to data we write as Nix literals, so no
//! attribute name is ever parsed as code. It reports each evaluated derivation on one line
//! of Nix's stderr (`report`), which is how we learn the `.drv` and the outputs to verify.

mod report;

use super::{Attempted, Failure, Outcome, nix};
use crate::built::{self, Expected, Method, Printed, links};
use crate::error::{Error, Result};
use crate::log;
use crate::process::CommandLine;
use crate::request::attr::{AttrPath, nix_string};
use crate::request::{Request, Target};
use crate::store::drv;
use report::{Found, Report};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

const PRELUDE: &[u8] = include_bytes!("evaluate.nix");

/// Evaluates and builds every target.
pub fn evaluate(request: &Request) -> Result<Outcome<'_>> {
    evaluate_linking(request, true)
}

/// As `evaluate`. Which links Nix makes is known only once it has evaluated, and Nix
/// refuses, once it has built, to replace a link that leads into the store by a way it does
/// not see (a relative text, a symlinked directory): with `relink`, such links at the names
/// it makes are then written as the store paths they lead to, and Nix runs again, which
/// evaluates again and links.
fn evaluate_linking(request: &Request, relink: bool) -> Result<Outcome<'_>> {
    // The expression on stdin (`-`): it grows with the targets, and as one argument it
    // could not pass 128 KiB.
    let mut command = CommandLine::new("nix-build");
    command.stdout_limit_for(request.targets.len());
    command.arg("-").stdin(expression(request)?);
    command.args(&request.root_args);
    match &request.out_link {
        Some(base) => command.arg("--out-link").arg(base),
        None => command.arg("--no-out-link"),
    };
    if request.show_trace {
        command.arg("--show-trace");
    }
    command.args(&request.nix_options);
    if request.dry_run {
        return Ok(Outcome::DryRun {
            command: command.display(),
            outputs: None,
        });
    }

    let what: Vec<String> = request.targets.iter().map(|t| t.describe()).collect();
    log::group(
        request.log_groups,
        &format!("Re-evaluating {}", log::some_of(&what)),
    );
    let mut report = None;
    let mut finished = nix::retrying(&command, request.retries, || {
        let mut filter = report::Filter::new(std::io::stderr(), request.targets.len());
        let finished =
            nix::run_reading_stderr(&command, request, || (), &mut |log| filter.feed(log));
        report = filter.finish();
        finished
    })?;

    // Checked even when Nix failed, so that a drift warning explains a failed build.
    let expected = report
        .as_deref()
        .map(|report| expected(request, report))
        .transpose();
    // The report is ours, not Nix's to show.
    finished.seen.forget_lines(&report::marker());
    if let Some(signal) = finished.cancelled {
        return Ok(Outcome::Failed(Box::new(Failure::Cancelled {
            signal,
            seen: finished.seen,
            builds: finished.builds,
            attempted: attempted(request, report.as_deref()),
            method: Method::Evaluate,
        })));
    }
    let nothing_failed = finished.seen.failed.is_empty() && finished.seen.unnamed.is_empty();
    if !finished.status.success()
        && relink
        && nothing_failed
        && let Ok(Some(expected)) = &expected
    {
        let planned = links::planned(request.out_link.as_deref(), expected);
        if let Ok(relinks) = links::check(&request.store, &planned)
            && !relinks.is_empty()
        {
            relinks.apply()?;
            log::note(
                "an out-link that leads into the store, but not as Nix sees it, is now written \
                 as the store path it leads to; running Nix again to link",
            );
            return evaluate_linking(request, false);
        }
    }
    if !finished.status.success() {
        return Ok(Outcome::Failed(Box::new(Failure::Nix {
            error: command.failed(finished.status),
            seen: finished.seen,
            builds: finished.builds,
            attempted: attempted(request, report.as_deref()),
            method: Method::Evaluate,
        })));
    }
    let expected = match expected {
        Err(error @ Error::NoDerivation(_)) => {
            let attempted = attempted(request, report.as_deref());
            let index = attempted.iter().position(|a| a.drv.is_none()).unwrap_or(0);
            return Ok(Outcome::Failed(Box::new(Failure::NoDerivation {
                error,
                attempted,
                index,
            })));
        }
        expected => expected,
    };
    let expected = expected?.ok_or_else(|| {
        Error::Unverified(
            "nix-build succeeded without reporting what it evaluated; printing nothing".into(),
        )
    })?;
    built::verify(
        &command,
        finished.stdout,
        Printed::StorePaths,
        &request.store,
        request.out_link.as_deref(),
        expected,
        Method::Evaluate,
    )
    .map(|built| Outcome::Built {
        built,
        builds: finished.builds,
    })
}

/// Each target with the `.drv` the report says it evaluated to, if it says so.
fn attempted<'a>(request: &'a Request, report: Option<&[u8]>) -> Vec<Attempted<'a>> {
    let found = report.and_then(|r| report::parse(&request.store, r).ok());
    let found = found.map(|r| r.targets).unwrap_or_default();
    let mut found = found.into_iter();
    request
        .targets
        .iter()
        .map(|target| Attempted {
            target,
            drv: match found.next() {
                Some(Found::Derivation(drv, _)) => Some(drv),
                _ => None,
            },
        })
        .collect()
}

/// What the report says each target is, checked against what was asked: outputs that do
/// not exist are an error, a `.drv` that differs from the recorded one a warning (or an
/// error under `--strict`), a file or directory where a link must go an error. Targets
/// that evaluate to the same `.drv` are built once.
fn expected(request: &Request, report: &[u8]) -> Result<Vec<Expected>> {
    let Report { targets, blocked } = report::parse(&request.store, report)?;
    if targets.len() != request.targets.len() {
        return Err(report::error("not one entry per target"));
    }
    let mut expected: Vec<Expected> = Vec::with_capacity(targets.len());
    // Each .drv's place in `expected`.
    let mut seen: HashMap<PathBuf, usize> = HashMap::with_capacity(targets.len());
    for (index, (target, found)) in request.targets.iter().zip(targets).enumerate() {
        let (drv_path, outputs) = match found {
            Found::Derivation(drv_path, outputs) => (drv_path, outputs),
            Found::Missing { found, type_ } => return Err(missing(request, target, found, &type_)),
            Found::NotADerivation(type_) => {
                let why = format!("it is {}, not a derivation", a_type(&type_));
                return Err(cannot_build(target, &why));
            }
        };
        if let Some(recorded) = target.drv_path.as_ref().filter(|r| **r != drv_path) {
            let drift = format!(
                "{} now evaluates to {}, not to {} as recorded: the tree changed since \
                 the pipeline was generated",
                target.describe(),
                drv_path.display(),
                recorded.display()
            );
            if request.strict {
                return Err(Error::Drift(format!("{drift} (--strict: nothing built)")));
            }
            log::warn(&drift);
        }
        let outputs = drv::select(outputs, &request.outputs, &drv_path)?;
        match seen.get(&drv_path) {
            Some(&at) => expected[at].targets.push(index),
            None => {
                seen.insert(drv_path.clone(), expected.len());
                expected.push(Expected {
                    targets: vec![index],
                    drv_path,
                    outputs,
                });
            }
        }
    }
    if let (Some((index, output)), Some(base)) = (blocked.first(), &request.out_link) {
        let link = links::link_name(base, *index, output);
        let is_dir = std::fs::symlink_metadata(&link).is_ok_and(|meta| meta.is_dir());
        return Err(links::in_the_way(&link, is_dir));
    }
    Ok(expected)
}

/// The error for an attribute path that breaks off after `found` names, at a value of
/// `type_` that has no attribute of the next name.
fn missing(request: &Request, target: &Target, found: usize, type_: &str) -> Error {
    let names = target
        .attr_path
        .as_ref()
        .map_or(&[][..], |path| &path.0[..]);
    let Some(next) = names.get(found) else {
        return report::error("a missing attribute beyond the attribute path");
    };
    let found = &names[..found];
    let place = match found {
        [] => format!("the root ({})", request.root.display()),
        _ => AttrPath(found.to_vec()).to_string(),
    };
    let next = AttrPath(vec![next.clone()]);
    let why = match type_ {
        "set" => format!("{place} has no attribute {next}"),
        _ => format!("{place} is {}, which has no attributes", a_type(type_)),
    };
    cannot_build(target, &why)
}

/// One line: the target, and why it names no derivation. Nix's status for an evaluation
/// error, 1, goes with it.
fn cannot_build(target: &Target, why: &str) -> Error {
    Error::NoDerivation(format!("cannot build {}: {why}", target.describe()))
}

/// A type `builtins.typeOf` names, as a phrase.
fn a_type(type_: &str) -> String {
    match type_ {
        "set" => "an attribute set".into(),
        "int" => "an integer".into(),
        "bool" => "a Boolean".into(),
        "lambda" => "a function".into(),
        "null" => "null".into(),
        _ => format!("a {type_}"),
    }
}

/// `PRELUDE { root = …; targets = [ … ]; … }`, a function of the root's arguments.
fn expression(request: &Request) -> Result<Vec<u8>> {
    let string = |bytes: &[u8]| nix_string(bytes);
    let path_or_null = |path: Option<&PathBuf>| match path {
        Some(path) => string(path.as_os_str().as_bytes()),
        None => b"null".to_vec(),
    };
    let mut expr = b"let nixBuildkiteBuild = (\n".to_vec();
    expr.extend_from_slice(PRELUDE);
    expr.extend_from_slice(b") {\n  root = /. + ");
    expr.extend(string(request.root.as_os_str().as_bytes()));
    expr.extend_from_slice(b";\n  targets = [");
    for target in &request.targets {
        let Some(attr_path) = &target.attr_path else {
            return Err(Error::NoFallback(format!(
                "{} cannot be re-evaluated: no attribute path was given",
                target.describe()
            )));
        };
        expr.extend_from_slice(b"\n    { attrPath = ");
        expr.extend(attr_path.nix_list());
        expr.extend_from_slice(b"; drvPath = ");
        expr.extend(path_or_null(target.drv_path.as_ref()));
        expr.extend_from_slice(b"; }");
    }
    expr.extend_from_slice(b"\n  ];\n  outputs = ");
    if request.outputs.is_empty() {
        expr.extend_from_slice(b"null");
    } else {
        expr.push(b'[');
        for output in &request.outputs {
            expr.push(b' ');
            expr.extend(string(output.as_bytes()));
        }
        expr.extend_from_slice(b" ]");
    }
    expr.extend_from_slice(b";\n  strict = ");
    expr.extend_from_slice(if request.strict { b"true" } else { b"false" });
    expr.extend_from_slice(b";\n  outLink = ");
    expr.extend(path_or_null(request.out_link.as_ref()));
    expr.extend_from_slice(b";\n  reportTag = ");
    expr.extend(string(report::TAG.as_bytes()));
    expr.extend_from_slice(b";\n};\nin { ");
    // Nix 2.3 passes a function only the --arg/--argstr arguments it declares by name, even
    // when it has `...` (2.4 and later pass all): so the wrapper declares each one that can
    // be declared. The prelude is bound outside their scope, where no argument can shadow
    // `builtins` or anything else it uses.
    for name in declarable(&request.root_args) {
        expr.extend_from_slice(name);
        expr.extend_from_slice(b" ? null, ");
    }
    expr.extend_from_slice(
        b"... }@nixBuildkiteBuildArgs: nixBuildkiteBuild nixBuildkiteBuildArgs\n",
    );
    Ok(expr)
}

/// The names of the `--arg`/`--argstr` arguments (`root_args` is `FLAG NAME VALUE`…) that a
/// function can declare, once each: Nix identifiers, but not keywords nor the wrapper's own
/// names. No function can declare the others, so Nix 2.3 passes them to none, the root
/// included.
fn declarable(root_args: &[OsString]) -> Vec<&[u8]> {
    const RESERVED: &[&[u8]] = &[
        b"if",
        b"then",
        b"else",
        b"assert",
        b"with",
        b"let",
        b"in",
        b"rec",
        b"inherit",
        b"or",
        b"__curPos",
        b"nixBuildkiteBuild",
        b"nixBuildkiteBuildArgs",
    ];
    let identifier = |name: &[u8]| {
        name.first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"_'-".contains(b))
    };
    let mut names: Vec<&[u8]> = Vec::new();
    for name in root_args.chunks(3).filter_map(|arg| arg.get(1)) {
        let name = name.as_bytes();
        if identifier(name) && !RESERVED.contains(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
