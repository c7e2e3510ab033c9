//! What the command line asks for, checked and made absolute before anything runs: the
//! targets (from the flags, or by label from a drvmap) and how to build and report them.

pub mod attr;
mod drvmap;
mod target;

pub use target::Target;

use crate::cli::Args;
use crate::error::{Error, Result};
use crate::{paths, store};
use attr::AttrPath;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What to do with the result.
#[derive(Debug)]
pub enum Form {
    /// Print the store paths, one per line.
    Paths,
    /// Print one JSON array describing every target.
    Json,
    /// Replace this process with the built program, with these arguments.
    Exec(Vec<OsString>),
}

#[derive(Debug)]
pub struct Request {
    pub targets: Vec<Target>,
    /// `--output`s in the order given; empty for every output.
    pub outputs: Vec<String>,
    /// Absolute and normalised as Nix normalises it; `None` for `--no-out-link`.
    pub out_link: Option<PathBuf>,
    /// The expression root, absolute.
    pub root: PathBuf,
    /// `--arg`/`--argstr` for the root function, as nix-build takes them.
    pub root_args: Vec<OsString>,
    /// Options for whichever Nix command builds (`--option`, `--max-jobs`, …).
    pub nix_options: Vec<OsString>,
    /// The `--option`s alone, for the Nix commands that do not build (`nix copy`).
    pub options: Vec<OsString>,
    /// The stores to copy the outputs to (`--copy-to`), and whether that must succeed.
    pub copy_to: Vec<OsString>,
    pub copy_required: bool,
    pub show_trace: bool,
    pub strict: bool,
    pub dry_run: bool,
    pub verbose: bool,
    pub log_groups: bool,
    /// How many lines of a failed build's log the summary shows.
    pub log_lines: usize,
    /// How many times Nix runs again after a transient failure.
    pub retries: u32,
    /// Where to write the JUnit report (`--junit`), absolute.
    pub junit: Option<PathBuf>,
    /// The `--context` of the Buildkite annotation made when Nix fails, under Buildkite.
    pub annotation: Option<OsString>,
    pub form: Form,
    pub store: PathBuf,
}

impl Request {
    pub fn from_args(args: Args) -> Result<Self> {
        let store = store::store_dir();
        let targets = match &args.drvmap {
            Some(file) => drvmap::targets(&store, file, &args.labels)?,
            None => vec![single_target(&store, &args)?],
        };
        if args.exec && targets.len() != 1 {
            return Err(Error::Usage(format!(
                "--exec runs one program, but {} targets were given",
                targets.len()
            )));
        }

        let pairs = |flag: &'static str, values: &[OsString]| {
            values
                .chunks(2)
                .flat_map(move |pair| std::iter::once(OsString::from(flag)).chain(pair.to_vec()))
                .collect::<Vec<_>>()
        };
        let mut root_args = pairs("--arg", &args.arg);
        root_args.extend(pairs("--argstr", &args.argstr));
        let options = pairs("--option", &args.option);
        let mut nix_options = options.clone();
        if let Some(jobs) = args.max_jobs {
            nix_options.extend(["--max-jobs".into(), jobs.into()]);
        }
        if let Some(cores) = args.cores {
            nix_options.extend(["--cores".into(), cores.into()]);
        }
        if args.keep_going {
            nix_options.push("--keep-going".into());
        }

        let mut outputs = Vec::new();
        for output in args.output {
            if !outputs.contains(&output) {
                outputs.push(output);
            }
        }
        let buildkite = std::env::var_os("BUILDKITE").is_some_and(|v| v == "true");
        Ok(Request {
            targets,
            outputs,
            out_link: if args.no_out_link {
                None
            } else {
                Some(paths::absolute(&args.out_link)?)
            },
            root: paths::absolute(&args.file)?,
            root_args,
            nix_options,
            options,
            copy_to: args.copy_to,
            copy_required: args.copy_required,
            show_trace: !args.no_show_trace,
            strict: args.strict,
            dry_run: args.dry_run,
            verbose: args.verbose,
            log_groups: args.log_groups || buildkite,
            log_lines: args.log_lines.into(),
            retries: args.retries,
            junit: args.junit.as_deref().map(report_file).transpose()?,
            annotation: buildkite.then(annotation_context),
            form: match (args.json, args.exec) {
                (true, _) => Form::Json,
                (false, true) => Form::Exec(args.exec_args),
                (false, false) => Form::Paths,
            },
            store,
        })
    }
}

/// The annotation's context: one per job, so that steps running at once each get their own
/// and a retried job replaces its own.
fn annotation_context() -> OsString {
    let mut context = OsString::from("nix-buildkite-build");
    if let Some(job) = std::env::var_os("BUILDKITE_JOB_ID").filter(|j| !j.is_empty()) {
        context.push("-");
        context.push(job);
    }
    context
}

/// `--junit`'s file, absolute, once it is known that a file can be written there: its
/// directory must exist and be writable, and it must not be a directory itself.
fn report_file(file: &Path) -> Result<PathBuf> {
    let file = paths::absolute(file)?;
    let bad = |why: String| Err(Error::Usage(format!("--junit {}: {why}", file.display())));
    let dir = file.parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return bad(format!("{} is not a directory", dir.display())),
        Err(e) => return bad(format!("its directory {}: {e}", dir.display())),
    }
    if std::fs::metadata(&file).is_ok_and(|meta| meta.is_dir()) {
        return bad("is a directory".into());
    }
    // It is written beside itself, then renamed over itself: the directory must be writable.
    if let Err(e) = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
        return bad(format!("cannot write in {}: {}", dir.display(), e.desc()));
    }
    Ok(file)
}

/// The target given by `--drv-path` and `--attr`/`-A`.
fn single_target(store: &Path, args: &Args) -> Result<Target> {
    let attr_path = match (&args.attr_path, args.attr.is_empty()) {
        (Some(text), _) => Some(AttrPath::parse_os(text).map_err(Error::Usage)?),
        (None, false) => Some(AttrPath::from_names(&args.attr)),
        (None, true) => None,
    };
    if let Some(drv) = &args.drv_path {
        target::check_drv_path(store, drv).map_err(|e| Error::Usage(format!("--drv-path {e}")))?;
    }
    if args.drv_path.is_none() && attr_path.is_none() {
        return Err(Error::Usage(
            "nothing to build: give --drv-path, an attribute path (--attr or -A), or both, \
             or --drvmap with labels"
                .into(),
        ));
    }
    Ok(Target {
        label: None,
        drv_path: args.drv_path.clone(),
        attr_path,
    })
}
