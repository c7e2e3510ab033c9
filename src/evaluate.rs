//! The fallback: the `.drv` is gone, so evaluate the attribute path and build it, in one
//! `nix-build` (one Nix process, so the fallback costs no more than Nix itself).
//!
//! The expression is `evaluate.nix` applied to data we write as Nix literals, so no
//! attribute name is ever parsed as code. It reports each evaluated derivation on a trace
//! line, which is how we learn the `.drv` and the outputs to verify without a second process.

use crate::attr::{AttrPath, nix_string};
use crate::built::{self, Built, Expected, Method, Printed};
use crate::drv::Output;
use crate::error::{Error, Result};
use crate::links;
use crate::nix::NixCommand;
use crate::request::Request;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

const PRELUDE: &[u8] = include_bytes!("evaluate.nix");

pub fn evaluate(request: &Request) -> Result<Vec<Built>> {
    if let Some(base) = &request.out_link {
        for index in 0..request.targets.len() {
            links::check(&request.store, &links::link_name(base, index, "out"))?;
        }
    }

    let mut command = NixCommand::new("nix-build");
    command.arg("-E").arg(expression(request)?);
    command.args(&request.root_args);
    match &request.out_link {
        Some(base) => command.arg("--out-link").arg(base),
        None => command.arg("--no-out-link"),
    };
    command.arg("--show-trace").watch_report();
    let finished = command.run(request.verbose)?;

    if !finished.status.success() {
        return Err(command.failed(finished.status));
    }
    let report = finished.report.ok_or_else(|| {
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
        parse_report(&report)?,
        Method::Evaluate,
    )
}

/// `PRELUDE { root = …; targets = [ … ]; }` as a function of the root's arguments.
fn expression(request: &Request) -> Result<OsString> {
    let mut expr = b"{ ... }@args: (\n".to_vec();
    expr.extend_from_slice(PRELUDE);
    expr.extend_from_slice(b") {\n  root = /. + ");
    expr.extend(nix_string(request.root.as_os_str().as_bytes()));
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
        expr.extend(nix_string(&AttrPath::render(attr_path)));
        expr.extend_from_slice(b"; drvPath = ");
        match &target.drv_path {
            Some(drv) => expr.extend(nix_string(drv.as_os_str().as_bytes())),
            None => expr.extend_from_slice(b"null"),
        }
        expr.extend_from_slice(b"; }");
    }
    expr.extend_from_slice(b"\n  ];\n} args\n");
    Ok(OsString::from_vec(expr))
}

/// Reads the report line: `[{"drvPath": …, "outputs": [{"name": …, "path": …}]}]`.
fn parse_report(report: &[u8]) -> Result<Vec<Expected>> {
    let bad = |why: &str| {
        Error::Unverified(format!(
            "nix-build reported what it evaluated in a form not understood ({why}); printing nothing"
        ))
    };
    let json: serde_json::Value = serde_json::from_slice(report).map_err(|_| bad("not JSON"))?;
    let targets = json.as_array().ok_or_else(|| bad("not a list"))?;
    targets
        .iter()
        .map(|target| {
            let drv_path = target["drvPath"]
                .as_str()
                .ok_or_else(|| bad("no drvPath"))?;
            let outputs = target["outputs"]
                .as_array()
                .ok_or_else(|| bad("no outputs"))?;
            let outputs = outputs
                .iter()
                .map(|output| {
                    let (Some(name), Some(path)) =
                        (output["name"].as_str(), output["path"].as_str())
                    else {
                        return Err(bad("an output lacks its name or path"));
                    };
                    Ok(Output {
                        name: name.to_owned(),
                        path: Some(PathBuf::from(path)),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Expected {
                drv_path: PathBuf::from(drv_path),
                outputs,
            })
        })
        .collect()
}
