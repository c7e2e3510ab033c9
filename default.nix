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

    # Completions and the man page come from the clap definitions, via the binary itself.
    postInstall = ''
      bin=$out/bin/nix-buildkite-build
      mkdir -p $out/share/man/man1 $out/share/bash-completion/completions \
        $out/share/zsh/site-functions $out/share/fish/vendor_completions.d
      $bin --generate-man > $out/share/man/man1/nix-buildkite-build.1
      $bin --generate-completions bash > $out/share/bash-completion/completions/nix-buildkite-build
      $bin --generate-completions zsh > $out/share/zsh/site-functions/_nix-buildkite-build
      $bin --generate-completions fish > $out/share/fish/vendor_completions.d/nix-buildkite-build.fish
    '';

    passthru = import ./command.nix "${package}/bin/nix-buildkite-build";

    meta = {
      description = cargoToml.package.description;
      mainProgram = "nix-buildkite-build";
    };
  };
in
package
