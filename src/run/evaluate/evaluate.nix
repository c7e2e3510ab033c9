# What nix-buildkite-build evaluates when a target's .drv is gone: select each target's
# attribute path from the root, report what was found on one trace line starting with
# reportTag (which nix-buildkite-build reads and keeps out of the log: report.rs), and
# return the outputs to build.
#
# It returns none (nix-build then exits 0 having built nothing, and nix-buildkite-build
# explains why from the report, with its own exit status) if a target's attribute path
# names nothing or no derivation, if an output asked for does not exist, if under `strict`
# a target no longer evaluates to the .drv the pipeline recorded, or if a file or directory
# is where an out-link must go: only now are the outputs known, and Nix would refuse that
# link only after building. Reported, not thrown: a throw would show a trace through this
# file, some 70 lines under --show-trace, for a mistyped name. Errors in the user's code
# still throw, with their trace.
#
# Builtins of Nix 2.3 only.
#
# Everything that varies arrives as data in the first argument, written as string literals;
# the second is the --arg/--argstr set for the root function.
{ root, targets, outputs ? null, strict ? false, outLink ? null, reportTag }:
args:
let
  # The root called as nix-build calls it (Nix's autoCallFunction): a function taking an
  # attribute set gets the --arg/--argstr arguments it declares, or all of them if it has
  # `...` (Nix 2.4 and later; 2.3 passes only the declared ones even then); a set with
  # `__functor` is called through it; anything else is used as it is.
  autoCall = f:
    if builtins.isAttrs f && f ? __functor then autoCall (f.__functor f)
    else if !(builtins.isFunction f) || !(shows "<attrspat" f) then f
    else f (if passesAll f then args else builtins.intersectAttrs (builtins.functionArgs f) args);
  # functionArgs cannot tell `{ }:` from `x:`, nor whether there is `...`; the function's
  # XML form, which every Nix version prints the same, tells both.
  shows = text: f: builtins.length (builtins.split text (builtins.toXML f)) > 1;
  passesAll = f: builtins.compareVersions builtins.nixVersion "2.4" >= 0
    && shows "ellipsis=\"1\"" f;
  rootValue = autoCall (import root);

  # Follows a target's attribute path from the root: `{ value }` at its end, or where it
  # breaks off, `{ found; type; }`: how many names were found, and the type of what has no
  # attribute of the next name.
  select = target: builtins.foldl'
    (at: name:
      if !(at ? value) then at
      else if builtins.isAttrs at.value && builtins.hasAttr name at.value
      then { value = at.value.${name}; found = at.found + 1; }
      else { inherit (at) found; type = builtins.typeOf at.value; })
    { value = rootValue; found = 0; }
    target.attrPath;

  # A content-addressed output's path is only known once built.
  storePrefix = builtins.storeDir + "/";
  knownPath = path:
    if builtins.substring 0 (builtins.stringLength storePrefix) path == storePrefix
    then path else null;

  evaluate = target:
    let
      at = select target;
      drv = at.value;
      all = drv.outputs or [ "out" ];
      wanted = if outputs == null then all else outputs;
    in
    if !(at ? value) then
      { report = { missing = at.found; inherit (at) type; }; fine = false; }
    else if (drv.type or null) != "derivation" then
      { report = { notDerivation = builtins.typeOf drv; }; fine = false; }
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

  # Targets that are one derivation are built and linked once, as Nix would, where first
  # named; none are, should a target be no derivation. genericClosure keeps the first item
  # of each key, in order, finding keys in a set: a lookup per target, where scanning the
  # list kept so far would make thousands of targets cost millions of comparisons.
  distinct = if !builtins.all (e: e ? drv) evaluated then [ ] else map (item: item.e)
    (builtins.genericClosure {
      startSet = map (e: { key = e.report.drvPath; inherit e; }) evaluated;
      operator = _: [ ];
    });

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
