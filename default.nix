# nix-buildkite-build, packaged; `passthru` carries the step-command generators from
# ./command.nix pointed at this package's binary. Callable by depot's readTree.
{ pkgs ? import <nixpkgs> { }, ... }:
let
  cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);

  # Only what `cargo build` reads, so editing tests or docs does not rebuild the package.
  src = builtins.path {
    name = "nix-buildkite-build-source";
    path = ./.;
    filter = path: _type:
      let
        relative = builtins.substring (builtins.stringLength (toString ./.) + 1)
          (builtins.stringLength path) path;
        top = builtins.head (builtins.split "/" relative);
      in
      builtins.elem top [ "Cargo.toml" "Cargo.lock" "src" ];
  };

  package = pkgs.rustPlatform.buildRustPackage {
    pname = cargoToml.package.name;
    inherit (cargoToml.package) version;
    inherit src;
    cargoLock.lockFile = ./Cargo.lock;

    # The tests need a writable Nix store, which a build sandbox does not have.
    doCheck = false;

    passthru = import ./command.nix "${package}/bin/nix-buildkite-build";

    meta = {
      description = cargoToml.package.description;
      mainProgram = "nix-buildkite-build";
    };
  };
in
package
