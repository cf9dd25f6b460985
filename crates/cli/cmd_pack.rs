//! `distroless-pack pack FILE [--tag NAME:TAG] [--output SINK]... [options] [-- ARGS...]`:
//! verifies a static executable, wraps it in a reproducible FROM-scratch
//! image and ships it to every output.
//!
//! Stdout gets the image digest (then, for `--push`, each pushed
//! `NAME@sha256:...`), or with `--json` a summary document; progress and
//! findings go to stderr. Exit status: 0 packed, 1 verify found errors
//! (nothing written), 2 bad input or usage, 6 engine, 7 the `--smoke` run
//! failed (nothing written), 8 output.

use std::path::PathBuf;

use distroless_pack_image::{expand_choices, PlatformChoice};
use distroless_pack_pipeline::{pack, settings};

use crate::args::{AttestArgs, ImageArgs, Mode, OutputArgs, SmokeArgs};
use crate::progress::Progress;
use crate::report;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The static executable to pack (not needed when `--binary` gives one
    /// for every platform).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Platform of the image (linux/amd64 or linux/arm64); the binary is
    /// verified against it. Default: this machine's. Several
    /// (`linux/amd64,linux/arm64`, `all` for both, or repeated) make one
    /// image per platform under an OCI index, each with its own binary
    /// (`--binary`).
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<PlatformChoice>,

    /// The binary for one platform, PLATFORM=PATH (e.g.
    /// `linux/arm64=build/arm64/app`). Repeatable. Platforms without one
    /// get FILE. Each binary is verified against its own platform.
    #[arg(long = "binary", value_name = "PLATFORM=PATH")]
    pub binaries: Vec<String>,

    #[command(flatten)]
    pub mode: Mode,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub smoke: SmokeArgs,

    #[command(flatten)]
    pub attest: AttestArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let quiet = args.mode.json;
    let platforms = expand_choices(&args.platforms);
    let targets = pack::targets(args.file.as_deref(), &platforms, &args.binaries)
        .map_err(report::pipeline)?;
    let req = pack::Request {
        targets,
        image: settings::image_settings(&args.image.flags(), None).map_err(report::pipeline)?,
        verify: !args.mode.no_verify,
        smoke: args.smoke.settings()?,
        outputs: args.output.outputs(args.mode.json)?,
        attest: settings::attest(&args.attest.flags(), None).map_err(report::pipeline)?,
    };
    let progress = Progress::new(quiet);
    let result = pack::pack(&req, &progress).map_err(|e| report::failed(e, quiet, false))?;
    drop(progress);
    report::print_result(&result, &req.outputs, quiet, || report::pack_json(&result))
}
