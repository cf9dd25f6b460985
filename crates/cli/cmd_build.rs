//! `distroless-pack build [DIR] [--tag NAME:TAG] [--output SINK|--load|--push REF] [options] [-- ARGS...]`:
//! compiles a project (dotnet, cargo, go, c) into one static executable, in
//! the builder container or on the host, then does exactly what `pack` does
//! with it (verify, assemble, ship).
//!
//! Settings come from `DIR/distroless-pack.toml` (see docs/config.md);
//! flags override it. Stdout gets the image digest (or, with `--json`, a
//! summary); progress, notes and, on failure, the compiler's output go to
//! stderr. Exit status: 0 built, 1 verify found errors, 2 usage or
//! configuration, 3 the build failed or a tool is missing, 6 engine,
//! 8 output.

use std::path::PathBuf;

use distroless_pack_compile::config::{Globalization, Libc, OpenSsl};
use distroless_pack_compile::{Kind, RunnerChoice};
use distroless_pack_image::{expand_choices, PlatformChoice};
use distroless_pack_pipeline::settings::{self, BuildFlags};
use distroless_pack_pipeline::{build, PipelineError};

use crate::args::{AttestArgs, EngineName, ImageArgs, Mode, OutputArgs, SmokeArgs};
use crate::exit;
use crate::progress::Progress;
use crate::{dry_run, report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The project directory (default: the current directory).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Project kind: dotnet, cargo, go or c. Default: detected from DIR
    /// (*.csproj, Cargo.toml, go.mod, CMakeLists.txt or Makefile).
    #[arg(long, value_name = "KIND", help_heading = "Build")]
    pub kind: Option<Kind>,

    /// Where to compile: `container` (the builder image, with docker or
    /// podman), `host` (local toolchains) or `auto` (container when an
    /// engine answers, else host). Default: auto.
    #[arg(long, value_name = "RUNNER", help_heading = "Build")]
    pub runner: Option<RunnerChoice>,

    /// Builder image for `--runner container` (default: built from
    /// Dockerfile.alpine-builder on first use).
    #[arg(long, value_name = "IMAGE", help_heading = "Build")]
    pub builder_image: Option<String>,

    /// Container engine for the builder (default: the first that answers).
    #[arg(long, value_name = "ENGINE", help_heading = "Build")]
    pub engine: Option<EngineName>,

    /// Platform to build for (linux/amd64 or linux/arm64; `all` for both).
    /// Repeatable: several give one image per platform under an index.
    /// Default: `platforms` in distroless-pack.toml, else this machine's.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH",
        value_delimiter = ',',
        help_heading = "Build"
    )]
    pub platforms: Vec<PlatformChoice>,

    /// The executable to pack when the build makes several (cargo --bin,
    /// the Go output name, the file name for make/CMake).
    #[arg(long = "bin", value_name = "NAME", help_heading = "Build")]
    pub bin: Option<String>,

    /// Configuration file (default: DIR/distroless-pack.toml when present).
    #[arg(long, value_name = "FILE", help_heading = "Build")]
    pub config: Option<PathBuf>,

    /// .NET: the project file when DIR holds several.
    #[arg(long, value_name = "FILE", help_heading = ".NET")]
    pub project: Option<String>,

    /// .NET globalization: invariant (default), static-icu (ICU linked, data
    /// embedded; .NET 10+) or icu-file (ICU linked, .dat shipped in the image).
    #[arg(long, value_name = "MODE", help_heading = ".NET")]
    pub globalization: Option<Globalization>,

    /// .NET OpenSSL: auto (static when the app uses TLS/crypto), static, off.
    #[arg(long, value_name = "MODE", help_heading = ".NET")]
    pub openssl: Option<OpenSsl>,

    /// .NET: link -static instead of -static-pie
    /// (PositionIndependentExecutable=false; dotnet/runtime#81086).
    #[arg(long, help_heading = ".NET")]
    pub no_pie: bool,

    /// .NET: the C library, musl (RID linux-musl-*) or glibc (linux-*).
    /// Default: musl in the builder container, the host's own with
    /// `--runner host`.
    #[arg(long, value_name = "LIBC", help_heading = ".NET")]
    pub libc: Option<Libc>,

    /// Go: the main package (default `.`, or the one `cmd/*`).
    #[arg(long, value_name = "PKG", help_heading = "Build")]
    pub go_package: Option<String>,

    /// Keep the debug info the image never gets: NAME.debug (cargo, C: the
    /// binary is stripped and linked to it) or NAME.dbg (.NET), copied to DIR.
    #[arg(long, value_name = "DIR", help_heading = "Build")]
    pub save_debug: Option<PathBuf>,

    /// Build from local inputs only (cargo --offline --locked, Go vendor/ or
    /// GOPROXY=off, .NET from --nuget-source; no network in the container).
    #[arg(long, help_heading = "Build")]
    pub offline: bool,

    /// .NET: a local NuGet feed folder, restore's only source.
    #[arg(long, value_name = "DIR", help_heading = ".NET")]
    pub nuget_source: Option<PathBuf>,

    /// Show the compiler's output while it runs (it is always shown on failure).
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Print the build script (and generated files) that would run, and stop.
    #[arg(long)]
    pub dry_run: bool,

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
    let flags = BuildFlags {
        kind: args.kind,
        runner: args.runner,
        builder_image: args.builder_image.clone(),
        engine: args.engine.map(|e| e.as_str().to_string()),
        bin: args.bin.clone(),
        project: args.project.clone(),
        globalization: args.globalization,
        openssl: args.openssl,
        no_pie: args.no_pie,
        libc: args.libc,
        go_package: args.go_package.clone(),
        offline: args.offline,
        save_debug: args.save_debug.clone(),
        nuget_source: args.nuget_source.clone(),
    };
    let (cfg, cfg_file) = settings::build_config(&args.dir, args.config.as_deref(), &flags)
        .map_err(|e| exit::fail(&e, e.kind()))?;
    let platforms = settings::platforms(
        &expand_choices(&args.platforms),
        Some((&cfg, cfg_file.as_deref())),
    )
    .map_err(report::pipeline)?;
    if args.dry_run {
        return dry_run::print(&args.dir, &cfg.build_keys(), &platforms, args.mode.json);
    }
    let image = settings::image_settings(&args.image.flags(), Some((&cfg, &args.dir)))
        .map_err(report::pipeline)?;
    let save_debug = cfg.save_debug.as_ref().map(|p| args.dir.join(p));
    let req = build::Request {
        dir: args.dir.clone(),
        config: cfg.build_keys(),
        platforms,
        image,
        verify: !args.mode.no_verify,
        stream_output: args.verbose && !quiet,
        save_debug,
        smoke: args.smoke.settings()?,
        outputs: args.output.outputs(args.mode.json)?,
        attest: settings::attest(&args.attest.flags(), Some(&cfg)).map_err(report::pipeline)?,
    };
    let progress = Progress::new(quiet);
    let result = match build::build(&req, &progress) {
        Ok(r) => r,
        Err(e) => {
            if let PipelineError::Compile { source, .. } = &e {
                if !req.stream_output {
                    report::print_build_output(source.build_output());
                }
            }
            return Err(report::failed(e, quiet, true));
        }
    };
    drop(progress);
    report::print_result(&result.packed, &req.outputs, quiet, || {
        report::build_json(&result)
    })
}
