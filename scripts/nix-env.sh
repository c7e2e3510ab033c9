# Sourced by the scripts in this directory: makes sure Nix is here and configured to work
# offline, and defines what they share. Installs Debian's nix-bin when nix-store is missing
# (needs root or sudo).

# apt_install PACKAGE...: installs Debian packages, through sudo unless we are root.
apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# require COMMAND...: installs each command that is not on PATH, from the Debian package of
# the same name. `type -P` finds programs only, so `time` means GNU time, not bash's keyword.
require() {
    local missing=() command
    for command in "$@"; do
        type -P "$command" >/dev/null || missing+=("$command")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "scripts: installing ${missing[*]}" >&2
        apt_install "${missing[@]}"
    fi
}

# forget_run DIR GLOB: deletes DIR, the GC roots of the out-links that were in it, and the
# store paths named GLOB, which must be a run's own (its names carry a nonce). Never collects
# garbage store-wide.
forget_run() {
    local dir=$1 glob=$2 paths=()
    rm -rf "$dir"
    # The out-links were indirect GC roots: forget them now that they are gone, so that
    # what they rooted can be deleted. One find, not a readlink per root: a batch leaves
    # tens of thousands.
    find /nix/var/nix/gcroots/auto -maxdepth 1 -lname "$dir/*" -delete
    # A build that was interrupted can leave its lock file, which is no store path.
    find /nix/store -maxdepth 1 -name "$glob.lock" -delete
    mapfile -t paths < <(find /nix/store -maxdepth 1 -name "$glob" ! -name '*.lock')
    if [ ${#paths[@]} -gt 0 ]; then
        nix-store --delete "${paths[@]}" >/dev/null 2>&1 ||
            echo "scripts: could not delete some of ${paths[*]}" >&2
    fi
}

if ! command -v nix-store >/dev/null 2>&1; then
    echo "scripts: Nix is not installed; installing Debian's nix-bin" >&2
    apt_install nix-bin
fi

# No binary cache (on a machine without network each query costs seconds), and no build
# users: Debian's Nix runs single-user as root.
export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}substituters =
build-users-group ="
