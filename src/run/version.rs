//! Which Nix runs, for what depends on it (how its log is read, how `nix copy` is called):
//! asked of `nix-store --version` once, and only when something needs it.

use crate::process::CommandLine;
use std::sync::OnceLock;

/// Nix's version as (major, minor), or `None` if `nix-store --version` did not say.
pub fn nix_version(verbose: bool) -> Option<(u32, u32)> {
    static VERSION: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let mut command = CommandLine::new("nix-store");
        command.arg("--version");
        let ran = command.run(verbose, || (), &mut |_| {}).ok()?;
        parse(&ran.stdout?)
    })
}

/// `nix-store (Nix) 2.8.0` → (2, 8).
fn parse(said: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(said).ok()?;
    let version = text.split_whitespace().last()?;
    let mut parts = version.split(['.', 'p', 'r', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_versions_words() {
        assert_eq!(parse(b"nix-store (Nix) 2.3.18\n"), Some((2, 3)));
        assert_eq!(parse(b"nix-store (Nix) 2.8.0\n"), Some((2, 8)));
        assert_eq!(parse(b"nix-store (Nix) 2.34.8\n"), Some((2, 34)));
        assert_eq!(
            parse(b"nix-store (Nix) 2.4pre20210802_47e96bb\n"),
            Some((2, 4))
        );
        assert_eq!(parse(b"garbage"), None);
    }
}
