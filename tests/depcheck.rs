//! The pipeline's shape, checked: every stage crate depends on
//! `distroless-pack-image` and on no other stage; only the pipeline crate
//! (and the CLI above it) chains stages (as go-containerregistry's
//! `cmd/crane/depcheck_test.go` keeps crane off the daemon package).

use crate::util::repo_root;

const STAGES: &[&str] = &["verify", "assemble", "ship", "compile", "run", "sbom"];

/// The `distroless-pack-*` crates a manifest depends on (any dependency
/// table; `[workspace.dependencies]` only declares them).
fn our_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(manifest))
        .unwrap_or_else(|e| panic!("{manifest}: {e}"));
    let mut in_deps = false;
    let mut deps: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with('[') {
            in_deps = matches!(
                line.trim_end(),
                "[dependencies]" | "[dev-dependencies]" | "[build-dependencies]"
            );
            continue;
        }
        if !in_deps {
            continue;
        }
        if let Some(rest) = line.strip_prefix("distroless-pack-") {
            if let Some(name) = rest.split(|c: char| !c.is_ascii_alphanumeric()).next() {
                deps.push(name.to_string());
            }
        }
    }
    deps.sort();
    deps.dedup();
    deps
}

/// Every crate's manifest, by short name (`cli` for the root package).
fn manifests() -> Vec<(String, String)> {
    let mut all = vec![("cli".to_string(), "Cargo.toml".to_string())];
    for e in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let e = e.unwrap();
        if e.path().join("Cargo.toml").is_file() {
            let name = e.file_name().to_string_lossy().to_string();
            all.push((name.clone(), format!("crates/{name}/Cargo.toml")));
        }
    }
    all
}

#[test]
fn each_stage_depends_only_on_the_image_crate() {
    for stage in STAGES {
        let deps = our_dependencies(&format!("crates/{stage}/Cargo.toml"));
        assert_eq!(
            deps,
            vec!["image".to_string()],
            "crates/{stage} must depend on distroless-pack-image only (stages are chained in crates/pipeline)"
        );
    }
    assert!(
        our_dependencies("crates/image/Cargo.toml").is_empty(),
        "crates/image must depend on no other crate of ours"
    );
}

#[test]
fn only_the_pipeline_and_the_cli_depend_on_several_stages() {
    for (name, manifest) in manifests() {
        let stages = our_dependencies(&manifest)
            .into_iter()
            .filter(|d| STAGES.contains(&d.as_str()))
            .count();
        if name != "pipeline" && name != "cli" {
            assert!(
                stages <= 1,
                "{manifest} depends on {stages} stages: chain stages in crates/pipeline"
            );
        }
    }
    let mut want: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    want.push("image".into());
    want.sort();
    assert_eq!(our_dependencies("crates/pipeline/Cargo.toml"), want);
    assert!(our_dependencies("Cargo.toml").contains(&"pipeline".to_string()));
}
