# The shell commands a Buildkite step runs to build a target with nix-buildkite-build.
#
# Takes the binary to run: a store path ("${pkg}/bin/nix-buildkite-build"), or just
# "nix-buildkite-build" to find it on the agent's PATH. Uses builtins only, so depot can
# import it without nixpkgs.
bin:
let
  # One shell word: '…', with each ' written as '\''. Safe for any string, so attribute
  # names and paths reach the binary exactly as given.
  quote = word: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] word + "'";
  command = words: builtins.concatStringsSep " " (map quote words);

  targetFlags = { attrPath, drvPath, outLink, copyTo }:
    assert builtins.isList attrPath
      || throw "mkBuildCommand: attrPath must be a list of attribute names";
    # The pipeline must not depend on building every target, so the .drv goes in
    # without its string context (depot discards it too).
    [ "--drv-path" (builtins.unsafeDiscardStringContext (toString drvPath)) ]
    ++ builtins.concatMap (name: [ "--attr" name ]) attrPath
    ++ [ "--out-link" (toString outLink) ]
    # One store URI, or a list of them: where the outputs are copied once built.
    ++ builtins.concatMap (store: [ "--copy-to" (toString store) ])
      (if builtins.isList copyTo then copyTo else [ copyTo ]);
in
{
  # Builds the target; prints its store paths on stdout. A drop-in for depot's function
  # of the same name and signature.
  # `copyTo`: a store URI, or a list of them, to copy the outputs to (a binary cache that
  # other agents and developers substitute from).
  mkBuildCommand = { attrPath, drvPath, outLink ? "result", copyTo ? [ ] }:
    command ([ bin ] ++ targetFlags { inherit attrPath drvPath outLink copyTo; });

  # Builds the target and replaces itself with the program it built (an executable, or
  # the one executable in its bin/), passing `args`; the step's status is the program's.
  # Replaces depot's `script="$(…)"; exec "$script"` in extra steps.
  mkRunCommand = { attrPath, drvPath, outLink, args ? [ ], copyTo ? [ ] }:
    command ([ bin ] ++ targetFlags { inherit attrPath drvPath outLink copyTo; }
      ++ [ "--exec" "--" ] ++ map toString args);
}
