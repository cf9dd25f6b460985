//! Build provenance: an in-toto Statement v1 (github.com/in-toto/attestation,
//! `spec/v1/statement.md`) whose predicate is SLSA Provenance v1
//! (slsa.dev/spec/v1.0/provenance).
//!
//! - `subject`: the image, by its manifest digest.
//! - `buildDefinition.buildType`: [`BUILD_TYPE_BUILD`] or
//!   [`BUILD_TYPE_PACK`]; `externalParameters`: the resolved settings
//!   ([`BuildParameters`]); `internalParameters`: the platform;
//!   `resolvedDependencies`: the source tree (sha256 of the tree and the git
//!   commit), the builder image, the toolchains (`pkg:generic/NAME@VERSION`
//!   with the full `--version` line), and for `pack` the binary itself.
//! - `runDetails.builder.id`: `pkg:cargo/distroless-pack@VERSION`.
//!
//! No time stamps (`metadata.startedOn` is optional and would break
//! byte-identical runs). Unsigned: the statement's bytes are what a DSSE
//! envelope's `payload` carries (payloadType [`crate::MEDIA_TYPE_IN_TOTO`]),
//! so signing later wraps these bytes unchanged (docs/design.md).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::Sbom;

/// The statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The build type of `build` (a project compiled, then packed).
pub const BUILD_TYPE_BUILD: &str = "https://distroless-pack.dev/buildtypes/build/v1";
/// The build type of `pack` (a given binary packed).
pub const BUILD_TYPE_PACK: &str = "https://distroless-pack.dev/buildtypes/pack/v1";
/// The OCI artifact type of the attached statement.
pub const ARTIFACT_TYPE: &str = crate::MEDIA_TYPE_IN_TOTO;
/// The annotation naming the predicate type on an attached statement (as
/// BuildKit annotates its attestation layers).
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// The resolved settings the provenance records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildParameters {
    /// `build` or `pack`.
    pub command: String,
    /// The project kind (`build`).
    pub kind: Option<String>,
    /// Where it ran (`host`, `docker:IMAGE`).
    pub runner: Option<String>,
    /// The main build command as it ran (it names the target / RID).
    pub build_command: Option<String>,
    /// The compiler target (`x86_64-unknown-linux-musl`, `linux-musl-x64`).
    pub target: Option<String>,
    /// The image settings as the image applies them (entrypoint, env,
    /// user, ports, labels, annotations, extras, compression: see
    /// `pipeline::attest`), by name.
    pub settings: BTreeMap<String, Value>,
}

fn version_token(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.chars().any(|c| c.is_ascii_digit()))
        .unwrap_or(line)
        .trim_start_matches("go")
        .to_string()
}

/// The statement.
pub fn statement(sbom: &Sbom, p: &BuildParameters) -> Vec<u8> {
    let s = &sbom.subject;
    let mut external = serde_json::Map::new();
    external.insert("command".into(), json!(p.command));
    for (k, v) in [
        ("kind", &p.kind),
        ("runner", &p.runner),
        ("buildCommand", &p.build_command),
        ("target", &p.target),
    ] {
        if let Some(v) = v {
            external.insert(k.into(), json!(v));
        }
    }
    external.insert("platform".into(), json!(s.platform.to_string()));
    if !p.settings.is_empty() {
        external.insert("settings".into(), json!(p.settings));
    }

    let mut deps: Vec<Value> = Vec::new();
    if p.command == "pack" || sbom.built.is_none() {
        deps.push(json!({
            "name": sbom.application.file.path,
            "digest": {"sha256": sbom.application.file.sha256},
            "annotations": {"role": "binary"},
        }));
    }
    if let Some(b) = &sbom.built {
        if let Some(src) = &b.source {
            let mut digest = serde_json::Map::new();
            if let Some(h) = src.digest.strip_prefix("sha256:") {
                digest.insert("sha256".into(), json!(h));
            }
            if let Some(c) = &src.git_commit {
                digest.insert("gitCommit".into(), json!(c));
            }
            let mut d = json!({"name": "source", "digest": digest});
            if src.git_dirty {
                d["annotations"] = json!({"gitDirty": "true"});
            }
            deps.push(d);
        }
        if let Some(img) = &b.builder_image {
            let mut d = json!({
                "name": "builder-image",
                "uri": format!("pkg:docker/{}", img.name),
                "digest": {},
            });
            if let Some(h) = img.id.strip_prefix("sha256:") {
                d["digest"]["sha256"] = json!(h);
            }
            if !img.repo_digests.is_empty() {
                let mut r = img.repo_digests.clone();
                r.sort();
                d["annotations"] = json!({"repoDigests": r.join(",")});
            }
            deps.push(d);
        }
        for (tool, line) in &b.toolchain {
            deps.push(json!({
                "name": tool,
                "uri": format!("pkg:generic/{tool}@{}", version_token(line)),
                "annotations": {"version": line},
            }));
        }
    }
    deps.sort_by_key(|d| d["name"].as_str().unwrap_or("").to_string());

    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.name, "digest": {"sha256": s.digest.hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": if p.command == "pack" { BUILD_TYPE_PACK } else { BUILD_TYPE_BUILD },
                "externalParameters": external,
                "internalParameters": {"sbomComponents": sbom.components.len()},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": format!("pkg:cargo/{}@{}", crate::TOOL_NAME, crate::TOOL_VERSION),
                    "version": {crate::TOOL_NAME: crate::TOOL_VERSION},
                },
                "metadata": {},
            },
        },
    });
    crate::to_bytes(&statement)
}
