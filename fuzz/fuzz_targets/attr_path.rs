//! `AttrPath::parse` on arbitrary bytes: it must never panic, and whatever it accepts,
//! `render` must write back as `-A` text that parses to the same path, since that text is
//! what the fallback shows and what a user copies from a message to reproduce a step.
//! `tests/attr_properties.rs` asserts the same over this target's corpus.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_buildkite_build::attr::AttrPath;

fuzz_target!(|text: &[u8]| {
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
});
