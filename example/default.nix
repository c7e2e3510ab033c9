# A tiny monorepo for scripts/example: a root function returning targets by attribute path,
# as TVL's depot does. No nixpkgs needed.
{ greeting ? "hello" }:
let
  build = name: script: derivation {
    inherit name;
    builder = "/bin/sh";
    args = [ "-c" script ];
    system = builtins.currentSystem;
  };
in
{
  greeting = {
    # One target with two outputs: both are built, linked and printed on either path.
    multi = derivation {
      name = "greeting";
      builder = "/bin/sh";
      outputs = [ "out" "doc" ];
      args = [ "-c" "echo '${greeting}, world' > $out; echo 'prints a greeting' > $doc" ];
      system = builtins.currentSystem;
    };

    script = build "greet" ''
      echo '#!/bin/sh' > $out
      echo 'echo ${greeting} from a step script' >> $out
      /bin/chmod +x $out
    '';
  };
}
