# What nix-buildkite-build evaluates when a target's .drv is gone: select each target's
# attribute path from the root, report what was found on one trace line (which
# nix-buildkite-build reads and keeps out of the log), and return the outputs to build:
# none if an output asked for does not exist, or if under `strict` a target no longer
# evaluates to the .drv the pipeline recorded. nix-build then exits 0 having built nothing,
# and nix-buildkite-build explains why from the report, with its own exit status.
#
# Everything that varies arrives as data in the first argument, written as string literals;
# the second is the --arg/--argstr set for the root function.
{ root, targets, outputs ? null, strict ? false }:
args:
let
  # As nix-build does: call the root with the arguments if it is a function.
  imported = import root;
  rootValue = if builtins.isFunction imported then imported args else imported;

  select = target:
    builtins.foldl'
      (value: name: value.${name} or (throw
        "nix-buildkite-build: ${target.shown} does not exist (no attribute '${name}')"))
      rootValue
      target.attrPath;

  evaluate = target:
    let
      drv = select target;
      all = drv.outputs or [ "out" ];
      wanted = if outputs == null then all else outputs;
    in
    if (drv.type or null) != "derivation" then
      throw "nix-buildkite-build: ${target.shown} is not a derivation"
    else {
      report = {
        inherit (drv) drvPath;
        outputs = map (name: { inherit name; path = drv.${name}.outPath; }) all;
      };
      build = map (name: drv.${name}) (builtins.filter (name: builtins.elem name all) wanted);
      buildable = builtins.all (name: builtins.elem name all) wanted
        && !(strict && target.drvPath != null && drv.drvPath != target.drvPath);
    };

  evaluated = map evaluate targets;
in
builtins.trace "@nix-buildkite-build-report ${builtins.toJSON (map (e: e.report) evaluated)}"
  (if builtins.all (e: e.buildable) evaluated
  then builtins.concatMap (e: e.build) evaluated
  else [ ])
