//! `distroless-pack pack FILE [--tag NAME:TAG] [--output SINK]... [options] [-- ARGS...]`:
//! verifies a static executable, wraps it in a reproducible FROM-scratch
//! image and ships it to every output.
//!
//! Stdout gets the image digest (or, with `--json`, a summary document);
//! progress and findings go to stderr. Exit status: 0 packed, 1 verify found
//! errors (nothing written), 2 bad input or usage, 6 engine, 7 the
//! `--smoke` run failed (nothing written), 8 output.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use distroless_pack_image::{Artifact, Image, Index, Platform};
use distroless_pack_verify::{platform_of, verify_file, Report, Severity};

use crate::cmd_verify;
use crate::exit::{self, WithCode};
use crate::image_args::ImageArgs;
use crate::outputs::{self, OutputArgs, ShippedOutput};
use crate::progress::Stage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The static executable to pack.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Platform of the image (linux/amd64 or linux/arm64); the binary is
    /// verified against it. Default: this machine's. Several
    /// (`linux/amd64,linux/arm64`, or repeated) make one image per platform
    /// under an OCI index, each with its own binary (`--binary`).
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<Platform>,

    /// The binary for one platform, PLATFORM=PATH (e.g.
    /// `linux/arm64=build/arm64/app`). Repeatable. Platforms without one
    /// get FILE. Each binary is verified against its own platform.
    #[arg(long = "binary", value_name = "PLATFORM=PATH")]
    pub binaries: Vec<String>,

    /// Pack even when verify would refuse the binary: verify is skipped
    /// (a warning says so) and os/arch come from the ELF header.
    #[arg(long)]
    pub no_verify: bool,

    /// Print a JSON summary on stdout (digest, size, platform, layers,
    /// findings, outputs) instead of the digest; no progress lines.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub image: ImageArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub smoke: crate::cmd_run::SmokeArgs,
}

/// One binary to pack and the platform it is for. Several (`--platform
/// A,B`, `--binary PLATFORM=PATH`; see [`targets`]) put the images under
/// one index, in this order.
#[derive(Clone, Debug)]
pub struct Target {
    pub platform: Platform,
    pub binary: PathBuf,
}

/// What packing one target gave.
pub struct Packed {
    pub image: Image,
    pub report: Option<Report>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let quiet = args.json;
    let targets = targets(&args.file, &args.platforms, &args.binaries)?;
    let names = args.image.names(&args.file)?;
    // One entrypoint for every platform: the path FILE would get.
    let mut image_args = args.image.clone();
    if targets.len() > 1 && image_args.path.is_none() {
        image_args.path = Some(distroless_pack_assemble::ImageSpec::new(&args.file).path);
    }
    let temp_dir = temp_dir_for(&args.output);

    let mut packed = Vec::new();
    for t in &targets {
        match pack_one(t, &image_args, args.no_verify, &temp_dir, quiet)? {
            Ok(p) => packed.push(p),
            Err(report) => {
                // Refused: the findings are the output.
                if args.json {
                    let doc = serde_json::json!({
                        "schema_version": 1,
                        "packed": false,
                        "file": t.binary.display().to_string(),
                        "platform": t.platform.to_string(),
                        "findings": report.to_json(),
                    });
                    print_json(&doc)?;
                }
                let errors = report.count(Severity::Error);
                return Err(anyhow::anyhow!(
                    "{}: verify found {errors} error{} for {}; nothing was packed (--no-verify packs it anyway)",
                    t.binary.display(),
                    if errors == 1 { "" } else { "s" },
                    t.platform
                ))
                .code(exit::FINDINGS);
            }
        }
    }

    if targets.len() > 1 {
        // Only --no-verify gets here with a binary of the wrong platform.
        for (t, p) in targets.iter().zip(&packed) {
            if p.image.platform.architecture != t.platform.architecture {
                return Err(anyhow::anyhow!(
                    "{}: is a {} binary, given for {}; give each platform its own binary with --binary {}=PATH",
                    t.binary.display(),
                    p.image.platform,
                    t.platform,
                    t.platform
                ))
                .code(exit::USAGE);
            }
        }
    }

    let artifact = if packed.len() == 1 {
        Artifact::Image(packed[0].image.clone())
    } else {
        let images = packed.iter().map(|p| p.image.clone()).collect();
        Artifact::Index(Index::new(images, &Default::default()).code(exit::USAGE)?)
    };

    // Before any output is written.
    args.smoke.check(&artifact, quiet)?;
    let shipped = ship_all(&artifact, &names, &args.output, quiet)?;
    if !args.output.any() && !quiet {
        let _ = writeln!(io::stderr(), "note: no --output, --load or --push given: the image was built and nothing was written");
    }

    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let images: Vec<serde_json::Value> = packed
            .iter()
            .map(|p| {
                let img = &p.image;
                serde_json::json!({
                    "digest": img.digest().to_string(),
                    "platform": img.platform.to_string(),
                    "size": image_size(img),
                    "config": img.config.digest.to_string(),
                    "layers": img.layers.iter().map(|l| serde_json::json!({
                        "digest": l.digest.to_string(),
                        "size": l.size,
                        "media_type": l.media_type,
                    })).collect::<Vec<_>>(),
                    "findings": p.report.as_ref().map(|r| r.to_json()),
                    "verified": p.report.is_some(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schema_version": 1,
            "packed": true,
            "digest": artifact.digest().to_string(),
            "name": names[0].full(),
            "tags": names.iter().map(|n| n.full()).collect::<Vec<_>>(),
            "media_type": artifact.top().media_type,
            "size": artifact.images().iter().map(image_size).sum::<u64>(),
            "platform": packed.first().map(|p| p.image.platform.to_string()),
            "images": images,
            "outputs": shipped,
        });
        drop(out);
        print_json(&doc)?;
    } else {
        writeln!(out, "{}", artifact.digest()).code(exit::OUTPUT)?;
        out.flush().code(exit::OUTPUT)?;
    }
    Ok(exit::OK)
}

/// The binary for each platform: `--binary PLATFORM=PATH`, else FILE;
/// platforms from `--platform`, else this machine's plus those `--binary`
/// names. Sorted by platform, so the index (and its digest) does not depend
/// on the order of the flags.
pub fn targets(
    file: &Path,
    platforms: &[Platform],
    binaries: &[String],
) -> anyhow::Result<Vec<Target>> {
    let mut given: Vec<(Platform, PathBuf)> = Vec::new();
    for b in binaries {
        let (p, path) = b
            .split_once('=')
            .filter(|(p, path)| !p.is_empty() && !path.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid --binary {b:?}: expected PLATFORM=PATH, e.g. linux/arm64=./app-arm64"
                )
            })
            .code(exit::USAGE)?;
        let p: Platform = p
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid --binary {b:?}: {e}"))
            .code(exit::USAGE)?;
        if given.iter().any(|(q, _)| *q == p) {
            return Err(anyhow::anyhow!("--binary is given twice for {p}")).code(exit::USAGE);
        }
        given.push((p, PathBuf::from(path)));
    }
    let mut list: Vec<Platform> = if platforms.is_empty() {
        std::iter::once(Platform::host())
            .chain(given.iter().map(|(p, _)| p.clone()))
            .collect()
    } else {
        for (p, _) in &given {
            if !platforms.contains(p) {
                return Err(anyhow::anyhow!(
                    "--binary {p}=... names a platform that --platform does not list ({})",
                    platforms
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ))
                .code(exit::USAGE);
            }
        }
        platforms.to_vec()
    };
    list.sort();
    list.dedup();
    Ok(list
        .into_iter()
        .map(|platform| {
            let binary = given
                .iter()
                .find(|(p, _)| *p == platform)
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| file.to_path_buf());
            Target { platform, binary }
        })
        .collect())
}

/// Ships `artifact` to every output under the first name, then adds the
/// further names as refs in each `oci:DIR` output that named no tag.
/// (Shared with `build`.)
pub fn ship_all(
    artifact: &Artifact,
    names: &[crate::image_args::ImageName],
    output: &OutputArgs,
    quiet: bool,
) -> anyhow::Result<Vec<ShippedOutput>> {
    // A docker archive holds one platform: refuse an index before anything
    // is written, rather than after the other outputs.
    if let Artifact::Index(index) = artifact {
        if let Some(sink) = output
            .outputs
            .iter()
            .find(|s| matches!(s, distroless_pack_ship::Sink::DockerArchive { .. }))
        {
            let platforms: Vec<String> = index
                .images
                .iter()
                .map(|i| i.platform.to_string())
                .collect();
            return Err(anyhow::anyhow!(
                "{sink}: a docker archive holds a single platform but the image has {}; pack one platform for it (--platform {}) or write oci: / oci-archive:",
                platforms.join(", "),
                platforms.first().map(String::as_str).unwrap_or("linux/amd64")
            ))
            .code(exit::USAGE);
        }
    }
    let mut shipped: Vec<ShippedOutput> = outputs::ship(artifact, output, &names[0].full(), quiet)?;
    for extra in names.iter().skip(1) {
        let mut more = output.clone();
        more.outputs
            .retain(|s| matches!(s, distroless_pack_ship::Sink::OciLayout { tag: None, .. }));
        more.load = None;
        more.push.clear();
        more.digest_file = None;
        if !more.outputs.is_empty() {
            shipped.extend(outputs::ship(artifact, &more, &extra.full(), quiet)?);
        }
    }
    Ok(shipped)
}

/// Verifies (unless `no_verify`) and assembles one target. `Ok(Err(report))`
/// means verify refused it (and nothing was kept).
///
/// Verify and the layer writer both read the whole binary, so they run at
/// the same time: the image is assembled while the verifier reads, and is
/// dropped (its temp files with it) if the verdict is a refusal.
pub fn pack_one(
    t: &Target,
    image: &ImageArgs,
    no_verify: bool,
    temp_dir: &Path,
    quiet: bool,
) -> anyhow::Result<Result<Packed, Report>> {
    if no_verify {
        let elf_platform = elf_header_platform(&t.binary).code(exit::USAGE)?;
        let _ = writeln!(
            io::stderr(),
            "warning: --no-verify: {} was not checked; it may not start in a scratch image (run `distroless-pack verify {}`)",
            t.binary.display(),
            t.binary.display()
        );
        let platform = keep_variant(
            elf_platform.unwrap_or_else(|| t.platform.clone()),
            &t.platform,
        );
        let spec = image.to_spec(&t.binary, &platform, temp_dir)?;
        let stage = pack_stage(t, &spec, quiet);
        let img = assemble(&spec)?;
        pack_done(stage, &img);
        return Ok(Ok(Packed {
            image: img,
            report: None,
        }));
    }

    // Assemble alongside verify only when the ELF header already says the
    // binary is for the platform asked for (else verify refuses it anyway).
    let header = elf_header_platform(&t.binary).ok().flatten();
    let concurrent =
        header.is_some_and(|h| h.os == t.platform.os && h.architecture == t.platform.architecture);
    let spec = image.to_spec(&t.binary, &t.platform, temp_dir)?;
    let vstage = Stage::start(
        "verify",
        &format!("{} for {}", t.binary.display(), t.platform),
        quiet,
    );
    let started = std::time::Instant::now();
    let (verified, packed) = std::thread::scope(|s| {
        let verifier = s.spawn(|| verify_file(&t.binary, &t.platform));
        let packed = concurrent.then(|| distroless_pack_assemble::assemble(&spec));
        let verified = verifier
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (verified, packed)
    });
    let pack_time = started.elapsed();

    // The message already names the file and the cause: no chain.
    let report = verified
        .map_err(|e| anyhow::anyhow!("{e}"))
        .code(exit::USAGE)?;
    if report.has_errors() {
        if !quiet {
            let _ = cmd_verify::print_report(&report, &mut io::stderr());
        }
        return Ok(Err(report));
    }
    let warnings = report.count(Severity::Warning);
    if warnings > 0 && !quiet {
        let _ = cmd_verify::print_report(&report, &mut io::stderr());
    }
    vstage.done(&format!(
        "{}: {}{}",
        t.binary.display(),
        report.verdict(),
        if warnings > 0 {
            format!(
                " ({warnings} warning{})",
                if warnings == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ));

    // The one decision where verify and assemble meet: what the kind of
    // program needs besides the binary (docs/dotnet.md).
    let runtime = runtime_defaults(&report, image);
    let img = match packed {
        Some(result) if runtime == spec.runtime => {
            // Packed while verify ran: report it now, with the time both took.
            let img = result.map_err(assemble_error)?;
            if !quiet {
                let _ = writeln!(
                    io::stderr(),
                    "[{:>6}] {} -> {} ({})\n[{:>6}] {} ({:.2}s, alongside verify)",
                    "pack",
                    t.binary.display(),
                    spec.path,
                    spec.platform,
                    "pack",
                    pack_summary(&img),
                    pack_time.as_secs_f64()
                );
            }
            img
        }
        _ => {
            let platform = keep_variant(platform_of(&report), &t.platform);
            let spec = image
                .to_spec(&t.binary, &platform, temp_dir)?
                .runtime_defaults(runtime);
            let stage = pack_stage(t, &spec, quiet);
            let img = assemble(&spec)?;
            pack_done(stage, &img);
            img
        }
    };
    Ok(Ok(Packed {
        image: img,
        report: Some(report),
    }))
}

/// The runtime defaults for the binary verify described: NativeAOT gets
/// its passwd entry and /tmp unless `--no-runtime-defaults`.
fn runtime_defaults(
    report: &Report,
    image: &ImageArgs,
) -> distroless_pack_assemble::RuntimeDefaults {
    use distroless_pack_assemble::RuntimeDefaults;
    match report.summary.toolchain {
        distroless_pack_verify::Toolchain::DotnetNativeaot if !image.no_runtime_defaults => {
            RuntimeDefaults::NativeAot
        }
        _ => RuntimeDefaults::None,
    }
}

/// The platform asked for (with its variant, e.g. linux/arm64/v8) when the
/// ELF's os/architecture agree with it, else the ELF's.
fn keep_variant(elf: Platform, asked: &Platform) -> Platform {
    if elf.os == asked.os && elf.architecture == asked.architecture {
        asked.clone()
    } else {
        elf
    }
}

fn pack_stage(t: &Target, spec: &distroless_pack_assemble::ImageSpec, quiet: bool) -> Stage {
    Stage::start(
        "pack",
        &format!(
            "{} -> {} ({})",
            t.binary.display(),
            spec.path,
            spec.platform
        ),
        quiet,
    )
}

fn pack_done(stage: Stage, img: &Image) {
    stage.done(&pack_summary(img));
}

fn pack_summary(img: &Image) -> String {
    format!(
        "{} ({} layer{}, {})",
        img.digest(),
        img.layers.len(),
        if img.layers.len() == 1 { "" } else { "s" },
        human(image_size(img))
    )
}

fn assemble(spec: &distroless_pack_assemble::ImageSpec) -> anyhow::Result<Image> {
    distroless_pack_assemble::assemble(spec).map_err(assemble_error)
}

/// Disk and permission problems writing the layer are output errors; the
/// rest (missing extras, bad options) are input errors. One line, no chain.
fn assemble_error(e: distroless_pack_assemble::AssembleError) -> anyhow::Error {
    use distroless_pack_assemble::AssembleError as E;
    let code = match &e {
        E::Write { .. } => exit::OUTPUT,
        _ => exit::USAGE,
    };
    exit::tag(anyhow::anyhow!("{e}"), code)
}

/// Compressed size of an image: config and layers (what a pull downloads
/// besides the manifest).
pub fn image_size(img: &Image) -> u64 {
    img.blobs().map(|b| b.size).sum()
}

pub fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub fn print_json(doc: &serde_json::Value) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, doc).code(exit::OUTPUT)?;
    writeln!(out).code(exit::OUTPUT)?;
    out.flush().code(exit::OUTPUT)
}

/// Where layer temp files go: the system temp directory ($TMPDIR), so an
/// interrupted run never leaves a stray file next to the outputs (the
/// outputs copy the blobs into place through their own temp files).
pub fn temp_dir_for(_outputs: &OutputArgs) -> PathBuf {
    std::env::temp_dir()
}

/// The platform the ELF header of `path` names (for `--no-verify`): an
/// error when it is not a readable ELF file, `None` for an architecture
/// images are not made for.
fn elf_header_platform(path: &Path) -> anyhow::Result<Option<Platform>> {
    let p = distroless_pack_verify::header_platform(path)?;
    Ok(matches!(p.architecture.as_str(), "amd64" | "arm64").then_some(p))
}
