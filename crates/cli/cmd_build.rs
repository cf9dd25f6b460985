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

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use distroless_pack_compile::config::{Config, Globalization, OpenSsl, PathOrBool};
use distroless_pack_compile::{self as build, BuildError, Built, ErrorClass, Kind, RunnerChoice};
use distroless_pack_image::{Artifact, Index, Platform};
use distroless_pack_verify::Severity;

use crate::cmd_pack::{self, Target};
use crate::exit::{self, WithCode};
use crate::image_args::{self, ImageArgs};
use crate::outputs::OutputArgs;
use crate::progress::Stage;

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

    /// Container engine for the builder: docker or podman (default: the
    /// first that answers).
    #[arg(long, value_name = "ENGINE", help_heading = "Build")]
    pub engine: Option<String>,

    /// Platform to build for (linux/amd64 or linux/arm64). Repeatable: several
    /// give one image per platform under an index. Default: `platforms` in
    /// distroless-pack.toml, else this machine's.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH",
        value_delimiter = ',',
        help_heading = "Build"
    )]
    pub platforms: Vec<Platform>,

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

    /// Pack even when verify would refuse the binary.
    #[arg(long)]
    pub no_verify: bool,

    /// Print a JSON summary on stdout (digest, binary size, findings,
    /// outputs) instead of the digest; no progress lines.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub smoke: crate::cmd_run::SmokeArgs,
}

fn build_error(e: BuildError) -> anyhow::Error {
    let code = match e.class() {
        ErrorClass::Usage => exit::USAGE,
        ErrorClass::Build => exit::BUILD,
        ErrorClass::Engine => exit::ENGINE,
    };
    exit::tag(anyhow::Error::new(e), code)
}

/// Loads the configuration and lays the flags over it.
fn merged_config(args: &Args) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let (mut cfg, file) = match &args.config {
        Some(f) => (Config::load(f).map_err(build_error)?, Some(f.clone())),
        None => Config::load_dir(&args.dir).map_err(build_error)?,
    };
    if args.kind.is_some() {
        cfg.kind = args.kind;
    }
    if args.runner.is_some() {
        cfg.runner = args.runner;
    }
    if args.builder_image.is_some() {
        cfg.builder_image = args.builder_image.clone();
    }
    if args.engine.is_some() {
        cfg.engine = args.engine.clone();
    }
    if args.bin.is_some() {
        cfg.binary = args.bin.clone();
    }
    if args.go_package.is_some() {
        cfg.go.get_or_insert_with(Default::default).package = args.go_package.clone();
    }
    if args.offline {
        cfg.offline = Some(true);
    }
    if let Some(p) = &args.save_debug {
        cfg.save_debug = Some(std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    }
    let d = cfg.dotnet.get_or_insert_with(Default::default);
    if let Some(p) = &args.nuget_source {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        d.source = Some(abs.display().to_string());
    }
    if args.project.is_some() {
        d.project = args.project.clone();
    }
    if args.globalization.is_some() {
        d.globalization = args.globalization;
    }
    if args.openssl.is_some() {
        d.openssl = args.openssl;
    }
    if args.no_pie {
        d.pie = Some(false);
    }
    Ok((cfg, file))
}

/// The image options: flags, then the config file for whatever no flag set.
fn merged_image_args(flags: &ImageArgs, cfg: &Config, dir: &Path) -> ImageArgs {
    let mut a = flags.clone();
    let rel = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    if a.tags.is_empty() {
        if let Some(name) = &cfg.name {
            let tags = cfg
                .tags
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| vec!["latest".into()]);
            a.tags = tags.iter().map(|t| format!("{name}:{t}")).collect();
        }
    }
    if a.path.is_none() {
        a.path = cfg.path.clone();
    }
    if a.workdir.is_none() {
        a.workdir = cfg.workdir.clone();
    }
    if let Some(u) = &cfg.user {
        if a.user == distroless_pack_assemble::NONROOT_USER {
            a.user = u.clone();
        }
    }
    if a.ports.is_empty() {
        a.ports = cfg.ports.clone().unwrap_or_default();
    }
    // KEY=VALUE lists: the config's entries first, then the flags; a key
    // given by a flag drops the config's entry for it.
    let merge_kv = |from: &Option<BTreeMap<String, String>>, flags: &mut Vec<String>| {
        if let Some(m) = from {
            let set: Vec<String> = flags
                .iter()
                .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
                .collect();
            let mut merged: Vec<String> = m
                .iter()
                .filter(|(k, _)| !set.contains(k))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            merged.append(flags);
            *flags = merged;
        }
    };
    merge_kv(&cfg.env, &mut a.env);
    merge_kv(&cfg.labels, &mut a.labels);
    merge_kv(&cfg.annotations, &mut a.annotations);
    if a.args.is_empty() {
        a.args = cfg.args.clone().unwrap_or_default();
    }
    if let Some(x) = &cfg.extras {
        if a.icu_data.is_none() {
            a.icu_data = x.icu_data.as_deref().map(rel);
        }
        if a.ca_certs.is_none() {
            a.ca_certs = match &x.ca_certs {
                Some(PathOrBool::Bool(true)) => Some(PathBuf::from(image_args::HOST_CA_BUNDLE)),
                Some(PathOrBool::Path(p)) => Some(rel(p)),
                _ => None,
            };
        }
        if a.tzdata.is_none() && x.tzdata == Some(true) {
            a.tzdata = Some(PathBuf::from(image_args::HOST_ZONEINFO));
        }
        if !a.passwd && x.passwd == Some(true) {
            a.passwd = true;
        }
    }
    a
}

fn platforms(args: &Args, cfg: &Config, file: Option<&Path>) -> anyhow::Result<Vec<Platform>> {
    if !args.platforms.is_empty() {
        return Ok(args.platforms.clone());
    }
    match &cfg.platforms {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|p| {
                p.parse::<Platform>().map_err(|e| {
                    anyhow::anyhow!(
                        "{}: platforms: {e}",
                        file.map(|f| f.display().to_string()).unwrap_or_default()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .code(exit::USAGE),
        _ => Ok(vec![Platform::host()]),
    }
}

fn dry_run(args: &Args, cfg: &Config, platforms: &[Platform]) -> anyhow::Result<u8> {
    let runner = build::Runner::resolve(cfg).map_err(build_error)?;
    let mut docs = Vec::new();
    for p in platforms {
        let req = build::Request {
            dir: args.dir.clone(),
            config: cfg.clone(),
            platform: p.clone(),
            stream_output: false,
        };
        let (kind, plan) = build::plan_for(&req, runner.is_container()).map_err(build_error)?;
        docs.push(serde_json::json!({
            "platform": p.to_string(),
            "kind": kind.as_str(),
            "runner": runner.describe(),
            "command": plan.steps.iter().map(|s| s.cmd.words()).collect::<Vec<_>>(),
            "env": plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "script": plan.script(cfg.pre_build.as_deref()),
            "files": plan.files.iter().map(|(n, c)| serde_json::json!({"name": n, "contents": c})).collect::<Vec<_>>(),
            "notes": plan.notes,
        }));
    }
    if args.json {
        cmd_pack::print_json(
            &serde_json::json!({ "schema_version": 1, "dry_run": true, "builds": docs }),
        )?;
    } else {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        for d in &docs {
            writeln!(
                out,
                "# {} build for {} ({})",
                d["kind"].as_str().unwrap_or(""),
                d["platform"].as_str().unwrap_or(""),
                d["runner"].as_str().unwrap_or("")
            )
            .code(exit::OUTPUT)?;
            for f in d["files"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "# generated file {}:",
                    f["name"].as_str().unwrap_or("")
                )
                .code(exit::OUTPUT)?;
                for l in f["contents"].as_str().unwrap_or("").lines() {
                    writeln!(out, "#   {l}").code(exit::OUTPUT)?;
                }
            }
            write!(out, "{}", d["script"].as_str().unwrap_or("")).code(exit::OUTPUT)?;
        }
    }
    Ok(exit::OK)
}

fn run_build(req: &build::Request, quiet: bool, verbose: bool) -> anyhow::Result<Built> {
    let stage = Stage::start(
        "build",
        &format!("{} for {}", req.dir.display(), req.platform),
        quiet,
    );
    match build::build(req) {
        Ok(b) => {
            let size = std::fs::metadata(&b.binary).map(|m| m.len()).unwrap_or(0);
            if !quiet {
                for n in &b.notes {
                    let _ = writeln!(io::stderr(), "note: {n}");
                }
            }
            stage.done(&format!(
                "{} {} ({}) with {}",
                b.kind,
                b.name,
                cmd_pack::human(size),
                b.runner
            ));
            Ok(b)
        }
        Err(e) => {
            if let Some(output) = e.build_output() {
                if !verbose && !output.trim().is_empty() {
                    let mut err = io::stderr();
                    let _ = writeln!(err, "---- build output ----");
                    let _ = err.write_all(output.as_bytes());
                    if !output.ends_with('\n') {
                        let _ = writeln!(err);
                    }
                    let _ = writeln!(err, "---- end of build output ----");
                }
            }
            let code = match e.class() {
                ErrorClass::Usage => exit::USAGE,
                ErrorClass::Build => exit::BUILD,
                ErrorClass::Engine => exit::ENGINE,
            };
            // Name the project unless the message already does.
            let dir = req.dir.display().to_string();
            let err = if e.to_string().contains(&dir) {
                anyhow::Error::new(e)
            } else {
                anyhow::Error::new(e).context(dir)
            };
            Err(exit::tag(err, code))
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let quiet = args.json;
    let (cfg, cfg_file) = merged_config(&args)?;
    let mut platforms = platforms(&args, &cfg, cfg_file.as_deref())?;
    // A fixed order, so the index digest does not depend on the flags' order.
    platforms.sort();
    platforms.dedup();
    if args.dry_run {
        return dry_run(&args, &cfg, &platforms);
    }
    let image = merged_image_args(&args.image, &cfg, &args.dir);

    // Build every platform first: a failed build leaves no output at all.
    let mut builds = Vec::new();
    for p in &platforms {
        let req = build::Request {
            dir: args.dir.clone(),
            config: cfg.clone(),
            platform: p.clone(),
            stream_output: args.verbose && !quiet,
        };
        match run_build(&req, quiet, args.verbose && !quiet) {
            Ok(b) => builds.push((p.clone(), b)),
            Err(e) => {
                if args.json {
                    // CI gets a document on stdout too; the error line still goes to stderr.
                    cmd_pack::print_json(&serde_json::json!({
                        "schema_version": 1,
                        "built": false,
                        "packed": false,
                        "platform": p.to_string(),
                        "error": format!("{e:#}").replace('\n', " "),
                    }))?;
                }
                return Err(e);
            }
        }
    }

    let mut image = image;
    if image.icu_data.is_none() {
        image.icu_data = builds.iter().find_map(|(_, b)| b.icu_data.clone());
    }
    let names = image.names(&builds[0].1.binary)?;
    let temp_dir = cmd_pack::temp_dir_for(&args.output);
    let mut packed = Vec::new();
    for (p, b) in &builds {
        let t = Target {
            platform: p.clone(),
            binary: b.binary.clone(),
        };
        match cmd_pack::pack_one(&t, &image, args.no_verify, &temp_dir, quiet)? {
            Ok(pk) => packed.push(pk),
            Err(report) => {
                if args.json {
                    cmd_pack::print_json(&serde_json::json!({
                        "schema_version": 1,
                        "built": true,
                        "packed": false,
                        "binary": b.name,
                        "platform": p.to_string(),
                        "findings": report.to_json(),
                    }))?;
                }
                let errors = report.count(Severity::Error);
                return Err(anyhow::anyhow!(
                    "{}: the built binary {} has {errors} verify error{} for {p}; nothing was packed (--no-verify packs it anyway){}",
                    args.dir.display(),
                    b.name,
                    if errors == 1 { "" } else { "s" },
                    b.hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default(),
                ))
                .code(exit::FINDINGS);
            }
        }
    }

    if let Some(dir) = cfg.save_debug.as_ref().map(|p| args.dir.join(p)) {
        std::fs::create_dir_all(&dir)
            .with_context(|| dir.display().to_string())
            .code(exit::OUTPUT)?;
        for (p, b) in &builds {
            if let Some(dbg) = &b.debug_symbols {
                let ext = dbg.extension().and_then(|e| e.to_str()).unwrap_or("dbg");
                let name = if builds.len() > 1 {
                    format!("{}-{}.{ext}", b.name, p.architecture)
                } else {
                    format!("{}.{ext}", b.name)
                };
                let dest = dir.join(name);
                std::fs::copy(dbg, &dest)
                    .with_context(|| dest.display().to_string())
                    .code(exit::OUTPUT)?;
            }
        }
    }

    let artifact = if packed.len() == 1 {
        Artifact::Image(packed[0].image.clone())
    } else {
        let images = packed.iter().map(|p| p.image.clone()).collect();
        Artifact::Index(Index::new(images, &Default::default()).code(exit::USAGE)?)
    };
    args.smoke.check(&artifact, quiet)?;
    let shipped = cmd_pack::ship_all(&artifact, &names, &args.output, quiet)?;
    if !args.output.any() && !quiet {
        let _ = writeln!(io::stderr(), "note: no --output, --load or --push given: the image was built and nothing was written");
    }

    if args.json {
        let images: Vec<serde_json::Value> = packed
            .iter()
            .zip(&builds)
            .map(|(pk, (p, b))| {
                serde_json::json!({
                    "platform": p.to_string(),
                    "digest": pk.image.digest().to_string(),
                    "size": cmd_pack::image_size(&pk.image),
                    "binary": {
                        "name": b.name,
                        "size": std::fs::metadata(&b.binary).map(|m| m.len()).unwrap_or(0),
                        "debug_symbols": b.debug_symbols.is_some(),
                        "unstripped_size": b.unstripped_size,
                    },
                    "build": {
                        "kind": b.kind.as_str(),
                        "runner": b.runner,
                        "command": b.command,
                        "notes": b.notes,
                        "inputs": b.inputs,
                    },
                    "verified": pk.report.is_some(),
                    "findings": pk.report.as_ref().map(|r| r.to_json()),
                })
            })
            .collect();
        cmd_pack::print_json(&serde_json::json!({
            "schema_version": 1,
            "built": true,
            "packed": true,
            "digest": artifact.digest().to_string(),
            "name": names[0].full(),
            "tags": names.iter().map(|n| n.full()).collect::<Vec<_>>(),
            "kind": builds[0].1.kind.as_str(),
            "binary_size": builds.iter().map(|(_, b)| std::fs::metadata(&b.binary).map(|m| m.len()).unwrap_or(0)).sum::<u64>(),
            "images": images,
            "outputs": shipped,
        }))?;
    } else {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        writeln!(out, "{}", artifact.digest()).code(exit::OUTPUT)?;
        out.flush().code(exit::OUTPUT)?;
    }
    Ok(exit::OK)
}
