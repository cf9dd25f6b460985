//! `distroless-pack inspect SOURCE [--platform P] [--json]`: what an image
//! holds, read from any sink format (see docs/commands/inspect.md).

use std::io::Write as _;

use anyhow::Context as _;
use distroless_pack_image::{Image, Platform};

use crate::inspect_view::{describe, document, human};

use crate::exit::{self, WithCode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: `oci:DIR[:TAG]`, `oci-archive:FILE` or `docker-archive:FILE`
    /// (a plain `docker save` tar too). A bare path is taken as a layout
    /// directory or, for a file, an OCI or docker archive.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// For an index: show only this platform (e.g. linux/arm64).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,

    /// Print one JSON document (schema in docs/commands/inspect.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let source =
        distroless_pack_ship::parse_source(&args.source).map_err(|e| exit::fail(&e, e.kind()))?;
    let artifact = distroless_pack_ship::read(&source).map_err(|e| exit::reading(&source, e))?;
    let images: Vec<&Image> = match &args.platform {
        Some(p) => vec![artifact
            .select(Some(p))
            .ok_or_else(|| {
                let have: Vec<String> = artifact
                    .images()
                    .iter()
                    .map(|i| i.platform.to_string())
                    .collect();
                anyhow::anyhow!("{source}: no {p} image; it has {}", have.join(", "))
            })
            .code(exit::USAGE)?],
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
    let doc = document(&source, &artifact, details);
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
