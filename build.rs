//! Links the code a warm run executes into one place at the start of `.text`
//! (`hot-text.ld`, written by scripts/hot-text): the kernel maps a binary's code 64 KiB
//! around each page fault, and spread over 1.3 MiB a run's code took 13 such faults
//! (BENCHMARKS.md, change 7).
//!
//! Only for the static glibc build that `.cargo/config.toml` asks for, whose glibc code the
//! script places too; default.nix's dynamic build is left as nixpkgs links it.
//! `NBB_HOT_TEXT=0` leaves it out, for a linker without linker scripts (mold) or to measure.

fn main() {
    println!("cargo::rerun-if-changed=hot-text.ld");
    println!("cargo::rerun-if-env-changed=NBB_HOT_TEXT");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let wanted = std::env::var_os("NBB_HOT_TEXT").is_none_or(|v| v != "0");
    if wanted && os == "linux" && env == "gnu" && features.split(',').any(|f| f == "crt-static") {
        let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it");
        let script = std::path::Path::new(&root).join("hot-text.ld");
        if !script.exists() {
            // So that scripts/hot-text can build the binary it traces to write it.
            println!("cargo::warning=no hot-text.ld: run scripts/hot-text to write it");
            return;
        }
        // Two words, `-T` and the path, so that no comma in the path can split it (`-Wl,`).
        println!("cargo::rustc-link-arg-bins=-T");
        println!("cargo::rustc-link-arg-bins={}", script.display());
    }
}
