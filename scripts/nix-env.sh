# Sourced by the scripts in this directory: makes sure Nix is here and configured to work
# offline. Installs Debian's nix-bin when nix-store is missing (needs root or sudo).

if ! command -v nix-store >/dev/null 2>&1; then
    echo "scripts: Nix is not installed; installing Debian's nix-bin" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nix-bin >/dev/null
fi

# No binary cache (on a machine without network each query costs seconds), and no build
# users: Debian's Nix runs single-user as root.
export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}substituters =
build-users-group ="
