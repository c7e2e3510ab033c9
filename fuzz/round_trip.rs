//! The property the fuzz target asserts, shared with `tests/attr_properties.rs`, which runs
//! it over the fuzz corpus: whatever `AttrPath::parse` accepts, `render` writes back as
//! `-A` text that parses to the same path, since that text is what the fallback shows and
//! what a user copies from a message to reproduce a step. Parsing must never panic.

use nix_buildkite_build::attr::AttrPath;

pub fn check_parse(text: &[u8]) {
    let Ok(parsed) = AttrPath::parse(text) else {
        return;
    };
    let rendered = parsed.render();
    assert_eq!(
        AttrPath::parse(&rendered).as_ref(),
        Ok(&parsed),
        "{} parsed, but its rendering {} parses differently",
        text.escape_ascii(),
        rendered.escape_ascii()
    );
}
