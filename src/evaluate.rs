//! The fallback: the `.drv` is gone, so evaluate the attribute path and build it, in one
//! `nix-build` (one Nix process, so the fallback costs no more than Nix itself).
//!
//! The expression is `evaluate.nix` applied to data we write as Nix literals, so no
//! attribute name is ever parsed as code. It reports each evaluated derivation on a trace
//! line, which is how we learn the `.drv` and the outputs to verify without a second process.

use crate::attr::nix_string;
use crate::built::{self, Built, Expected, Method, Printed};
use crate::drv::{self, Output};
use crate::error::{Error, Result};
use crate::links;
use crate::log;
use crate::nix::NixCommand;
use crate::request::Request;
use crate::store;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

const PRELUDE: &[u8] = include_bytes!("evaluate.nix");

/// Evaluates and builds every target; `None` after a `--dry-run`.
pub fn evaluate(request: &Request) -> Result<Option<Vec<Built>>> {
    let mut command = NixCommand::new("nix-build");
    command.arg("-E").arg(expression(request)?);
    command.args(&request.root_args);
    match &request.out_link {
        Some(base) => command.arg("--out-link").arg(base),
        None => command.arg("--no-out-link"),
    };
    if request.show_trace {
        command.arg("--show-trace");
    }
    command.args(&request.nix_options).watch_report();
    if request.dry_run {
        crate::stdout::write_line(&command.display())?;
        return Ok(None);
    }

    let what: Vec<String> = request.targets.iter().map(|t| t.describe()).collect();
    log::group(
        request.log_groups,
        &format!("Re-evaluating {}", what.join(", ")),
    );
    let finished = command.run(request.verbose, || ())?;

    // Checked even when Nix failed, so that a drift warning explains a failed build.
    let expected = finished
        .report
        .as_deref()
        .map(|r| expected(request, r))
        .transpose();
    if !finished.status.success() {
        log::expand_failed(request.log_groups);
        return Err(command.failed(finished.status));
    }
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
    .map(Some)
}

/// What the report says each target is, checked against what was asked: outputs that do
/// not exist are an error, a `.drv` that differs from the recorded one a warning (or an
/// error under `--strict`), a file or directory where a link must go an error. Targets
/// that evaluate to the same `.drv` are built once.
fn expected(request: &Request, report: &[u8]) -> Result<Vec<Expected>> {
    let Report { targets, blocked } = parse_report(&request.store, report)?;
    if targets.len() != request.targets.len() {
        return Err(report_error("not one entry per target"));
    }
    let mut expected: Vec<Expected> = Vec::with_capacity(targets.len());
    for (target, (drv_path, outputs)) in request.targets.iter().zip(targets) {
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
        if !expected.iter().any(|e| e.drv_path == drv_path) {
            expected.push(Expected {
                label: target.label.clone(),
                drv_path,
                outputs,
            });
        }
    }
    if let (Some((index, output)), Some(base)) = (blocked.first(), &request.out_link) {
        let link = links::link_name(base, *index, output);
        let is_dir = std::fs::symlink_metadata(&link).is_ok_and(|meta| meta.is_dir());
        return Err(links::in_the_way(&link, is_dir));
    }
    Ok(expected)
}

/// `PRELUDE { root = …; targets = [ … ]; … }`, a function of the root's arguments.
fn expression(request: &Request) -> Result<OsString> {
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
        expr.extend_from_slice(b"; shown = ");
        expr.extend(string(attr_path.to_string().as_bytes()));
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
    Ok(OsString::from_vec(expr))
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

fn report_error(why: &str) -> Error {
    Error::Unverified(format!(
        "nix-build reported what it evaluated in a form not understood ({why}); printing nothing"
    ))
}

/// The report line, read.
struct Report {
    /// Per target: its `.drv` and all its outputs.
    targets: Vec<(PathBuf, Vec<Output>)>,
    /// Links (by target index and output) that a file or directory is in the way of.
    blocked: Vec<(usize, String)>,
}

/// Reads the report line: `{"targets": [{"drvPath": …, "outputs": [{"name": …, "path": …}]}],
/// "blocked": [{"index": …, "name": …}]}`. Every path in it must be a store path, or `null` for an output
/// only known once built: it decides what reaches stdout.
fn parse_report(store: &Path, report: &[u8]) -> Result<Report> {
    let store_path = |path: &serde_json::Value| {
        path.as_str()
            .map(PathBuf::from)
            .filter(|p| store::is_store_path(store, p))
            .ok_or_else(|| report_error("a path is missing or not in the store"))
    };
    let json: serde_json::Value =
        serde_json::from_slice(report).map_err(|_| report_error("not JSON"))?;
    let list = |value: &serde_json::Value, what: &str| {
        value
            .as_array()
            .cloned()
            .ok_or_else(|| report_error(&format!("no list of {what}")))
    };
    let targets = list(&json["targets"], "targets")?
        .iter()
        .map(|target| {
            let drv_path = store_path(&target["drvPath"])?;
            let outputs = list(&target["outputs"], "outputs")?
                .iter()
                .map(|output| {
                    let name = output["name"]
                        .as_str()
                        .ok_or_else(|| report_error("an output has no name"))?;
                    let path = match &output["path"] {
                        serde_json::Value::Null => None,
                        path => Some(store_path(path)?),
                    };
                    Ok(Output {
                        name: name.to_owned(),
                        path,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((drv_path, outputs))
        })
        .collect::<Result<Vec<_>>>()?;
    let blocked = list(&json["blocked"], "blocked links")?
        .iter()
        .map(|link| {
            Some((
                link["index"].as_u64()? as usize,
                link["name"].as_str()?.to_owned(),
            ))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| report_error("a blocked link lacks its index or name"))?;
    Ok(Report { targets, blocked })
}
