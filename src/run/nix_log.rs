//! Nix's log as it arrives. Plain, it passes through untouched. When build times are wanted
//! (`--json`, `--junit`) on a Nix that can tell them (2.4 and later), Nix writes its log as
//! JSON (`--log-format internal-json`), which is turned back here into the lines Nix would
//! have printed, while the end of each build is noted.
//!
//! Nix says when a build starts (`building '…'`), but not when it ends: its build activity
//! stops only when the whole run does, or is interrupted (measured on 2.8: a 2 s build in a
//! 4 s run stopped at 4 s). What marks the end, whether the build succeeded or failed, is
//! one debug message, "builder process for '…' finished" (a remote build on 2.34: "build
//! hook for '…' finished"), which Nix writes as the builder exits, and so only at `-vvv`;
//! rendered, messages keep to Nix's usual verbosity. A build without one had not ended.

use crate::store;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How Nix writes its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// As text, for a person: passed through as it is.
    Plain,
    /// As JSON (Nix 2.4 and later), from which build times are read.
    Json,
}

impl Format {
    /// What Nix is given for this format.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Format::Plain => &[],
            Format::Json => &["--log-format", "internal-json", "-vvv"],
        }
    }
}

/// Nix's default verbosity (`lvlInfo`): messages above it are what `-vvv` added.
const SHOWN_LEVEL: u64 = 3;
/// Nix's result types for a build's log line and a post-build hook's.
const BUILD_LOG_LINE: u64 = 101;
const POST_BUILD_LOG_LINE: u64 = 107;

/// Turns Nix's log into the lines Nix would print, noting when each build ended.
pub struct NixLog {
    format: Format,
    /// The JSON line being read, held until it is whole; at most `cap` bytes.
    line: Vec<u8>,
    cap: usize,
    /// Bytes past the cap are passed on as they are, up to the line's end.
    overlong: bool,
    ended: HashMap<PathBuf, Instant>,
}

impl NixLog {
    /// A reader for a log in `format`, holding JSON lines of up to `cap` bytes (a longer
    /// one passes through as it is).
    pub fn new(format: Format, cap: usize) -> Self {
        NixLog {
            format,
            line: Vec::new(),
            cap,
            overlong: false,
            ended: HashMap::new(),
        }
    }

    /// Reads `chunk`, handing what Nix would have printed to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.format == Format::Plain {
            return out(chunk);
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest);
            let (part, after) = match end {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            if self.overlong {
                out(part);
            } else if self.line.len() + part.len() > self.cap {
                self.overlong = true;
                out(&std::mem::take(&mut self.line));
                out(part);
            } else {
                self.line.extend_from_slice(part);
            }
            if end.is_some() {
                if self.overlong {
                    out(b"\n");
                    self.overlong = false;
                } else {
                    let line = std::mem::take(&mut self.line);
                    self.line_ended(&line, out);
                    self.line = line;
                    self.line.clear();
                }
            }
            rest = after;
        }
    }

    /// When each build Nix said ended did so.
    pub fn finish(mut self, out: &mut dyn FnMut(&[u8])) -> HashMap<PathBuf, Instant> {
        if !self.line.is_empty() && !self.overlong {
            let line = std::mem::take(&mut self.line);
            self.line_ended(&line, out);
        }
        self.ended
    }

    fn line_ended(&mut self, line: &[u8], out: &mut dyn FnMut(&[u8])) {
        let Some(event) = line
            .strip_prefix(b"@nix ")
            .and_then(|json| serde_json::from_slice::<Value>(json).ok())
        else {
            // Not Nix's own (a build hook's ssh, say): as it came.
            out(line);
            return out(b"\n");
        };
        let field = |name: &str| event.get(name);
        let number = |name: &str| field(name).and_then(Value::as_u64);
        let text = |name: &str| field(name).and_then(Value::as_str);
        let shown = number("level").is_none_or(|level| level <= SHOWN_LEVEL);
        match text("action") {
            Some("msg") => {
                let message = text("msg").unwrap_or_default();
                if let Some(drv) = build_ended(message) {
                    self.ended.insert(drv, Instant::now());
                }
                if shown {
                    print(out, message, "");
                }
            }
            Some("start") => match text("text") {
                Some(text) if shown && !text.is_empty() => print(out, text, "..."),
                _ => {}
            },
            Some("result") => match (number("type"), first_field(&event)) {
                (Some(BUILD_LOG_LINE), Some(line)) => print(out, line, ""),
                (Some(POST_BUILD_LOG_LINE), Some(line)) => {
                    print(out, &format!("post-build-hook: {line}"), "")
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// The first of an event's `fields`, if it is a string.
fn first_field(event: &Value) -> Option<&str> {
    event.get("fields")?.get(0)?.as_str()
}

/// Writes a message as Nix's plain logger does on a pipe: without its terminal escapes.
fn print(out: &mut dyn FnMut(&[u8]), message: &str, suffix: &str) {
    let mut line = crate::text::without_escapes(message.as_bytes());
    line.extend_from_slice(suffix.as_bytes());
    line.push(b'\n');
    out(&line);
}

/// The `.drv` of "builder process for '…' finished" or "build hook for '…' finished".
fn build_ended(message: &str) -> Option<PathBuf> {
    let rest = message
        .strip_prefix("builder process for '")
        .or_else(|| message.strip_prefix("build hook for '"))?;
    let drv = Path::new(rest.strip_suffix("' finished")?);
    store::is_store_path(&store::store_dir(), drv).then(|| drv.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRV: &str = "/nix/store/yl2ghzzb0r4vlxrsbxqgq0k8a72vps2l-j-a-23188.drv";

    fn render(format: Format, input: &str) -> (String, Vec<PathBuf>) {
        let mut log = NixLog::new(format, 1 << 20);
        let mut out = Vec::new();
        // In pieces: what comes out must not depend on how the pipe splits it.
        for chunk in input.replace("DRV", DRV).as_bytes().chunks(5) {
            log.feed(chunk, &mut |b| out.extend_from_slice(b));
        }
        let ended = log.finish(&mut |b| out.extend_from_slice(b));
        (String::from_utf8(out).unwrap(), ended.into_keys().collect())
    }

    #[test]
    fn plain_passes_through() {
        let input = "building 'DRV'...\n\u{1b}[31merror\u{1b}[0m: x\npartial";
        assert_eq!(render(Format::Plain, input).0, input.replace("DRV", DRV));
    }

    #[test]
    fn json_renders_as_nix_prints_and_notes_ends() {
        // As Nix 2.8 wrote it (measured), at -vvv.
        let input = r#"@nix {"action":"start","id":1,"level":6,"text":"querying info about missing paths","type":0}
@nix {"action":"msg","level":3,"msg":"this derivation will be built:"}
@nix {"action":"msg","level":3,"msg":"  DRV"}
@nix {"action":"start","fields":["DRV","",1,1],"id":7,"level":3,"text":"building 'DRV'","type":105}
@nix {"action":"result","fields":[0,1,1,0],"id":4,"type":105}
@nix {"action":"result","fields":["building a"],"id":7,"type":101}
@nix {"action":"msg","level":6,"msg":"builder process for 'DRV' finished"}
@nix {"action":"msg","level":0,"msg":"trace: \u001b[1mhello\u001b[0m"}
@nix {"action":"stop","id":7}
ssh: a line that is not Nix's
@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\u001b[31;1merror:\u001b[0m builder for 'DRV' failed","raw_msg":"x"}
"#;
        let (text, ended) = render(Format::Json, input);
        assert_eq!(
            text,
            "this derivation will be built:\n  DRV\nbuilding 'DRV'...\nbuilding a\n\
             trace: hello\nssh: a line that is not Nix's\nerror: builder for 'DRV' failed\n"
                .replace("DRV", DRV)
        );
        assert_eq!(ended, [PathBuf::from(DRV)]);
    }

    #[test]
    fn a_build_stopped_without_its_end_said_had_not_ended() {
        // Nix stops every activity when it is interrupted.
        let input = "@nix {\"action\":\"start\",\"fields\":[\"DRV\",\"\",1,1],\"id\":7,\"level\":3,\"text\":\"building 'DRV'\",\"type\":105}\n\
                     @nix {\"action\":\"msg\",\"level\":0,\"msg\":\"error: interrupted by the user\"}\n\
                     @nix {\"action\":\"stop\",\"id\":7}\n";
        let (text, ended) = render(Format::Json, input);
        assert_eq!(
            text,
            format!("building '{DRV}'...\nerror: interrupted by the user\n")
        );
        assert!(ended.is_empty());
        let (_, ended) = render(
            Format::Json,
            "@nix {\"action\":\"msg\",\"level\":6,\"msg\":\"build hook for 'DRV' finished\"}\n",
        );
        assert_eq!(ended, [PathBuf::from(DRV)]);
    }

    #[test]
    fn an_overlong_line_passes_through() {
        let mut log = NixLog::new(Format::Json, 10);
        let mut out = Vec::new();
        log.feed(b"@nix {\"action\":\"msg\"}\nok\n", &mut |b| {
            out.extend_from_slice(b)
        });
        log.finish(&mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"@nix {\"action\":\"msg\"}\nok\n");
    }
}
