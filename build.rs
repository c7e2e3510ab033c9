//! Links the code a warm run executes into one place at the start of `.text`
//! (`hot-text.ld`, written by scripts/hot-text): the kernel maps a binary's code 64 KiB
//! around each page fault, and spread over 1.3 MiB a run's code took 13 such faults
//! (BENCHMARKS.md, change 7).
//!
//! Only for the static glibc build that `.cargo/config.toml` asks for, whose glibc code the
//! script places too; default.nix's dynamic build is left as nixpkgs links it. Left out with
//! `NBB_HOT_TEXT=0`, and for gold and mold, which cannot `INSERT` sections.

fn main() {
    println!("cargo::rerun-if-changed=hot-text.ld");
    println!("cargo::rerun-if-env-changed=NBB_HOT_TEXT");
    let var = |name| std::env::var(name).unwrap_or_default();
    let static_glibc = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static");
    // `-C link-arg=-fuse-ld=gold`, or with clang a path such as `-fuse-ld=/usr/bin/mold`.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let other_linker = flags.split('\x1f').any(|flag| {
        flag.split_once("-fuse-ld=")
            .map(|(_, ld)| ld.rsplit('/').next().unwrap_or(ld))
            .is_some_and(|ld| ld.contains("gold") || ld.contains("mold"))
    });
    if !static_glibc || other_linker || var("NBB_HOT_TEXT") == "0" {
        return;
    }
    let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let script = std::path::Path::new(&root).join("hot-text.ld");
    if !script.exists() {
        // So that scripts/hot-text can build the binary it traces to write it.
        println!("cargo::warning=no hot-text.ld: run scripts/hot-text to write it");
        return;
    }
    match script.to_str() {
        // Two words, `-T` and the path, so that no comma in the path can split it (`-Wl,`).
        Some(path) => {
            println!("cargo::rustc-link-arg-bins=-T");
            println!("cargo::rustc-link-arg-bins={path}");
        }
        None => println!("cargo::warning=hot-text.ld left out: its path is not UTF-8"),
    }
}
