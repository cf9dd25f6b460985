//! `distroless-pack sbom SOURCE|FILE [--format spdx|cyclonedx] [--platform P] [--output FILE]`:
//! the SBOM of an image (any source `inspect` reads, a registry too: the
//! entrypoint binary and the files of its layers) or of a bare ELF binary,
//! from what the binary records (docs/commands/sbom.md). Stdout gets the
//! document (or `--output FILE`); warnings about build info that cannot be
//! read go to stderr. Exit status: 0, 2 bad input, 4 registry, 5 auth,
//! 8 output.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use distroless_pack_image::Platform;
use distroless_pack_pipeline::attest::{self, Format};
use distroless_pack_ship::registry::pull;
use distroless_pack_ship::Location;

use crate::args::RegistryArgs;
use crate::exit::{self, WithCode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An image (`oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`,
    /// a bare path to one, or a registry reference: `docker://REGISTRY/REPO[:TAG]`
    /// or `REGISTRY/REPO[:TAG]` whose first part names a host) or an ELF
    /// executable.
    #[arg(value_name = "SOURCE|FILE")]
    pub source: String,

    /// spdx (SPDX 2.3 JSON, default) or cyclonedx (CycloneDX 1.6 JSON).
    #[arg(long, value_name = "FORMAT", default_value = "spdx", value_parser = ["spdx", "cyclonedx"])]
    pub format: String,

    /// For an index: the platform's image (default: the only one, else
    /// this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,

    /// Print the SBOM attached to the image (the OCI 1.1 referrer of the
    /// format's artifact type that `pack`, `build` or `attach` put there)
    /// as it is stored, checked against its digest, instead of making one
    /// from the image's binary. Exit 2 when none of that format is attached.
    #[arg(long)]
    pub attached: bool,

    /// Write the document to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| exit::fail(&e, distroless_pack_image::ErrorKind::Usage))?;
    let created =
        distroless_pack_pipeline::settings::source_date_epoch().map_err(crate::report::pipeline)?;
    let path = Path::new(&args.source);
    if args.attached {
        let bytes = attached(&args, format, path)?;
        return write_out(&args, bytes);
    }
    let sbom = if distroless_pack_ship::is_elf_file(path) {
        attest::binary_sbom(path, created).map_err(crate::report::pipeline)?
    } else {
        match distroless_pack_ship::parse_location(&args.source)
            .map_err(|e| exit::fail(&e, e.kind()))?
        {
            Location::File(source) => {
                let read = distroless_pack_ship::read_back(&source)
                    .map_err(|e| exit::reading(&source, e))?;
                let image = read
                    .artifact
                    .image_for(args.platform.as_ref())
                    .map_err(|e| anyhow::anyhow!("{source}: {e}"))
                    .code(exit::USAGE)?;
                // named as `pack --tag` named it, else after the source
                let name = read.name.as_deref().unwrap_or(&args.source);
                attest::image_sbom(image, name, created).map_err(crate::report::pipeline)?
            }
            Location::Registry(reference) => {
                // the layers, downloaded to a temp folder for as long as
                // `image` lives
                let opts = args.registry.push_options()?;
                let image = pull::pull_image(&reference, args.platform.as_ref(), &opts)
                    .map_err(|e| exit::fail(format!("reading {reference}: {e}"), e.kind()))?;
                attest::image_sbom(&image, &reference.to_string(), created)
                    .map_err(crate::report::pipeline)?
            }
        }
    };
    for w in &sbom.warnings {
        eprintln!("distroless-pack: warning: {w}");
    }
    write_out(&args, format.write(&sbom))
}

/// The document of `format` attached to the image SOURCE names.
fn attached(args: &Args, format: Format, path: &Path) -> anyhow::Result<Vec<u8>> {
    let wanted = format.media_type();
    let none = |types: Vec<String>| {
        let has = if types.is_empty() {
            "no documents are attached".to_string()
        } else {
            format!("it has {}", types.join(", "))
        };
        exit::fail(
            format!(
                "{}: no {wanted} document is attached ({has}); without --attached, sbom makes one from the image",
                args.source
            ),
            distroless_pack_image::ErrorKind::Usage,
        )
    };
    if distroless_pack_ship::is_elf_file(path) {
        return Err(exit::fail(
            format!(
                "{}: an executable has no attached documents; --attached reads them from an image",
                args.source
            ),
            distroless_pack_image::ErrorKind::Usage,
        ));
    }
    match distroless_pack_ship::parse_location(&args.source)
        .map_err(|e| exit::fail(&e, e.kind()))?
    {
        Location::File(source) => {
            let read =
                distroless_pack_ship::read_back(&source).map_err(|e| exit::reading(&source, e))?;
            let image = read
                .artifact
                .image_for(args.platform.as_ref())
                .map_err(|e| anyhow::anyhow!("{source}: {e}"))
                .code(exit::USAGE)?;
            let (found, types) = distroless_pack_ship::attached_document(image, wanted)
                .map_err(|e| exit::reading(&source, e))?;
            found.ok_or_else(|| none(types))
        }
        Location::Registry(reference) => {
            let opts = args.registry.push_options()?;
            let (found, types) =
                pull::attached_document(&reference, args.platform.as_ref(), wanted, &opts)
                    .map_err(|e| exit::fail(format!("reading {reference}: {e}"), e.kind()))?;
            found.ok_or_else(|| none(types))
        }
    }
}

/// The document to `--output FILE` (through a temp file) or standard output.
fn write_out(args: &Args, mut bytes: Vec<u8>) -> anyhow::Result<u8> {
    match &args.output {
        Some(f) => {
            distroless_pack_pipeline::attest::write_file(f, &bytes)
                .map_err(crate::report::pipeline)?;
        }
        None => {
            bytes.push(b'\n');
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|_| out.flush())
                .code(exit::OUTPUT)?;
        }
    }
    Ok(exit::OK)
}
