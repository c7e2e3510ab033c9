//! Reading Nix's stderr, line by line as it streams past, for the messages that say what
//! failed and how. Each Nix version words them its own way; the tests below hold each
//! version's words, copied from its source.

use super::{Failed, Kind, MAX_DRVS, MAX_LINES, Seen, Unnamed};
use crate::text::{LINE_SHOWN, printable, shorten};
use std::path::{Path, PathBuf};

/// How much of one line is read for patterns; a store path is far shorter.
const LINE_READ: usize = 4096;
/// How much of one line is kept to be shown: `LINE_SHOWN` characters of four bytes at most.
const LINE_KEPT: usize = 4 * LINE_SHOWN + 4;

/// Reads Nix's stderr, chunk by chunk, for what went wrong.
pub struct Scanner {
    /// `STORE/`, before every store path.
    store: String,
    line: Vec<u8>,
    seen: Seen,
    /// The `.drv` of Nix 2.29+'s "Cannot build '…'.", whose reason is on a later line.
    cannot_build: Option<PathBuf>,
    /// The last failure reported.
    last: Option<Quoted>,
    /// Lines Nix quotes with the last failure reported are being read.
    quoting: Option<(Quoted, Quote)>,
    /// The last line was one of Nix's messages, which an indented line may continue.
    in_message: bool,
    /// Nix said a connection broke (`unexpected end-of-file`), and has not since said that a
    /// build failed or started: a build it says next failed with exit code 1 failed for that.
    /// A remote build fails so when its builder goes away: the build hook exits 1, which Nix
    /// reports as the builder's failure.
    connection_lost: bool,
    /// A build started on a remote builder (`building '…' on '…'...`). Only then is an
    /// `unexpected end-of-file` taken as a lost connection: a local builder's log may say it.
    building_remotely: bool,
}

/// Which failure quoted lines belong to.
#[derive(Clone, Copy, Debug)]
enum Quoted {
    /// `seen.failed[index]`
    Failed(usize),
    /// `seen.unnamed[index]`
    Unnamed(usize),
}

#[derive(Clone, Copy, Debug)]
enum Quote {
    /// Nix 2.3's log tail: lines indented by two spaces.
    Indented,
    /// Nix 2.4+'s log tail: lines starting with `> `.
    Marked,
    /// A hash mismatch's `specified:`/`wanted:` and `got:` lines.
    Hashes,
}

impl Scanner {
    pub fn new(store: &Path) -> Self {
        Scanner {
            store: format!("{}/", store.display()),
            line: Vec::new(),
            seen: Seen::default(),
            cannot_build: None,
            last: None,
            quoting: None,
            in_message: false,
            connection_lost: false,
            building_remotely: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let whole = &rest[..end.min(LINE_READ)];
            if self.line.is_empty() {
                self.read_line(whole);
            } else {
                self.keep(whole);
                let line = std::mem::take(&mut self.line);
                self.read_line(&line);
                self.line = line;
                self.line.clear();
            }
            rest = &rest[end + 1..];
        }
        self.keep(rest);
    }

    /// The derivations Nix has started to build so far.
    pub fn started(&self) -> &[PathBuf] {
        &self.seen.started
    }

    pub fn finish(mut self) -> Seen {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.read_line(&line);
        }
        self.seen
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = LINE_READ.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn read_line(&mut self, raw: &[u8]) {
        let kept = &raw[..raw.len().min(LINE_KEPT)];
        // The oldest line's memory holds the newest: no allocation per line.
        let mut line = match self.seen.last_lines.len() {
            MAX_LINES => self.seen.last_lines.pop_front().unwrap_or_default(),
            _ => Vec::new(),
        };
        line.clear();
        line.extend_from_slice(kept);
        self.seen.last_lines.push_back(line);
        if self.seen.error_lines > 0 || raw.starts_with(b"error:") {
            if self.seen.first_error.len() < MAX_LINES {
                self.seen.first_error.push(kept.to_vec());
            }
            self.seen.error_lines += 1;
        }
        // Most of what passes is the builders' log, which only a glance is spent on: each
        // message read below names a path in quotes, starts with `error:` or continues one.
        let continues = self.in_message && raw.first().is_some_and(u8::is_ascii_whitespace);
        let glance = self.quoting.is_some()
            || self.cannot_build.is_some()
            || continues
            || raw.starts_with(b"error:")
            || raw.starts_with(b"Failed to find a machine")
            || raw.first() == Some(&0x1b)
            || memchr::memchr(b'\'', raw).is_some();
        self.in_message = glance;
        if !glance {
            return;
        }
        let text = printable(raw);
        if self.quoted(&text) {
            return;
        }
        // Nix 2.4+ indents the lines of a multi-line error under its `error: `.
        let line = text.trim_start();
        let line = line.strip_prefix("error: ").unwrap_or(line);
        // A warning is something Nix deals with itself (it retries a busy store, a
        // download), not why it failed.
        if line.starts_with("warning:") {
            return;
        }
        let drv = self.drv_in(line);
        if let Some(rest) = line.strip_prefix("building '") {
            // Nix says so once per build (`building '…'...`, or `… on 'ssh://…'...`).
            if let Some(drv) = self.drv_in(rest).filter(|_| rest.contains("'..."))
                && self.seen.started.len() < MAX_DRVS
            {
                self.seen.started.push(drv);
            }
            self.building_remotely |= rest.contains("' on '");
            self.connection_lost = false;
        } else if let Some(at) = line.find("builder for '") {
            // Also inside a remote build's "build of '…' on '…' failed: builder for …".
            let after = &line[at + "builder for '".len()..];
            let how = after.split_once("' ").map_or("", |(_, how)| how);
            let how = how.split(';').next().unwrap_or_default();
            if let Some(drv) = self.drv_in(after) {
                self.failed(drv, Kind::BuildFailed(how.trim_end_matches('.').into()));
                if line.ends_with("log lines:") {
                    self.quote(Quote::Indented);
                }
            }
        } else if line.starts_with("Cannot build '") {
            self.cannot_build = drv;
        } else if let Some(reason) = line.strip_prefix("Reason: ") {
            let reason = reason.trim_end_matches('.');
            if let Some(drv) = self.cannot_build.take() {
                let kind = if let Some(how) = reason.strip_prefix("builder ") {
                    Kind::BuildFailed(how.into())
                } else if reason.ends_with(" failed") {
                    Kind::DependencyFailed
                } else {
                    Kind::CannotBuild(reason.into())
                };
                self.failed(drv, kind);
            }
        } else if is_log_tail_header(line) {
            self.quote(Quote::Marked);
        } else if line.contains("dependencies couldn't be built")
            || (line.contains("dependencies of derivation '") && line.ends_with("failed to build"))
        {
            if let Some(drv) = drv {
                self.failed(drv, Kind::DependencyFailed);
            }
        } else if line.starts_with("building of '") && line.contains(" timed out after ") {
            if let Some(drv) = drv {
                self.failed(drv, Kind::TimedOut);
            }
        } else if is_bare_timeout(line) {
            self.unnamed(Kind::TimedOut, None);
        } else if let Some(what) = line.strip_prefix("hash mismatch in fixed-output derivation '") {
            match drv {
                Some(drv) => self.failed(drv, Kind::HashMismatch),
                None => {
                    let output = what.split('\'').next().map(PathBuf::from);
                    let output =
                        output.filter(|o| crate::store::is_store_path(&self.store_dir(), o));
                    self.unnamed(Kind::HashMismatch, output);
                }
            }
            self.quote(Quote::Hashes);
        } else if line.contains(" may not be deterministic") && line.starts_with("derivation '") {
            if let Some(drv) = drv {
                self.failed(drv, Kind::NotDeterministic);
            }
        } else if line.contains(" killed after writing more than ") {
            let kind = Kind::BuildFailed("wrote more log than max-build-log-size".into());
            match drv {
                Some(drv) => self.failed(drv, kind),
                None => self.unnamed(kind, None),
            }
        } else if is_transient(line) {
            self.connection_lost |=
                self.building_remotely && line.contains("unexpected end-of-file");
            if self.seen.transient.is_none() {
                self.seen.transient = Some(shorten(line));
            }
        }
    }

    /// Takes `text` as a line Nix quotes with its last error, if it is one.
    fn quoted(&mut self, text: &str) -> bool {
        let Some((index, quote)) = self.quoting else {
            return false;
        };
        let trimmed = text.trim_start();
        let line = match quote {
            Quote::Indented => text.strip_prefix("  "),
            Quote::Marked => trimmed
                .strip_prefix("> ")
                .or((trimmed == ">").then_some("")),
            Quote::Hashes => ["specified:", "wanted:", "got:"]
                .iter()
                .any(|p| trimmed.starts_with(p))
                .then_some(trimmed),
        };
        let Some(line) = line else {
            self.quoting = None;
            return false;
        };
        let quoted = match index {
            Quoted::Failed(i) => &mut self.seen.failed[i].quoted,
            Quoted::Unnamed(i) => &mut self.seen.unnamed[i].quoted,
        };
        if quoted.len() == MAX_LINES {
            quoted.remove(0);
        }
        quoted.push(shorten(line));
        true
    }

    /// Reads the lines that follow as quoted with the last failure reported.
    fn quote(&mut self, quote: Quote) {
        let quoted = match self.last {
            Some(Quoted::Failed(i)) => &mut self.seen.failed[i].quoted,
            Some(Quoted::Unnamed(i)) => &mut self.seen.unnamed[i].quoted,
            None => return,
        };
        quoted.clear();
        self.quoting = self.last.map(|last| (last, quote));
    }

    fn unnamed(&mut self, kind: Kind, output: Option<PathBuf>) {
        if self.seen.unnamed.len() < MAX_DRVS {
            self.seen.unnamed.push(Unnamed {
                kind,
                output,
                quoted: Vec::new(),
            });
            self.last = Some(Quoted::Unnamed(self.seen.unnamed.len() - 1));
        }
        self.quoting = None;
    }

    fn store_dir(&self) -> PathBuf {
        PathBuf::from(self.store.trim_end_matches('/'))
    }

    /// Records `drv` as failed. A derivation Nix reports twice keeps the first kind, unless
    /// that was "a dependency failed" and the second says what failed in the build itself.
    fn failed(&mut self, drv: PathBuf, kind: Kind) {
        let lost = std::mem::take(&mut self.connection_lost);
        let kind = match kind {
            Kind::BuildFailed(how) if lost && how == "failed with exit code 1" => Kind::Transient,
            kind => kind,
        };
        let failed = &mut self.seen.failed;
        match failed.iter().position(|f| f.drv == drv) {
            Some(known) => {
                if failed[known].kind == Kind::DependencyFailed {
                    failed[known].kind = kind;
                }
                self.last = Some(Quoted::Failed(known));
            }
            None if failed.len() < MAX_DRVS => {
                failed.push(Failed {
                    drv,
                    kind,
                    quoted: Vec::new(),
                });
                self.last = Some(Quoted::Failed(failed.len() - 1));
            }
            None => self.last = None,
        }
        // Later lines quote this failure, or none.
        self.quoting = None;
    }

    /// The first `.drv` store path in `text`.
    fn drv_in(&self, text: &str) -> Option<PathBuf> {
        let mut from = 0;
        while let Some(at) = text[from..].find(&self.store) {
            let start = from + at;
            let name = &text[start + self.store.len()..];
            let len = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || "+-._?=".contains(c)))
                .unwrap_or(name.len());
            let path = Path::new(&text[start..start + self.store.len() + len]);
            let store = Path::new(self.store.trim_end_matches('/'));
            if path.extension().is_some_and(|e| e == "drv")
                && crate::store::is_store_path(store, path)
            {
                return Some(path.to_path_buf());
            }
            from = start + self.store.len();
        }
        None
    }
}

/// `last 10 log lines:` (2.4–2.28) or `Last 10 log lines:` (2.29+), alone on its line.
fn is_log_tail_header(line: &str) -> bool {
    let Some(rest) = line
        .strip_prefix("last ")
        .or_else(|| line.strip_prefix("Last "))
    else {
        return false;
    };
    rest.strip_suffix(" log lines:")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Nix 2.34's timeout, which names no derivation: exactly `timed out after N seconds`.
fn is_bare_timeout(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("timed out after ") else {
        return false;
    };
    let rest = rest.strip_suffix(" of silence").unwrap_or(rest);
    rest.strip_suffix(" seconds")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a line of Nix's says it failed in a way another attempt may fix.
fn is_transient(line: &str) -> bool {
    const MARKERS: &[&str] = &[
        // A connection to a remote builder or the daemon that broke off.
        "unexpected end-of-file",
        "Nix daemon disconnected unexpectedly",
        // A remote builder, or the daemon, that cannot be reached.
        "cannot connect to '",
        "cannot connect to daemon at ",
        "cannot connect to socket at '",
        "Failed to find a machine for remote build!",
        // A substituter that failed to deliver.
        "some substitutes for the outputs of derivation '",
        // A busy or locked store.
        "database is locked",
    ];
    if MARKERS.iter().any(|m| line.contains(m)) {
        return true;
    }
    if line.contains("SQLite database '") && line.contains("' is busy") {
        return true;
    }
    // A transfer that failed for want of a network or a server, not for want of the file or
    // of the right to write it (Nix's own retry classes: a curl error, or HTTP 408, 429, 500,
    // 502, 503, 504): a download, or an upload to a binary cache (`nix copy`).
    let transfer = line
        .find("unable to download '")
        .or_else(|| line.find("unable to upload '"));
    if let Some(at) = transfer {
        let after = &line[at..];
        return match after.find("': HTTP error ") {
            Some(code) => {
                let code = &after[code + "': HTTP error ".len()..];
                ["408", "429", "500", "502", "503", "504"]
                    .iter()
                    .any(|c| code.starts_with(c))
            }
            None => true,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILS: &str = "/nix/store/98r7a3nc957saavy3znrlfggxgjx6gdm-fails-t1.drv";
    const DEP: &str = "/nix/store/vjlkby5srcad6lzcdsj700jlswf9hzqb-dep-t1.drv";
    const SLOW: &str = "/nix/store/j0yl85hp5pmbbhz1sbfwv1vgxy254dh9-slow-t1.drv";

    fn scan(text: &str) -> Seen {
        let mut scanner = Scanner::new(Path::new("/nix/store"));
        scanner.feed(
            text.replace("FAILS", FAILS)
                .replace("DEP", DEP)
                .replace("SLOW", SLOW)
                .as_bytes(),
        );
        scanner.finish()
    }

    fn failed(seen: &Seen) -> Vec<(&str, Kind)> {
        seen.failed
            .iter()
            .map(|f| (f.drv.to_str().unwrap(), f.kind.clone()))
            .collect()
    }

    fn exit_3() -> Kind {
        Kind::BuildFailed("failed with exit code 3".into())
    }

    #[test]
    fn nix_2_3() {
        // build.cc: printError of the BuildError, then the dependent's message, then
        // Error(worker.exitStatus(), "build of %s failed").
        let seen = scan(
            "building 'FAILS'...\n\
             line one\n\
             builder for 'FAILS' failed with exit code 3\n\
             cannot build derivation 'DEP': 1 dependencies couldn't be built\n\
             error: build of 'DEP' failed\n",
        );
        assert_eq!(
            failed(&seen),
            [(FAILS, exit_3()), (DEP, Kind::DependencyFailed)]
        );
        assert_eq!(seen.started, [PathBuf::from(FAILS)]);
        assert_eq!(seen.transient(), None);
        // Without verbose-build, the log tail follows on the same message, indented.
        let seen = scan(
            "builder for 'FAILS' failed with exit code 3; last 2 log lines:\n  line one\n  this build fails\nerror: build of 'FAILS' failed\n",
        );
        assert_eq!(failed(&seen), [(FAILS, exit_3())]);
        assert_eq!(seen.failed[0].quoted, ["line one", "this build fails"]);
        // Worker::waitForInput: "%1% timed out after %2% seconds", getName() being
        // "building of '%1%'".
        let seen =
            scan("building of 'SLOW' timed out after 1 seconds\nerror: build of 'SLOW' failed\n");
        assert_eq!(failed(&seen), [(SLOW, Kind::TimedOut)]);
        let seen = scan("building of 'SLOW' timed out after 2 seconds of silence\n");
        assert_eq!(failed(&seen), [(SLOW, Kind::TimedOut)]);
        let seen = scan(
            "hash mismatch in fixed-output derivation 'FAILS':\n  wanted: sha256:0000\n  got:    sha256:1111\nerror: build of 'FAILS' failed\n",
        );
        assert_eq!(failed(&seen), [(FAILS, Kind::HashMismatch)]);
        assert_eq!(
            seen.failed[0].quoted,
            ["wanted: sha256:0000", "got:    sha256:1111"]
        );
        let seen =
            scan("derivation 'FAILS' may not be deterministic: output '/nix/store/x' differs\n");
        assert_eq!(failed(&seen), [(FAILS, Kind::NotDeterministic)]);
        let seen =
            scan("building of 'FAILS' killed after writing more than 100 bytes of log output\n");
        assert_eq!(failed(&seen)[0].0, FAILS);
    }

    #[test]
    fn nix_2_8() {
        // As measured here: the log streams, the error has no tail.
        let seen = scan(
            "these 2 derivations will be built:\n  FAILS\n  DEP\n\
             building 'FAILS'...\n\
             line one\n\
             this build fails\n\
             error: builder for 'FAILS' failed with exit code 3\n\
             error: 1 dependencies of derivation 'DEP' failed to build\n",
        );
        assert_eq!(
            failed(&seen),
            [(FAILS, exit_3()), (DEP, Kind::DependencyFailed)]
        );
        let seen = scan("error: building of 'SLOW!*' from .drv file timed out after 1 seconds\n");
        assert_eq!(failed(&seen), [(SLOW, Kind::TimedOut)]);
        // Remote: build-remote.cc "build of '%s' on '%s' failed: %s".
        let seen = scan(
            "error: build of 'FAILS' on 'ssh://builder' failed: builder for 'FAILS' failed with exit code 3\n",
        );
        assert_eq!(failed(&seen), [(FAILS, exit_3())]);
        // derivation-goal.cc with a log tail: ";\nlast %d log lines:\n", each "> " line.
        let seen = scan(
            "error: builder for 'FAILS' failed with exit code 3;\n       last 2 log lines:\n       > line one\n       > this build fails\n",
        );
        assert_eq!(seen.failed[0].quoted, ["line one", "this build fails"]);
        let seen = scan(
            "error: hash mismatch in fixed-output derivation 'FAILS':\n         specified: sha256-AAAA\n            got:    sha256-BBBB\n",
        );
        assert_eq!(failed(&seen), [(FAILS, Kind::HashMismatch)]);
        assert_eq!(
            seen.failed[0].quoted,
            ["specified: sha256-AAAA", "got:    sha256-BBBB"]
        );
    }

    #[test]
    fn nix_2_26() {
        // Magenta() around the path, kept when stderr is a terminal; "^*" for "!*".
        let seen = scan(
            "error: builder for '\x1b[35;1mFAILS\x1b[0m' failed with exit code 3;\n       last 1 log lines:\n       > this build fails\n       For full logs, run:\n         \x1b[1mnix-store -l FAILS\x1b[0m\n\
             error: 1 dependencies of derivation '\x1b[35;1mDEP\x1b[0m' failed to build\n\
             error: building of 'SLOW^*' from .drv file timed out after 1 seconds\n",
        );
        assert_eq!(
            failed(&seen),
            [
                (FAILS, exit_3()),
                (DEP, Kind::DependencyFailed),
                (SLOW, Kind::TimedOut)
            ]
        );
        assert_eq!(seen.failed[0].quoted, ["this build fails"]);
    }

    #[test]
    fn nix_2_34() {
        // derivation-building-goal.cc: "Cannot build '%s'.\nReason: builder %s." with the
        // known outputs and "\nLast %d log lines:\n" after.
        let seen = scan(
            "building 'FAILS'...\n\
             error: Cannot build '\x1b[35;1mFAILS\x1b[0m'.\n       Reason: \x1b[31;1mbuilder failed with exit code 3\x1b[0m.\n       Output paths:\n         /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-fails-t1\n       Last 1 log lines:\n       > this build fails\n       For full logs, run:\n         nix-store -l FAILS\n\
             error: Cannot build 'DEP'.\n       Reason: 1 dependency failed.\n       Output paths:\n         /nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-dep-t1\n",
        );
        assert_eq!(
            failed(&seen),
            [(FAILS, exit_3()), (DEP, Kind::DependencyFailed)]
        );
        assert_eq!(seen.failed[0].quoted, ["this build fails"]);
        let seen = scan("error: Cannot build 'DEP'.\n       Reason: 2 dependencies failed.\n");
        assert_eq!(failed(&seen), [(DEP, Kind::DependencyFailed)]);
        let seen = scan("error: Cannot build 'DEP'.\n       Reason: local builds are disabled.\n");
        assert_eq!(
            failed(&seen),
            [(DEP, Kind::CannotBuild("local builds are disabled".into()))]
        );
        // goal.cc's TimedOut names no derivation.
        let seen =
            scan("building 'SLOW'...\nslow build started\nerror: timed out after 1 seconds\n");
        assert_eq!(seen.unnamed.len(), 1);
        assert_eq!(seen.unnamed[0].kind, Kind::TimedOut);
        assert_eq!(seen.started, [PathBuf::from(SLOW)]);
        assert_eq!(seen.transient(), None);
        // A build log line that merely says so is not Nix's timeout.
        let seen = scan("test timed out after 5 seconds\n");
        assert!(seen.unnamed.is_empty());
    }

    #[test]
    fn transient_failures_are_told_from_build_failures() {
        for line in [
            "error: unexpected end-of-file",
            "error: cannot connect to 'builder': ssh: connect to host builder port 22: Connection refused",
            "cannot build on 'ssh://builder': cannot connect to 'builder': Connection refused",
            "Failed to find a machine for remote build!",
            "error: Nix daemon disconnected unexpectedly (maybe it crashed?)",
            "error: cannot connect to daemon at '/nix/var/nix/daemon-socket/socket': Connection refused",
            "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': No such file or directory",
            "error: some substitutes for the outputs of derivation 'FAILS' failed (usually happens due to networking issues); try '--fallback' to build derivation from source ",
            "error: unable to download 'https://cache.example/nar/x.nar.xz': HTTP error 503",
            "error: unable to download 'https://cache.example/x.narinfo': Couldn't resolve host name (6)",
            "error: while uploading to HTTP binary cache at 'http://c': unable to upload 'http://c/nar/x.nar': Failure when receiving data from the peer (56)",
            "error: while uploading to HTTP binary cache at 'http://c': unable to upload 'http://c/x.narinfo': HTTP error 502 ('Bad Gateway')",
            "error: SQLite database '/nix/var/nix/db/db.sqlite' is busy",
        ] {
            let seen = scan(&format!("{line}\n"));
            assert!(seen.transient().is_some(), "{line}");
        }
        // A remote builder gone mid-build, as each version says it (measured): the build
        // hook's exit 1 is reported as the builder's.
        for text in [
            // 2.3
            "building 'DRV' on 'ssh://b'...\nerror: unexpected end-of-file\nConnection to \
             127.0.0.1 closed by remote host.\r\nbuilder for 'DRV' failed with exit code 1\n\
             error: build of 'DRV' failed\n",
            // 2.8 to 2.26
            "building 'DRV' on 'ssh://b'...\nConnection to 127.0.0.1 closed by remote host.\r\n\
             error: unexpected end-of-file\nerror: builder for 'DRV' failed with exit code 1;\n\
             \x20      last 1 log lines:\n       > slow build started\n",
            // 2.34
            "building 'DRV' on 'ssh://b'...\nerror: unexpected end-of-file\nerror: Cannot build \
             'DRV'.\n       Reason: builder failed with exit code 1.\n",
        ] {
            let drv = "/nix/store/00000000000000000000000000000000-x.drv";
            let seen = scan(&text.replace("DRV", drv));
            assert!(seen.transient().is_some(), "{text}");
            assert_eq!(failed(&seen), [(drv, Kind::Transient)], "{text}");
        }
        for text in [
            "error: unable to download 'https://example.org/x': HTTP error 404\n",
            "error: while uploading to HTTP binary cache at 'http://c': unable to upload 'http://c/x.narinfo': HTTP error 403 ('Forbidden')\n",
            // Nix retries these itself.
            "warning: SQLite database '/nix/var/nix/db/db.sqlite' is busy\n",
            "warning: error: unable to download 'https://c/x': HTTP error 503; retrying in 281 ms\n",
            // A build that failed is not retried, whatever else went wrong.
            "error: unexpected end-of-file\nerror: builder for 'FAILS' failed with exit code 3\n",
            // A local build whose own log says so, then fails as the hook would.
            "building 'FAILS'...\nerror: unexpected end-of-file\nerror: builder for 'FAILS' \
             failed with exit code 1\n",
            "error: build of 'FAILS' on 'ssh://b' failed: builder for 'FAILS' failed with exit code 3\nerror: unexpected end-of-file\n",
            "error: cannot connect to 'b'\nerror: timed out after 1 seconds\n",
            "error: attribute 'x' missing\n",
        ] {
            assert_eq!(scan(text).transient(), None, "{text}");
        }
    }

    #[test]
    fn odd_bytes_and_long_lines_are_shown_safely() {
        let mut scanner = Scanner::new(Path::new("/nix/store"));
        let mut text =
            b"bad \xff\xfe bytes \x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x07 cr\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 1 << 20));
        text.extend(format!(" builder for '{FAILS}' failed with exit code 3\n").as_bytes());
        // In pieces, one byte at a time in places: the result must not depend on chunking.
        for chunk in text.chunks(7) {
            scanner.feed(chunk);
        }
        let seen = scanner.finish();
        let lines = seen.excerpt(3);
        assert_eq!(
            lines[0],
            // The CR before the LF ends the line, as in ssh's messages.
            "bad \u{fffd}\u{fffd} bytes red link\u{fffd} cr"
        );
        assert_eq!(lines[1].chars().count(), LINE_SHOWN + 1);
        // Past what is read of a line, nothing is matched.
        assert!(seen.failed.is_empty());
    }

    #[test]
    fn an_error_is_shown_from_its_start_and_end() {
        // Nix 2.8 under --show-trace: the message first.
        let seen = scan("trace: x\nerror: it broke\n\n       … while evaluating\n\n       at a\n");
        assert_eq!(seen.excerpt(2), ["error: it broke", "…", "       at a"]);
        assert_eq!(seen.excerpt(10).len(), 5);
        assert_eq!(seen.excerpt(10)[0], "error: it broke");
        // Nix 2.3 under --show-trace: the message last.
        let seen =
            scan("error: while evaluating 'x' at a:\nwhile evaluating 'y' at b:\nit broke\n");
        assert_eq!(
            seen.excerpt(2),
            ["error: while evaluating 'x' at a:", "…", "it broke"]
        );
        // No error line: the last lines.
        assert_eq!(scan("a\nb\nc\n").excerpt(2), ["b", "c"]);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut scanner = Scanner::new(Path::new("/nix/store"));
        for i in 0..3 * MAX_LINES {
            scanner.feed(format!("line {i}\n").as_bytes());
        }
        let seen = scanner.finish();
        assert_eq!(seen.last_lines.len(), MAX_LINES);
        assert_eq!(&seen.excerpt(1)[0], &format!("line {}", 3 * MAX_LINES - 1));
    }
}
