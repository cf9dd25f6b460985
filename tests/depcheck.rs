//! The pipeline's shape, checked: every stage crate depends on
//! `distroless-pack-image` and on no other stage, so stages are chained only
//! in the CLI (as go-containerregistry's `cmd/crane/depcheck_test.go` keeps
//! crane off the daemon package).

use crate::util::repo_root;

const STAGES: &[&str] = &["verify", "assemble", "ship", "compile", "run"];

/// The `distroless-pack-*` crates a manifest depends on (any table).
fn our_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(manifest))
        .unwrap_or_else(|e| panic!("{manifest}: {e}"));
    let mut deps: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("name"))
        .filter_map(|l| l.trim_start().strip_prefix("distroless-pack-"))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .map(str::to_string)
        .collect();
    deps.sort();
    deps.dedup();
    deps
}

#[test]
fn each_stage_depends_only_on_the_image_crate() {
    for stage in STAGES {
        let deps = our_dependencies(&format!("crates/{stage}/Cargo.toml"));
        assert_eq!(
            deps,
            vec!["image".to_string()],
            "crates/{stage} must depend on distroless-pack-image only (stages are chained in the CLI)"
        );
    }
    assert!(
        our_dependencies("crates/image/Cargo.toml").is_empty(),
        "crates/image must depend on no other crate of ours"
    );
}

#[test]
fn the_cli_depends_on_every_stage() {
    let mut want: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    want.push("image".into());
    want.sort();
    assert_eq!(our_dependencies("Cargo.toml"), want);
}
