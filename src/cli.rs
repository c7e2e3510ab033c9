//! The command line. Help text comes from the doc comments here.

use clap::{ArgAction, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # A generated Buildkite step: realise the pipeline's .drv, or re-evaluate
  # ops.besadii if the garbage collector took it
  nix-buildkite-build --drv-path /nix/store/…-besadii.drv \\
    --attr ops --attr besadii

  # Reproduce steps by their labels in the pipeline's drvmap, in one Nix run
  nix-buildkite-build --drvmap pipeline/drvmap.json //ops/besadii //tools/foo

  # Build a step script and run it with --prod, as an extra step does
  nix-buildkite-build --drv-path /nix/store/…-deploy.drv --exec -- --prod

  # By hand, in Nix's own attribute syntax, on a remote builder
  nix-buildkite-build -A ops.besadii --option builders 'ssh://big x86_64-linux'

  # A pipeline's targets, for Test Engine, pushed to a signed binary cache
  nix-buildkite-build --drvmap drvmap.json //ops/besadii //tools/foo \\
    --junit junit.xml --copy-to 's3://cache?secret-key=/etc/nix/ci.key'

When Nix fails, a summary on stderr names each derivation that failed, how
(build failed, timed out, hash mismatch, …), the targets that needed it and
the last lines of its log; with BUILDKITE=true also a Buildkite annotation
(buildkite-agent annotate), with --json a failure for each target, and with
--junit a failed test case. A cancel names what was building, and for how
long. --json and --junit give each build's time.

Exit status: 0 built; Nix's own status when Nix fails (1, 100 build failed,
101 timed out, 102 hash mismatch, 104 not deterministic; through a daemon 1
for all of them); 128+N when Nix died of signal N; 2 usage; 3 .drv gone and
nothing to re-evaluate; 4 out-link refused; 5 drift under --strict; 6 Nix's
report refused; 7 our own I/O; 8 --exec result is not one program; 9 an
output taken by a garbage collection as it was built, twice; 10 a copy that
--copy-required failed; 127 Nix not found. Cancelled by SIGINT, SIGTERM or
SIGHUP, it stops Nix and ends by the same signal.";

/// Build one CI target: realise the .drv the pipeline recorded, or, if the garbage collector
/// deleted it, re-evaluate the target's attribute path and build that.
///
/// Prints the store path of every output on stdout, one per line, and nothing else; Nix's
/// log goes to stderr. Exits with Nix's own status when Nix fails.
#[derive(Debug, Parser)]
// Values that are data (names, paths, expressions) may start with `-`: attribute names can,
// and generated commands must not break on them.
#[command(version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// The .drv to realise without evaluating anything
    #[arg(
        long,
        value_name = "DRV",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub drv_path: Option<PathBuf>,

    /// One component of the attribute path, taken literally (repeat for each component)
    #[arg(
        long = "attr",
        value_name = "NAME",
        allow_hyphen_values = true,
        conflicts_with = "attr_path",
        help_heading = "Target"
    )]
    pub attr: Vec<OsString>,

    /// The attribute path in Nix syntax, as for nix-build -A (a.b."c.d")
    #[arg(
        short = 'A',
        long,
        value_name = "PATH",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub attr_path: Option<OsString>,

    /// Take targets from a drvmap (`{ LABEL: { drvPath, attrPath } }`, as depot writes
    /// pipeline/drvmap.json) and build the LABELs given, in one Nix invocation
    #[arg(
        long,
        value_name = "FILE",
        requires = "labels",
        conflicts_with_all = ["drv_path", "attr", "attr_path"],
        help_heading = "Target"
    )]
    pub drvmap: Option<PathBuf>,

    /// Labels of targets in the --drvmap file
    #[arg(value_name = "LABEL", requires = "drvmap")]
    pub labels: Vec<String>,

    /// Build and print only this output (repeatable); default: every output
    #[arg(
        long,
        value_name = "NAME",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub output: Vec<String>,

    /// Where to link the result; other outputs get LINK-<output>, further targets LINK-2, …
    #[arg(
        short,
        long,
        value_name = "LINK",
        allow_hyphen_values = true,
        default_value = "result",
        help_heading = "Result"
    )]
    pub out_link: PathBuf,

    /// Build without creating a link (and so without a GC root)
    #[arg(long, conflicts_with = "out_link", help_heading = "Result")]
    pub no_out_link: bool,

    /// Print a JSON array instead of paths: per target drvPath, outputs, outLinks, method,
    /// status; also when Nix fails, then with why (failure)
    #[arg(long, help_heading = "Result")]
    pub json: bool,

    /// After the run, write a JUnit XML report to FILE, one test case per target, with
    /// failures, skipped targets and build times, for Buildkite Test Engine; written whole or
    /// not at all, also when Nix fails or the step is cancelled
    #[arg(long, value_name = "FILE", help_heading = "Result")]
    pub junit: Option<PathBuf>,

    /// After building, copy the closure of every output to this Nix store (repeatable): a
    /// binary cache (file://, http(s)://, s3://, signed with its ?secret-key=…), ssh://,
    /// ssh-ng://; a copy that fails is a warning and the status stays the build's
    #[arg(long, value_name = "STORE", help_heading = "Result")]
    pub copy_to: Vec<OsString>,

    /// Exit 10 if a --copy-to store did not get the outputs
    #[arg(long, requires = "copy_to", help_heading = "Result")]
    pub copy_required: bool,

    /// After the build, replace this process with the built program, passing ARGS
    #[arg(long, conflicts_with = "json", help_heading = "Result")]
    pub exec: bool,

    /// Arguments for the --exec program (after --)
    #[arg(last = true, value_name = "ARGS", requires = "exec")]
    pub exec_args: Vec<OsString>,

    /// The expression root to re-evaluate against, as `import ROOT {}`
    #[arg(
        short,
        long,
        value_name = "ROOT",
        allow_hyphen_values = true,
        default_value = ".",
        help_heading = "Re-evaluation"
    )]
    pub file: PathBuf,

    /// Pass NAME = EXPR to the root function
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"], allow_hyphen_values = true, help_heading = "Re-evaluation")]
    pub arg: Vec<OsString>,

    /// Pass NAME = "VALUE" to the root function
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true, help_heading = "Re-evaluation")]
    pub argstr: Vec<OsString>,

    /// Fail (exit 5) instead of warning when the re-evaluated .drv differs from --drv-path
    #[arg(long, help_heading = "Re-evaluation")]
    pub strict: bool,

    /// Show Nix's evaluation trace on errors (the default)
    #[arg(long, overrides_with = "no_show_trace", help_heading = "Re-evaluation")]
    pub show_trace: bool,

    /// Do not show Nix's evaluation trace on errors
    #[arg(long, help_heading = "Re-evaluation")]
    pub no_show_trace: bool,

    /// Set a Nix option for the Nix command that runs (repeatable), e.g. builders
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true, help_heading = "Nix")]
    pub option: Vec<OsString>,

    /// Nix's --max-jobs
    #[arg(short = 'j', long, value_name = "N", help_heading = "Nix")]
    pub max_jobs: Option<String>,

    /// Nix's --cores
    #[arg(long, value_name = "N", help_heading = "Nix")]
    pub cores: Option<String>,

    /// Nix's --keep-going: build what can be built when something fails
    #[arg(short, long, help_heading = "Nix")]
    pub keep_going: bool,

    /// Run Nix again, up to N times, after a failure another attempt may fix (a lost
    /// connection to a remote builder, a failed download, a busy store), pausing 1 s, 2 s,
    /// 4 s, …; never after a build that failed
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Nix")]
    pub retries: u32,

    /// Print the Nix command that would run, shell-quoted, and run nothing
    #[arg(long, help_heading = "Output")]
    pub dry_run: bool,

    /// Print each Nix command, shell-quoted, before running it
    #[arg(short, long, help_heading = "Output")]
    pub verbose: bool,

    /// Print Buildkite log group headers on stderr (default when BUILDKITE=true)
    #[arg(long, help_heading = "Output")]
    pub log_groups: bool,

    /// When Nix fails, show the last N lines of each failed build's log in the summary
    /// (0: none, at most 1000)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 25,
        value_parser = clap::value_parser!(u16).range(0..=crate::text::MAX_LINES_SHOWN as i64),
        help_heading = "Output"
    )]
    pub log_lines: u16,

    /// Print shell completions for SHELL and exit
    #[arg(long, value_name = "SHELL", hide = true, action = ArgAction::Set)]
    pub generate_completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit
    #[arg(long, hide = true)]
    pub generate_man: bool,
}

/// Shell completions for `shell`, generated from the definitions above.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "nix-buildkite-build", &mut out);
    out
}

/// The man page (roff), generated from the definitions above.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Args::command()).render(&mut out)?;
    Ok(out)
}
