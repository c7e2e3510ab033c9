//! `AttrPath::parse` on arbitrary bytes, checked by `round_trip::check_parse`.

#![no_main]

#[path = "../round_trip.rs"]
mod round_trip;

libfuzzer_sys::fuzz_target!(|text: &[u8]| round_trip::check_parse(text));
