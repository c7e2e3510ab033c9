//! Whether a store already has some paths, asked cheaply where it can be, so that a step
//! with nothing new to push costs no Nix process: a binary cache on the file system (a
//! `stat` per path) or over plain HTTP (a `HEAD` per path). A binary cache holds a path
//! only once it holds what the path refers to: Nix copies references first and writes each
//! `.narinfo` last. Any other store, or any doubt, is Nix's to answer.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// How long the cache may take to answer for one path.
const PATIENCE: Duration = Duration::from_secs(2);

/// Whether the store at `uri` has every one of `paths`; `false` if it cannot tell.
pub fn has_all(uri: &OsStr, paths: &[&Path]) -> bool {
    let uri = uri.as_bytes();
    // Parameters (`?secret-key=…&compression=…`) are the store's, not the cache's place.
    let place = uri.split(|b| *b == b'?').next().unwrap_or_default();
    let names: Option<Vec<String>> = paths.iter().map(|p| narinfo(p)).collect();
    let Some(names) = names else {
        return false;
    };
    if let Some(dir) = place.strip_prefix(b"file://") {
        let dir = Path::new(OsStr::from_bytes(dir));
        return names.iter().all(|name| dir.join(name).is_file());
    }
    if let Some(rest) = place.strip_prefix(b"http://") {
        let Ok(rest) = std::str::from_utf8(rest) else {
            return false;
        };
        let (host, base) = rest.split_once('/').unwrap_or((rest, ""));
        let base = base.trim_end_matches('/');
        return names.iter().all(|name| {
            let path = match base {
                "" => format!("/{name}"),
                base => format!("/{base}/{name}"),
            };
            head_ok(host, &path).unwrap_or(false)
        });
    }
    false
}

/// `HASH.narinfo` for the store path `path`.
fn narinfo(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let hash = name.get(..32)?;
    Some(format!("{hash}.narinfo"))
}

/// Whether `HEAD http://HOST/PATH` answers 200; `None` if it cannot be asked.
fn head_ok(host: &str, path: &str) -> Option<bool> {
    let addr = if host.contains(':') {
        host.to_socket_addrs().ok()?.next()?
    } else {
        (host, 80).to_socket_addrs().ok()?.next()?
    };
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.set_write_timeout(Some(PATIENCE)).ok()?;
    let request = format!(
        "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: nix-buildkite-build\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut status = [0; 12];
    stream.read_exact(&mut status).ok()?;
    // `HTTP/1.1 200`
    Some(status.starts_with(b"HTTP/1.") && &status[8..12] == b" 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cache_has_what_its_narinfos_say() {
        let dir = std::env::temp_dir().join(format!("nbb-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Path::new("/nix/store/fkkvzwiiq5s659qjb4hsds7x98iy7yg8-a");
        let b = Path::new("/nix/store/z12rjmfmzq4aw7ljzyhxnzjass46zy5f-b");
        std::fs::write(dir.join("fkkvzwiiq5s659qjb4hsds7x98iy7yg8.narinfo"), "").unwrap();
        let uri = format!("file://{}?compression=none", dir.display());
        assert!(has_all(OsStr::new(&uri), &[a]));
        assert!(!has_all(OsStr::new(&uri), &[a, b]));
        assert!(!has_all(OsStr::new("ssh://host"), &[a]));
        assert!(!has_all(OsStr::new("http://127.0.0.1:1"), &[a]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
