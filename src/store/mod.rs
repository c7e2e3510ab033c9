//! The Nix store, as far as we know it without asking Nix: what a store path looks like
//! (here), and what a `.drv` holds (`drv`).

pub mod drv;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The store directory: `NIX_STORE_DIR` if set (as Nix reads it), else `/nix/store`.
pub fn store_dir() -> PathBuf {
    match std::env::var_os("NIX_STORE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/nix/store"),
    }
}

/// Whether `path` names a top-level store object: `STORE/<32 base-32 chars>-<name>`.
pub fn is_store_path(store: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(store) else {
        return false;
    };
    let mut components = rest.components();
    let (Some(name), None) = (components.next(), components.next()) else {
        return false;
    };
    // `strip_prefix` works on components, so `rest` can still be the literal text after
    // a `/./` or `//` in `path`; a store path must be written exactly.
    if path.as_os_str().len() != store.as_os_str().len() + 1 + name.as_os_str().len() {
        return false;
    }
    is_store_name(name.as_os_str())
}

/// The length of a store path's hash part, before its `-`.
const HASH_LEN: usize = 32;

/// `HASH-NAME` → `NAME`; a file name too short to be a store path's, whole.
pub fn name_part(file_name: &OsStr) -> &OsStr {
    let bytes = file_name.as_bytes();
    OsStr::from_bytes(bytes.get(HASH_LEN + 1..).unwrap_or(bytes))
}

fn is_store_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > HASH_LEN + 1
        && bytes[..HASH_LEN].iter().all(|b| NIX_BASE32.contains(b))
        && bytes[HASH_LEN] == b'-'
        && bytes[HASH_LEN + 1..].iter().all(|b| is_name_char(*b))
        && bytes[HASH_LEN + 1] != b'.'
}

/// The alphabet of Nix's base-32 hashes (no e, o, t, u).
const NIX_BASE32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Characters Nix allows in the name part of a store path.
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+-._?=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "/nix/store";

    fn ok(path: &str) -> bool {
        is_store_path(Path::new(STORE), Path::new(path))
    }

    #[test]
    fn accepts_store_paths() {
        assert!(ok("/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi.drv"));
        assert!(ok(
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-a+b_c?=d-1.0"
        ));
    }

    #[test]
    fn rejects_everything_else() {
        for path in [
            "/nix/store",
            "/nix/store/",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi/bin",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yge-multi",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7y-multi",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-.hidden",
            "/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-with space",
            "/nix/store//fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi",
            "/nix/store/./fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi",
            "/nix/storex/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi",
            "nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi",
            "/tmp/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-multi",
        ] {
            assert!(!ok(path), "{path} accepted");
        }
    }
}
