//! Reading a store derivation (`.drv`) for what this tool needs from it: its outputs, in the
//! order the derivation declares them, with the store paths they will have; and, to tell
//! which targets a failed derivation held up, the derivations it needs.
//!
//! Parsing the file ourselves costs microseconds; asking Nix would cost a process.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One output of a derivation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    /// `None` where the path is only known after the build (content-addressed derivations).
    pub path: Option<PathBuf>,
}

/// Parses the ATerm text of a `.drv` and returns its outputs in declared order.
pub fn parse_outputs(text: &[u8]) -> Result<Vec<Output>, String> {
    let term = Parser {
        text,
        pos: 0,
        depth: 0,
    }
    .derivation()?;
    let [
        outputs,
        _input_drvs,
        _input_srcs,
        _system,
        _builder,
        _args,
        env,
    ] = &term[..]
    else {
        return Err(format!(
            "expected 7 fields in Derive(…), found {}",
            term.len()
        ));
    };
    let mut outputs = outputs
        .list()?
        .iter()
        .map(|output| {
            let fields = output.list()?;
            let (Some(name), Some(path)) = (fields.first(), fields.get(1)) else {
                return Err("an output is missing its name or path".to_string());
            };
            let name = String::from_utf8(name.string()?.to_vec())
                .map_err(|_| "an output name is not UTF-8".to_string())?;
            let path = path.string()?;
            let path = (!path.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(path)));
            Ok(Output { name, path })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The ATerm lists outputs sorted by name; the declared order, whose first output is the
    // default one, is only kept in the environment.
    if let Some(order) = declared_order(env)? {
        outputs.sort_by_key(|o| order.iter().position(|n| *n == o.name));
    }
    Ok(outputs)
}

fn declared_order(env: &Term) -> Result<Option<Vec<String>>, String> {
    for pair in env.list()? {
        let fields = pair.list()?;
        let (Some(key), Some(value)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        match key.string()? {
            b"outputs" => {
                let value = String::from_utf8_lossy(value.string()?);
                return Ok(Some(value.split_whitespace().map(str::to_owned).collect()));
            }
            // Derivations with `__structuredAttrs` keep their attributes as JSON.
            b"__json" => {
                let json: serde_json::Value = serde_json::from_slice(value.string()?)
                    .map_err(|e| format!("__json is not JSON: {e}"))?;
                let order = json["outputs"].as_array().map(|names| {
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                });
                return Ok(order);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The outputs named in `wanted`, in declared order; all of them if `wanted` is empty.
pub fn select(
    outputs: Vec<Output>,
    wanted: &[String],
    drv: &Path,
) -> Result<Vec<Output>, crate::error::Error> {
    if let Some(missing) = wanted
        .iter()
        .find(|w| !outputs.iter().any(|o| &&o.name == w))
    {
        let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(crate::error::Error::Usage(format!(
            "{} has no output {missing:?} (it has {})",
            drv.display(),
            names.join(", ")
        )));
    }
    if wanted.is_empty() {
        return Ok(outputs);
    }
    Ok(outputs
        .into_iter()
        .filter(|o| wanted.contains(&o.name))
        .collect())
}

/// The `.drv`s the derivation at `path` needs built first, or `None` if it cannot be read.
pub fn read_input_drvs(path: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read(path).ok()?;
    let term = Parser {
        text: &text,
        pos: 0,
        depth: 0,
    }
    .derivation()
    .ok()?;
    // `[("/nix/store/….drv",["out"]),…]`, the second of Derive's fields.
    term.get(1)?
        .list()
        .ok()?
        .iter()
        .map(|input| {
            let path = input.list().ok()?.first()?.string().ok()?;
            Some(PathBuf::from(OsStr::from_bytes(path)))
        })
        .collect()
}

/// Pauses, in ms, before reading a `.drv` that did not parse again: 0.6 s in all.
const REREADS_MS: [u64; 6] = [10, 20, 40, 80, 160, 320];

/// Reads the derivation at `path`: `Ok(None)` if it does not exist (garbage-collected).
///
/// A `.drv` that was collected can be written again meanwhile, by another agent's
/// re-evaluation, and Nix writes it in place before registering it: read then, it is cut
/// short. So a `.drv` that does not parse is read again a few times before it is called
/// broken (seen under a collector in a loop, Nix 2.34).
pub fn read_outputs(path: &Path) -> Result<Option<Vec<Output>>, crate::error::Error> {
    let mut rereads = REREADS_MS.iter();
    loop {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(crate::error::Error::io(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        match (parse_outputs(&text), rereads.next()) {
            (Ok(outputs), _) => return Ok(Some(outputs)),
            (Err(_), Some(&ms)) => std::thread::sleep(Duration::from_millis(ms)),
            (Err(e), None) => {
                return Err(crate::error::Error::Usage(format!(
                    "{} is not a derivation: {e}",
                    path.display()
                )));
            }
        }
    }
}

/// The three shapes an ATerm in a `.drv` takes.
#[derive(Debug)]
enum Term {
    String(Vec<u8>),
    /// Both `[…]` lists and `(…)` tuples.
    List(Vec<Term>),
}

impl Term {
    fn string(&self) -> Result<&[u8], String> {
        match self {
            Term::String(s) => Ok(s),
            Term::List(_) => Err("expected a string, found a list".into()),
        }
    }

    fn list(&self) -> Result<&[Term], String> {
        match self {
            Term::List(items) => Ok(items),
            Term::String(_) => Err("expected a list, found a string".into()),
        }
    }
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    /// How many lists enclose the term being read.
    depth: usize,
}

/// A derivation nests three deep (`Derive([("out",…)],…)`). Past this, the file is not one,
/// and reading on would only recurse towards a stack overflow.
const MAX_DEPTH: usize = 16;

impl Parser<'_> {
    fn derivation(mut self) -> Result<Vec<Term>, String> {
        if !self.text.starts_with(b"Derive(") {
            return Err("it does not start with Derive(".into());
        }
        self.pos = "Derive".len();
        let Term::List(fields) = self.term()? else {
            unreachable!("a term starting with ( is a list")
        };
        if self.pos != self.text.len() {
            return Err(format!("trailing bytes at offset {}", self.pos));
        }
        Ok(fields)
    }

    fn term(&mut self) -> Result<Term, String> {
        match self.next()? {
            b'"' => self.string().map(Term::String),
            open @ (b'[' | b'(') => {
                if self.depth == MAX_DEPTH {
                    return Err(format!("lists nested too deep at offset {}", self.pos - 1));
                }
                self.depth += 1;
                let list = self.list(if open == b'[' { b']' } else { b')' });
                self.depth -= 1;
                list
            }
            c => Err(self.unexpected(c)),
        }
    }

    /// The rest of a list, after its opening bracket.
    fn list(&mut self, close: u8) -> Result<Term, String> {
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(Term::List(items));
        }
        loop {
            items.push(self.term()?);
            match self.next()? {
                b',' => {}
                c if c == close => return Ok(Term::List(items)),
                c => return Err(self.unexpected(c)),
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let mut s = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Ok(s),
                b'\\' => s.push(match self.next()? {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    c => c,
                }),
                c => s.push(c),
            }
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = self.peek().ok_or("unexpected end of file")?;
        self.pos += 1;
        Ok(c)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn unexpected(&self, c: u8) -> String {
        format!("unexpected {:?} at offset {}", c as char, self.pos - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = r#"Derive([("dev","/nix/store/xxck691h393gwnbgs0v1m2sjcjfmrn45-multi-dev","",""),("doc","/nix/store/wfwz64dzmwnx20748v7i1k4k3aswv63q-multi-doc","",""),("out","/nix/store/z12rjmfmzq4aw7ljzyhxnzjass46zy5f-multi","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \"x\" > $out\n"],[("builder","/bin/sh"),("name","multi"),("outputs","out dev doc"),("system","x86_64-linux")])"#;

    fn names(outputs: &[Output]) -> Vec<&str> {
        outputs.iter().map(|o| o.name.as_str()).collect()
    }

    #[test]
    fn a_drv_cut_short_is_read_again_until_it_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-multi.drv");
        std::fs::write(&path, &MULTI[..MULTI.len() / 2]).unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                std::fs::write(&path, MULTI).unwrap();
            })
        };
        let outputs = read_outputs(&path).unwrap().unwrap();
        writer.join().unwrap();
        assert_eq!(names(&outputs), ["out", "dev", "doc"]);

        // One that stays cut short is refused, after about 0.6 s.
        std::fs::write(&path, &MULTI[..MULTI.len() / 2]).unwrap();
        let err = read_outputs(&path).unwrap_err().to_string();
        assert!(err.contains("is not a derivation"), "{err}");
    }

    #[test]
    fn outputs_come_in_declared_order() {
        let outputs = parse_outputs(MULTI.as_bytes()).unwrap();
        assert_eq!(names(&outputs), ["out", "dev", "doc"]);
        assert_eq!(
            outputs[0].path.as_deref(),
            Some(Path::new(
                "/nix/store/z12rjmfmzq4aw7ljzyhxnzjass46zy5f-multi"
            ))
        );
    }

    #[test]
    fn reads_input_derivations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.drv");
        let text = r#"Derive([("out","/nix/store/a-x","","")],[("/nix/store/b-y.drv",["out"]),("/nix/store/c-z.drv",["dev","out"])],[],"s","b",[],[])"#;
        std::fs::write(&path, text).unwrap();
        assert_eq!(
            read_input_drvs(&path).unwrap(),
            [
                PathBuf::from("/nix/store/b-y.drv"),
                PathBuf::from("/nix/store/c-z.drv")
            ]
        );
        std::fs::write(&path, MULTI).unwrap();
        assert_eq!(read_input_drvs(&path).unwrap(), Vec::<PathBuf>::new());
        assert_eq!(read_input_drvs(&dir.path().join("gone.drv")), None);
    }

    #[test]
    fn structured_attrs_declare_order_in_json() {
        let text = r#"Derive([("b","/nix/store/b","",""),("a","/nix/store/a","","")],[],[],"s","b",[],[("__json","{\"outputs\":[\"b\",\"a\"]}")])"#;
        assert_eq!(names(&parse_outputs(text.as_bytes()).unwrap()), ["b", "a"]);
    }

    #[test]
    fn content_addressed_outputs_have_no_path_yet() {
        let text = r#"Derive([("out","","r:sha256","")],[],[],"s","b",[],[])"#;
        let outputs = parse_outputs(text.as_bytes()).unwrap();
        assert_eq!(outputs[0].path, None);
    }

    #[test]
    fn rejects_what_is_not_a_derivation() {
        for text in [
            "",
            "Derive(",
            "hello",
            r#"Derive([],[],[],"s","b",[])"#,
            &format!("{MULTI}x"),
            &MULTI[..MULTI.len() - 1],
            // Deep enough to overflow the stack if each level recursed.
            &format!("Derive({}", "[".repeat(1 << 20)),
        ] {
            assert!(parse_outputs(text.as_bytes()).is_err(), "{text:?} accepted");
        }
    }
}
