# What nix-buildkite-build evaluates when a target's .drv is gone: select each target's
# attribute path from the root, report what was found on one trace line starting with
# reportTag (which nix-buildkite-build reads and keeps out of the log: report.rs), and
# return the outputs to build.
#
# It returns none (nix-build then exits 0 having built nothing, and nix-buildkite-build
# explains why from the report, with its own exit status) if an output asked for does not
# exist, if under `strict` a target no longer evaluates to the .drv the pipeline recorded,
# or if a file or directory is where an out-link must go: only now are the outputs known,
# and Nix would refuse that link only after building.
#
# Everything that varies arrives as data in the first argument, written as string literals;
# the second is the --arg/--argstr set for the root function.
{ root, targets, outputs ? null, strict ? false, outLink ? null, reportTag }:
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

  # A content-addressed output's path is only known once built.
  storePrefix = builtins.storeDir + "/";
  knownPath = path:
    if builtins.substring 0 (builtins.stringLength storePrefix) path == storePrefix
    then path else null;

  evaluate = target:
    let
      drv = select target;
      all = drv.outputs or [ "out" ];
      wanted = if outputs == null then all else outputs;
    in
    if (drv.type or null) != "derivation" then
      throw "nix-buildkite-build: ${target.shown} is not a derivation"
    else {
      inherit drv;
      report = {
        inherit (drv) drvPath;
        outputs = map (name: { inherit name; path = knownPath drv.${name}.outPath; }) all;
      };
      built = builtins.filter (name: builtins.elem name all) wanted;
      fine = builtins.all (name: builtins.elem name all) wanted
        && !(strict && target.drvPath != null && drv.drvPath != target.drvPath);
    };

  evaluated = map evaluate targets;

  # Targets that are one derivation are built and linked once, as Nix would.
  distinct = builtins.foldl'
    (kept: e:
      if builtins.any (k: k.report.drvPath == e.report.drvPath) kept then kept else kept ++ [ e ])
    [ ]
    evaluated;

  # The links nix-build makes: LINK, LINK-dev, LINK-2, LINK-2-dev, … Reported by index and
  # output name, not by path: a path need not be UTF-8, and JSON must be.
  entries = if outLink == null then { } else builtins.readDir (/. + dirOf outLink);
  linkName = index: name: baseNameOf outLink
    + (if index == 0 then "" else "-${toString (index + 1)}")
    + (if name == "out" then "" else "-${name}");
  inTheWay = index: name:
    builtins.elem (entries.${linkName index name} or null) [ "regular" "directory" "unknown" ];
  blocked = if outLink == null then [ ] else builtins.concatLists (builtins.genList
    (index: map (name: { inherit index name; })
      (builtins.filter (inTheWay index) (builtins.elemAt distinct index).built))
    (builtins.length distinct));

  report = { targets = map (e: e.report) evaluated; inherit blocked; };
in
builtins.trace "${reportTag} ${builtins.toJSON report}"
  (if builtins.all (e: e.fine) evaluated && blocked == [ ]
  then builtins.concatMap (e: map (name: e.drv.${name}) e.built) distinct
  else [ ])
