//! Content-addressed derivations (Nix's `ca-derivations`): their outputs' paths are known
//! only once built, so they are verified by name, and both paths still agree.

mod common;
use common::*;

const CA_CONFIG: &str = "experimental-features = ca-derivations\n";

fn ca_depot() -> Depot {
    let depot = Depot::empty();
    depot.write(
        "default.nix",
        r#"{ }: { ca = derivation {
            name = "ca-@nonce@"; builder = "/bin/sh"; system = builtins.currentSystem;
            outputs = [ "out" "dev" ];
            args = [ "-c" "echo ca > $out; echo dev > $dev" ];
            __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256";
          }; }"#,
    );
    depot
}

fn run(depot: &Depot, args: &[std::ffi::OsString]) -> Run {
    Run::new(
        depot
            .command()
            .args(args)
            .env("NIX_CONFIG", format!("{}{CA_CONFIG}", nix_config())),
    )
}

#[test]
fn realise_and_fallback_agree_with_links_and_without() {
    let depot = ca_depot();
    let drv = {
        let out = Run::new(
            std::process::Command::new("nix-instantiate")
                .args(["-A", "ca"])
                .current_dir(&depot.dir)
                .env("NIX_CONFIG", format!("{}{CA_CONFIG}", nix_config())),
        );
        std::path::PathBuf::from(out.success().stdout().trim())
    };
    let realised = run(&depot, &[os("--drv-path"), drv.clone().into()]);
    realised.success();
    let links = [depot.path("result"), depot.path("result-dev")];
    assert_eq!(
        realised.paths(),
        links.iter().map(|l| target(l)).collect::<Vec<_>>()
    );
    let unlinked = run(
        &depot,
        &[os("--drv-path"), drv.clone().into(), os("--no-out-link")],
    );
    assert_eq!(unlinked.success().paths(), realised.paths());

    for link in &links {
        std::fs::remove_file(link).unwrap();
    }
    delete(&drv);
    let evaluated = run(
        &depot,
        &[os("--drv-path"), drv.clone().into(), os("-A"), os("ca")],
    );
    evaluated.success().stderr_contains("re-evaluating ca");
    assert_eq!(evaluated.paths(), realised.paths());
    let unlinked = run(
        &depot,
        &[
            os("--drv-path"),
            drv.into(),
            os("-A"),
            os("ca"),
            os("--no-out-link"),
        ],
    );
    assert_eq!(unlinked.success().paths(), realised.paths());
}
