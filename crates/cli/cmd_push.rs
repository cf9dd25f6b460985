//! `distroless-pack push SOURCE REF...`: pushes an existing image (OCI
//! layout, OCI archive or docker archive) to registries, unchanged (same
//! digests).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use distroless_pack_image::human_size;
use distroless_pack_pipeline::{Event, Observer};
use distroless_pack_ship::registry::{self, PushReport};
use distroless_pack_ship::ShipError;

use crate::args::{parse_targets, RegistryArgs};
use crate::exit::{self, WithCode};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to push: `oci:DIR[:TAG]`, `oci-archive:FILE`,
    /// `docker-archive:FILE`, or a bare path to one. It is pushed unchanged
    /// (same digests).
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// Where to push: `REGISTRY/REPO[:TAG]` (several: blobs go up once per
    /// registry and are mounted across repositories).
    #[arg(value_name = "REF", required = true)]
    pub refs: Vec<String>,

    /// Print a JSON report (per reference: digest, blobs uploaded, mounted,
    /// skipped) on stdout instead of `NAME@sha256:...` lines.
    #[arg(long)]
    pub json: bool,

    /// Write the pushed digest (`sha256:...`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,

    /// Blobs checked and uploaded at once, across every platform of an
    /// index (1-32; default 4, as crane).
    #[arg(
        long,
        short = 'j',
        value_name = "N",
        env = "DISTROLESS_PACK_PUSH_JOBS",
        value_parser = registry::parse_jobs
    )]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let targets = parse_targets(&args.refs)?;
    let mut opts = args.registry.push_options()?;
    opts.jobs = args.jobs.unwrap_or(opts.jobs);
    let source =
        distroless_pack_ship::parse_source(&args.source).map_err(|e| exit::fail(&e, e.kind()))?;
    let artifact = distroless_pack_ship::read(&source).map_err(|e| exit::reading(&source, e))?;
    let progress = Progress::new(args.json);
    let started = Instant::now();
    let report = registry::push(&artifact, &targets, &opts, &|ev| {
        progress.event(Event::Push(ev))
    })
    .map_err(|source| {
        let e = ShipError::Push {
            targets: args.refs.join(", "),
            source,
        };
        exit::fail(&e, e.kind())
    })?;
    let up: u64 = report.targets.iter().map(|t| t.bytes_uploaded).sum();
    progress.event(Event::Done {
        stage: "push",
        result: format!(
            "pushed {} to {} reference(s), {} uploaded",
            report.digest,
            report.targets.len(),
            human_size(up)
        ),
        took: started.elapsed(),
        alongside: false,
    });
    drop(progress);
    if let Some(f) = &args.digest_file {
        distroless_pack_ship::write_digest_file(f, &report.digest)
            .map_err(|e| exit::fail(&e, e.kind()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .code(exit::OUTPUT)?;
        writeln!(out).code(exit::OUTPUT)?;
    } else {
        print_pushed(&mut out, &report)?;
    }
    out.flush().code(exit::OUTPUT)?;
    Ok(exit::OK)
}

/// One `NAME@sha256:...` line per pushed repository.
fn print_pushed(out: &mut dyn Write, report: &PushReport) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    for t in &report.targets {
        if !seen.contains(&t.pushed) {
            writeln!(out, "{}", t.pushed).code(exit::OUTPUT)?;
            seen.push(t.pushed.clone());
        }
    }
    Ok(())
}
