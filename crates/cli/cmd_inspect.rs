//! `distroless-pack inspect SOURCE [--platform P] [--json]`: what an image
//! holds and the artifacts attached to it, read from any sink format or a
//! registry (see docs/commands/inspect.md).

use std::io::Write as _;

use anyhow::Context as _;
use distroless_pack_image::{Image, Platform};
use distroless_pack_ship::registry::{referrers, Reference};
use distroless_pack_ship::{Location, Source};
use serde_json::Value;

use crate::args::RegistryArgs;
use crate::inspect_view::{describe, describe_remote, document, document_of, human};

use crate::exit::{self, WithCode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: `oci:DIR[:TAG]`, `oci-archive:FILE` or `docker-archive:FILE`
    /// (a plain `docker save` tar too), or a registry reference
    /// (`docker://REGISTRY/REPO[:TAG]`, or `REGISTRY/REPO[:TAG]` whose
    /// first part names a host). A bare path is taken as a layout
    /// directory or, for a file, an OCI or docker archive.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// For an index: show only this platform (e.g. linux/arm64).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,

    /// Print one JSON document (schema in docs/commands/inspect.md).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn no_platform(source: &dyn std::fmt::Display, p: &Platform, have: Vec<String>) -> anyhow::Error {
    exit::tag(
        anyhow::anyhow!("{source}: no {p} image; it has {}", have.join(", ")),
        exit::USAGE,
    )
}

fn from_file(args: &Args, source: &Source) -> anyhow::Result<Value> {
    let artifact = distroless_pack_ship::read(source).map_err(|e| exit::reading(source, e))?;
    let images: Vec<&Image> = match &args.platform {
        Some(p) => vec![artifact.select(Some(p)).ok_or_else(|| {
            let have = artifact
                .images()
                .iter()
                .map(|i| i.platform.to_string())
                .collect();
            no_platform(source, p, have)
        })?],
        None => artifact.images().iter().collect(),
    };
    let mut details = Vec::new();
    for img in &images {
        details.push(
            describe(img)
                .with_context(|| format!("reading {source}"))
                .code(exit::USAGE)?,
        );
    }
    Ok(document(&source.to_string(), &artifact, details))
}

fn from_registry(args: &Args, reference: &Reference) -> anyhow::Result<Value> {
    let opts = args.registry.push_options()?;
    let remote = referrers::fetch(reference, &opts)
        .map_err(|e| exit::fail(format!("reading {reference}: {e}"), e.kind()))?;
    let index = remote.images.len() != 1 || remote.top.digest != remote.images[0].manifest.digest;
    let platforms = index.then(|| {
        remote
            .images
            .iter()
            .map(|i| (i.platform.to_string(), i.manifest.digest.to_string()))
            .collect()
    });
    let images: Vec<_> = match &args.platform {
        Some(p) => {
            let found: Vec<_> = remote
                .images
                .iter()
                .filter(|i| i.platform.matches(p))
                .collect();
            if found.is_empty() {
                let have = remote
                    .images
                    .iter()
                    .map(|i| i.platform.to_string())
                    .collect();
                return Err(no_platform(reference, p, have));
            }
            found
        }
        None => remote.images.iter().collect(),
    };
    let mut details = Vec::new();
    for img in images {
        details.push(
            describe_remote(img)
                .with_context(|| format!("reading {reference}"))
                .code(exit::USAGE)?,
        );
    }
    Ok(document_of(
        &format!("docker://{reference}"),
        &remote.top,
        platforms,
        details,
    ))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let location =
        distroless_pack_ship::parse_location(&args.source).map_err(|e| exit::fail(&e, e.kind()))?;
    let doc = match &location {
        Location::File(source) => from_file(&args, source)?,
        Location::Registry(reference) => from_registry(&args, reference)?,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"
    } else {
        human(&doc)
    };
    // A closed pipe (`| head`) ends the program quietly (see exit.rs).
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .code(exit::OUTPUT)?;
    Ok(exit::OK)
}
