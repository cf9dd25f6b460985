//! Output options shared by `pack` and `build` (`--output`, `--load`,
//! `--push`, `--digest-file`) and [`ship`], which sends one artifact to all
//! of them.
//!
//! No output at all is allowed (like `docker build` without `--load`): the
//! image is built and its digest printed by the caller, nothing is written.

use std::path::PathBuf;

use distroless_pack_image::Artifact;
use distroless_pack_ship::{layout, Engine, ShipError, Sink, WriteOptions};

use crate::exit::{self, WithCode};
use crate::progress::Stage;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the image to SINK: `oci:DIR[:TAG]` (OCI layout; other tags in
    /// DIR are kept), `oci-archive:FILE`, or `docker-archive:FILE` (a tar
    /// that `docker load` and `podman load` take). Repeatable.
    #[arg(long = "output", value_name = "SINK", help_heading = "Outputs")]
    pub outputs: Vec<Sink>,

    /// Load the image into docker or podman (`--load` picks docker when
    /// its daemon answers, else podman; `--load=podman` forces one).
    #[arg(
        long,
        value_name = "ENGINE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto",
        value_parser = ["auto", "docker", "podman"],
        help_heading = "Outputs"
    )]
    pub load: Option<String>,

    /// Push the image to a registry as REF (`registry/repo:tag`). Repeatable.
    #[arg(long = "push", value_name = "REF", help_heading = "Outputs")]
    pub push: Vec<String>,

    /// Write the image's digest (`sha256:...`, of the manifest or index) to
    /// FILE, for CI (written whether or not the image is pushed).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub digest_file: Option<PathBuf>,

    /// Registry credentials and TLS for `--push`.
    #[command(flatten)]
    pub registry: crate::cmd_push::RegistryArgs,
}

impl OutputArgs {
    /// Whether any output was asked for.
    pub fn any(&self) -> bool {
        !self.outputs.is_empty() || self.load.is_some() || !self.push.is_empty()
    }
}

/// One output that was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShippedOutput {
    /// `oci`, `oci-archive`, `docker-archive`, `load` or `push`.
    pub kind: &'static str,
    /// The sink as given (`oci:out:latest`), the engine (`docker`) or the
    /// registry reference.
    pub target: String,
    /// Digest of the manifest (or index) written there.
    pub digest: String,
    /// The name it is known by there: the loaded image name, or
    /// `NAME@sha256:...` for a push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Exit code for a ship error: choosing the wrong format is a usage error,
/// everything else is an output failure.
fn code_for(e: &ShipError, otherwise: u8) -> u8 {
    match e {
        ShipError::IndexNotSupported { .. }
        | ShipError::PlatformNotFound { .. }
        | ShipError::BadSink { .. } => exit::USAGE,
        e if e.is_bad_input() => exit::USAGE,
        _ => otherwise,
    }
}

/// Writes `artifact` to every output in `args`, named `name` (the full
/// image name, e.g. `hello:latest`; empty for none), with one progress line
/// per output on stderr unless `quiet`.
pub fn ship(
    artifact: &Artifact,
    args: &OutputArgs,
    name: &str,
    quiet: bool,
) -> anyhow::Result<Vec<ShippedOutput>> {
    let opts = WriteOptions {
        name: (!name.is_empty()).then(|| name.to_string()),
        platform: None,
    };
    let digest = artifact.digest().to_string();
    let mut shipped = Vec::new();
    for sink in &args.outputs {
        let stage = Stage::start("ship", &format!("writing {sink}"), quiet);
        distroless_pack_ship::write(artifact, sink, &opts).map_err(|e| {
            let code = code_for(&e, exit::OUTPUT);
            exit::tag(
                anyhow::Error::new(e).context(format!("writing {sink}")),
                code,
            )
        })?;
        // Name the tag an `oci:DIR` output got when none was given.
        let target = match sink {
            Sink::OciLayout { dir, tag: None } => Sink::OciLayout {
                dir: dir.clone(),
                tag: Some(
                    opts.name
                        .as_deref()
                        .and_then(layout::name_tag)
                        .unwrap_or("latest")
                        .to_string(),
                ),
            },
            other => other.clone(),
        };
        stage.done(&format!("wrote {target} ({digest})"));
        shipped.push(ShippedOutput {
            kind: sink.kind(),
            target: target.to_string(),
            digest: digest.clone(),
            reference: None,
        });
    }
    if let Some(engine) = &args.load {
        let engine: Engine = engine
            .parse()
            .map_err(anyhow::Error::msg)
            .code(exit::USAGE)?;
        let stage = Stage::start(
            "ship",
            &format!(
                "loading into {}",
                if engine == Engine::Auto {
                    "docker or podman".to_string()
                } else {
                    engine.to_string()
                }
            ),
            quiet,
        );
        let loaded = distroless_pack_ship::load(artifact, engine, &opts).map_err(|e| {
            let code = code_for(&e, exit::ENGINE);
            exit::tag(anyhow::Error::new(e).context("--load"), code)
        })?;
        let image_digest = artifact
            .select(Some(&distroless_pack_image::Platform::host()))
            .or_else(|| artifact.select(None))
            .map(|i| i.digest().to_string())
            .unwrap_or_else(|| digest.clone());
        stage.done(&format!("loaded {} into {}", loaded.name, loaded.engine));
        shipped.push(ShippedOutput {
            kind: "load",
            target: loaded.engine.to_string(),
            digest: image_digest,
            reference: Some(loaded.name),
        });
    }
    if !args.push.is_empty() || args.digest_file.is_some() {
        shipped.extend(registry_push(artifact, args, quiet)?);
    }
    Ok(shipped)
}

/// Pushes `artifact` to every reference in `args.push` (blobs once per
/// registry) and writes the digest to `--digest-file`. Errors carry
/// `exit::REGISTRY` / `exit::AUTH` / `exit::USAGE`. The pushed
/// `NAME@sha256:...` is in each output's `reference`.
fn registry_push(
    artifact: &Artifact,
    args: &OutputArgs,
    quiet: bool,
) -> anyhow::Result<Vec<ShippedOutput>> {
    let mut shipped = Vec::new();
    if !args.push.is_empty() {
        let targets = crate::cmd_push::parse_targets(&args.push)?;
        let opts = args.registry.push_options()?;
        let report = crate::cmd_push::push_with_progress(artifact, &targets, &opts, quiet)?;
        for t in report.targets {
            shipped.push(ShippedOutput {
                kind: "push",
                target: t.reference,
                digest: t.digest,
                reference: Some(t.pushed),
            });
        }
    }
    if let Some(f) = &args.digest_file {
        crate::cmd_push::write_digest_file(f, artifact.digest().as_str())?;
    }
    Ok(shipped)
}
