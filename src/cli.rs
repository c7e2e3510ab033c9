//! The command line. Help text comes from the doc comments here.

use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # A generated Buildkite step: realise the pipeline's .drv, or re-evaluate ops.besadii if
  # the garbage collector took it
  nix-buildkite-build --drv-path /nix/store/…-besadii.drv --attr ops --attr besadii

  # By hand, in Nix's own attribute syntax
  nix-buildkite-build -A 'ops.besadii' -o result-besadii";

/// Build one CI target: realise the .drv the pipeline recorded, or, if the garbage collector
/// deleted it, re-evaluate the target's attribute path and build that.
///
/// Prints the store path of every output on stdout, one per line, and nothing else; Nix's
/// log goes to stderr. Exits with Nix's own status when Nix fails.
#[derive(Debug, Parser)]
#[command(version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// The .drv to realise without evaluating anything
    #[arg(long, value_name = "DRV")]
    pub drv_path: Option<PathBuf>,

    /// One component of the attribute path, taken literally (repeat for each component)
    #[arg(long = "attr", value_name = "NAME", conflicts_with = "attr_path")]
    pub attr: Vec<OsString>,

    /// The attribute path in Nix syntax, as for nix-build -A (a.b."c.d")
    #[arg(short = 'A', long, value_name = "PATH")]
    pub attr_path: Option<OsString>,

    /// Where to link the result; other outputs get LINK-<output>
    #[arg(short, long, value_name = "LINK", default_value = "result")]
    pub out_link: PathBuf,

    /// Build without creating a link (and so without a GC root)
    #[arg(long, conflicts_with = "out_link")]
    pub no_out_link: bool,

    /// The expression root to re-evaluate against, as `import ROOT {}`
    #[arg(short, long, value_name = "ROOT", default_value = ".")]
    pub file: PathBuf,

    /// Pass NAME = EXPR to the root function
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    pub arg: Vec<OsString>,

    /// Pass NAME = "VALUE" to the root function
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    pub argstr: Vec<OsString>,

    /// Print each Nix command, shell-quoted, before running it
    #[arg(short, long)]
    pub verbose: bool,
}
