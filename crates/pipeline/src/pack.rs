//! `pack`'s chain, which `build` shares after compiling: the binary of
//! each platform is verified while it is assembled, the images go under an
//! index when there are several, the smoke run runs them, and the one
//! [`Artifact`] goes to every output.

use std::path::{Path, PathBuf};
use std::time::Instant;

use distroless_pack_assemble::{self as assemble, ImageSpec};
use distroless_pack_image::{human_size, Artifact, Image, Index, Platform};
use distroless_pack_sbom as sbom;
use distroless_pack_ship::registry::PushOptions;
use distroless_pack_ship::{Output, Shipped, Sink, WriteOptions};
use distroless_pack_verify::{platform_of, verify_file, verify_file_tapped, Report, Severity};

use crate::attest::{self, Attested, BuiltWith};
use crate::settings::{Attest, ImageName, ImageSettings, Smoke};
use crate::{Event, Observer, PipelineError, Stage};

/// One binary to pack and the platform it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub platform: Platform,
    pub binary: PathBuf,
}

/// One packed image and verify's report (`None` with `--no-verify`).
#[derive(Clone, Debug)]
pub struct Packed {
    pub image: Image,
    pub report: Option<Report>,
    /// The image's regular files and where their bytes came from (what
    /// its SBOM describes, read there rather than from the layers).
    pub files: Vec<(String, sbom::FileSource)>,
    /// The binary, scanned for its SBOM while the layer was written (when
    /// documents are made).
    pub scanned: Option<std::sync::Arc<sbom::Binary>>,
}

/// The files assemble put in the image, as the SBOM reads them.
fn files_of(a: &assemble::Assembled) -> Vec<(String, sbom::FileSource)> {
    a.files
        .iter()
        .filter_map(|(path, content)| {
            let source = match content {
                assemble::layer::Content::File(p) => sbom::FileSource::Host(p.clone()),
                assemble::layer::Content::Bytes(b) => sbom::FileSource::Bytes(b.clone()),
                _ => return None,
            };
            Some((path.clone(), source))
        })
        .collect()
}

/// Where the image goes.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    pub list: Vec<Output>,
    /// `--digest-file`.
    pub digest_file: Option<PathBuf>,
    /// For the `--push` outputs.
    pub push: PushOptions,
}

impl Outputs {
    /// Whether any output was asked for.
    pub fn any(&self) -> bool {
        !self.list.is_empty()
    }

    /// Whether an archive goes to standard output (`docker-archive:-`).
    pub fn writes_stdout(&self) -> bool {
        self.list.iter().any(
            |o| matches!(o, Output::File(s) if distroless_pack_ship::sink::is_stdout(s.path())),
        )
    }

    /// At most one thing can go to standard output: one archive, or the
    /// JSON document (`json`).
    pub fn check_stdout(&self, json: bool) -> std::result::Result<(), PipelineError> {
        let n = self
            .list
            .iter()
            .filter(
                |o| matches!(o, Output::File(s) if distroless_pack_ship::sink::is_stdout(s.path())),
            )
            .count();
        if n > 1 || (n == 1 && json) {
            return Err(PipelineError::usage(
                "only one thing can go to standard output: one `-` archive, or --json",
            ));
        }
        Ok(())
    }
}

/// What `pack` (and `build`) made.
#[derive(Debug)]
pub struct Result {
    pub artifact: Artifact,
    pub packed: Vec<Packed>,
    pub names: Vec<ImageName>,
    pub shipped: Vec<Shipped>,
    /// Each image's SBOM and provenance, in the order of `packed`.
    pub attested: Vec<Attested>,
    /// The files `--sbom-output` wrote.
    pub sbom_files: Vec<PathBuf>,
}

/// Everything `pack` needs.
#[derive(Clone, Debug)]
pub struct Request {
    pub targets: Vec<Target>,
    pub image: ImageSettings,
    pub verify: bool,
    pub smoke: Option<Smoke>,
    pub outputs: Outputs,
    /// The SBOM and provenance of each image.
    pub attest: Attest,
}

/// The binary for each platform: `binaries` (PLATFORM=PATH), else `file`;
/// platforms from `platforms`, else this machine's plus those `binaries`
/// name. Sorted by platform, so the index (and its digest) does not depend
/// on the order of the flags. FILE is needed only for a platform without
/// its own binary.
pub fn targets(
    file: Option<&Path>,
    platforms: &[Platform],
    binaries: &[String],
) -> std::result::Result<Vec<Target>, PipelineError> {
    let mut given: Vec<(Platform, PathBuf)> = Vec::new();
    for b in binaries {
        let (p, path) = b
            .split_once('=')
            .filter(|(p, path)| !p.is_empty() && !path.is_empty())
            .ok_or_else(|| {
                PipelineError::usage(format!(
                    "invalid --binary {b:?}: expected PLATFORM=PATH, e.g. linux/arm64=./app-arm64"
                ))
            })?;
        let p: Platform = p
            .parse()
            .map_err(|e| PipelineError::usage(format!("invalid --binary {b:?}: {e}")))?;
        if given.iter().any(|(q, _)| *q == p) {
            return Err(PipelineError::usage(format!(
                "--binary is given twice for {p}"
            )));
        }
        given.push((p, PathBuf::from(path)));
    }
    let mut list: Vec<Platform> = if platforms.is_empty() {
        if file.is_some() || given.is_empty() {
            std::iter::once(Platform::host())
                .chain(given.iter().map(|(p, _)| p.clone()))
                .collect()
        } else {
            given.iter().map(|(p, _)| p.clone()).collect()
        }
    } else {
        for (p, _) in &given {
            if !platforms.contains(p) {
                return Err(PipelineError::usage(format!(
                    "--binary {p}=... names a platform that --platform does not list ({})",
                    platforms
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            }
        }
        platforms.to_vec()
    };
    list.sort();
    list.dedup();
    list.into_iter()
        .map(|platform| {
            let binary = match given.iter().find(|(p, _)| *p == platform) {
                Some((_, b)) => b.clone(),
                None => file.map(Path::to_path_buf).ok_or_else(|| {
                    PipelineError::usage(format!(
                        "no binary for {platform}: give FILE, or --binary {platform}=PATH"
                    ))
                })?,
            };
            Ok(Target { platform, binary })
        })
        .collect()
}

/// Packs every target, then ships: `pack`'s whole chain.
pub fn pack(req: &Request, obs: &dyn Observer) -> std::result::Result<Result, PipelineError> {
    let platforms: Vec<Platform> = req.targets.iter().map(|t| t.platform.clone()).collect();
    check_files(&req.outputs, &req.attest, &platforms)?;
    let names = req.image.names(&req.targets[0].binary);
    let mut image = req.image.clone();
    // One entrypoint for every platform: the path the first binary gets.
    if req.targets.len() > 1 && image.path.is_none() {
        image.path = Some(assemble::default_path(&req.targets[0].binary));
    }
    let mut packed = Vec::new();
    for t in &req.targets {
        packed.push(pack_one(
            t,
            &image,
            &names[0],
            req.verify,
            req.attest.any(),
            None,
            obs,
        )?);
    }
    if req.targets.len() > 1 {
        // Only --no-verify gets here with a binary of the wrong platform.
        for (t, p) in req.targets.iter().zip(&packed) {
            if p.image.platform.architecture != t.platform.architecture {
                return Err(PipelineError::usage(format!(
                    "{}: is a {} binary, given for {}; give each platform its own binary with --binary {}=PATH",
                    t.binary.display(),
                    p.image.platform,
                    t.platform,
                    t.platform
                )));
            }
        }
    }
    let built = vec![None; packed.len()];
    finish(
        packed,
        names,
        req.smoke.as_ref(),
        &req.outputs,
        &req.attest,
        &built,
        obs,
    )
}

/// The image (one packed) or the index (several), the smoke run, each
/// image's documents, then every output. Refuses, before the smoke run or
/// anything written, an output that cannot take the artifact. `built[i]`
/// is what `build` knew of `packed[i]` (`None` for `pack`).
pub fn finish(
    packed: Vec<Packed>,
    names: Vec<ImageName>,
    smoke: Option<&Smoke>,
    outputs: &Outputs,
    attest: &Attest,
    built: &[Option<BuiltWith<'_>>],
    obs: &dyn Observer,
) -> std::result::Result<Result, PipelineError> {
    let mut artifact = if packed.len() == 1 {
        Artifact::Image(packed[0].image.clone())
    } else {
        let images = packed.iter().map(|p| p.image.clone()).collect();
        Artifact::Index(Index::new(images, &Default::default())?)
    };
    distroless_pack_ship::check(&artifact, &outputs.list).map_err(|source| {
        PipelineError::Ship {
            context: None,
            source: Box::new(source),
        }
    })?;
    if let Some(s) = smoke {
        smoke_run(&artifact, s, obs)?;
    }
    let mut attested = Vec::new();
    for (i, image) in artifact.images().iter().enumerate() {
        let a = attest::documents(
            image,
            Some(attest::SourceFiles {
                files: &packed[i].files,
                binary: packed[i].scanned.as_ref(),
            }),
            &names[0],
            built.get(i).copied().flatten(),
            attest,
        )?;
        for w in &a.warnings {
            obs.event(Event::Warning(w.clone()));
        }
        attested.push(a);
    }
    // each image's documents become OCI 1.1 artifacts whose subject is that
    // image; the outputs that hold referrers (oci:, oci-archive:, --push)
    // take them in `ship` (no digest of the image or index changes)
    for (image, a) in artifact.images_mut().iter_mut().zip(&attested) {
        for r in attest::referrers(image, a)? {
            image.attach(r)?;
        }
    }
    let shipped = ship(&artifact, &names, outputs, obs)?;
    let sbom_files = match &attest.sbom_output {
        Some(f) => attest::write_sbom_output(f, &attested)?,
        None => Vec::new(),
    };
    Ok(Result {
        artifact,
        packed,
        names,
        shipped,
        attested,
        sbom_files,
    })
}

/// Refuses, before anything is built, verified or written, a file output
/// that cannot be written: an archive, `--digest-file` or `--sbom-output`
/// in a directory that does not exist, or with a directory (socket, block
/// device) in its place. Without it, a build and a push would run only for
/// the last file to fail.
pub fn check_files(
    outputs: &Outputs,
    attest: &Attest,
    platforms: &[Platform],
) -> std::result::Result<(), PipelineError> {
    let refused = |context: Option<String>| {
        move |source| PipelineError::Ship {
            context,
            source: Box::new(source),
        }
    };
    for o in &outputs.list {
        if let Output::File(sink @ (Sink::OciArchive { .. } | Sink::DockerArchive { .. })) = o {
            distroless_pack_ship::check_destination(sink.path())
                .map_err(refused(Some(format!("writing {sink}"))))?;
        }
    }
    if let Some(f) = &outputs.digest_file {
        distroless_pack_ship::check_destination(f).map_err(refused(Some(format!(
            "writing the digest to {}",
            f.display()
        ))))?;
    }
    attest::check_sbom_output(attest, platforms)
}

/// Runs every image of `artifact`; fails unless each program starts.
fn smoke_run(
    artifact: &Artifact,
    smoke: &Smoke,
    obs: &dyn Observer,
) -> std::result::Result<(), PipelineError> {
    for image in artifact.images() {
        let stage = Stage::start(
            obs,
            "smoke",
            format!("running the {} image", image.platform),
        );
        let opts = distroless_pack_run::SmokeOptions {
            args: smoke.args.clone(),
            timeout: smoke.timeout,
            trace: true,
        };
        let outcome =
            distroless_pack_run::smoke(image, &opts).map_err(|source| PipelineError::SmokeRun {
                platform: image.platform.clone(),
                source: Box::new(source),
            })?;
        if !outcome.passed() {
            return Err(PipelineError::SmokeFailed {
                platform: image.platform.clone(),
                outcome: outcome.describe(),
            });
        }
        stage.done(outcome.describe());
        obs.event(Event::SmokeTrace {
            platform: &image.platform,
            findings: &outcome.findings,
            traced: outcome.traced,
        });
        if smoke.strict && outcome.has_warnings() {
            let ids: Vec<&str> = outcome
                .findings
                .iter()
                .filter(|f| f.severity <= distroless_pack_run::Severity::Warning)
                .map(|f| f.id)
                .collect();
            return Err(PipelineError::SmokeFailed {
                platform: image.platform.clone(),
                outcome: format!("found warnings (--smoke-strict): {}", ids.join(", ")),
            });
        }
    }
    Ok(())
}

/// Hands `artifact` to every output under the first name, adds the further
/// names as refs in each `oci:DIR` output that named no tag, and writes the
/// digest file.
pub fn ship(
    artifact: &Artifact,
    names: &[ImageName],
    outputs: &Outputs,
    obs: &dyn Observer,
) -> std::result::Result<Vec<Shipped>, PipelineError> {
    let digest = artifact.digest().to_string();
    let progress = |ev: &distroless_pack_ship::registry::PushEvent| obs.event(Event::Push(ev));
    let mut shipped = Vec::new();
    if let Some(note) =
        distroless_pack_ship::attach::dropped_referrers_note(artifact, &outputs.list)
    {
        obs.event(Event::Note(note));
    }
    for (i, name) in names.iter().enumerate() {
        // The first pass carries every name (a docker archive lists them all).
        let opts = WriteOptions {
            name: Some(name.full()),
            platform: None,
            also: if i == 0 {
                names[1..].iter().map(ImageName::full).collect()
            } else {
                Vec::new()
            },
        };
        for output in &outputs.list {
            if i > 0 && !matches!(output, Output::File(Sink::OciLayout { tag: None, .. })) {
                continue;
            }
            // The push reports its own progress (per blob).
            let stage = match output {
                Output::File(s) => Some(format!("writing {s}")),
                Output::Load(None) => Some("loading into docker or podman".to_string()),
                Output::Load(Some(e)) => Some(format!("loading into {e}")),
                Output::Push(_) => None,
            }
            .map(|what| Stage::start(obs, "ship", what));
            let started = Instant::now();
            let result =
                distroless_pack_ship::write(artifact, output, &opts, &outputs.push, &progress)
                    .map_err(|source| PipelineError::Ship {
                        context: match output {
                            Output::File(s) => Some(format!("writing {s}")),
                            Output::Load(_) => Some("--load".into()),
                            Output::Push(_) => None,
                        },
                        source: Box::new(source),
                    })?;
            if let Output::Push(_) = output {
                push_done(&result, started.elapsed(), obs);
            }
            if let Some(stage) = stage {
                let s = &result[0];
                stage.done(match output {
                    Output::Load(_) => format!(
                        "loaded {} into {}",
                        s.reference.as_deref().unwrap_or(""),
                        s.target
                    ),
                    _ => format!("wrote {} ({digest})", s.target),
                });
            }
            shipped.extend(result);
        }
    }
    if let Some(f) = &outputs.digest_file {
        distroless_pack_ship::write_digest_file(f, &digest).map_err(|source| {
            PipelineError::Ship {
                context: Some(format!("writing the digest to {}", f.display())),
                source: Box::new(source),
            }
        })?;
    }
    Ok(shipped)
}

/// The push's summary line: digest, references, bytes uploaded, time.
pub fn push_done(shipped: &[Shipped], took: std::time::Duration, obs: &dyn Observer) {
    let up: u64 = shipped.iter().map(|s| s.bytes_uploaded).sum();
    obs.event(Event::Done {
        stage: "push",
        result: format!(
            "pushed {} to {} reference(s), {} uploaded",
            shipped.first().map(|s| s.digest.as_str()).unwrap_or(""),
            shipped.len(),
            human_size(up)
        ),
        took,
        alongside: false,
    });
}

/// Verifies (when `verify`) and assembles one target, named `name`; with
/// `scan`, also scans the binary for its SBOM. `built` names the project
/// for `build`'s messages.
///
/// Verify and the layer writer both read the whole binary, so they run at
/// the same time: the image is assembled while the verifier reads, and is
/// dropped (its temp files with it) if the verdict is a refusal. The
/// SBOM's scan (hashes, the Go header) is fed by verify's read.
pub fn pack_one(
    t: &Target,
    image: &ImageSettings,
    name: &ImageName,
    verify: bool,
    scan: bool,
    built: Option<crate::error::BuiltFrom>,
    obs: &dyn Observer,
) -> std::result::Result<Packed, PipelineError> {
    std::thread::scope(|s| {
        // With verify, its read of the file feeds the SBOM's scan; without,
        // a thread of its own reads it while the layer is written.
        let own = (scan && !verify).then(|| s.spawn(|| sbom::Binary::open(&t.binary)));
        let (mut packed, tapped) = verify_and_assemble(t, image, name, verify, scan, built, obs)?;
        let scan_error = |e: std::io::Error| PipelineError::Sbom {
            source: Box::new(sbom::SbomError::Image(format!(
                "{}: {e}",
                t.binary.display()
            ))),
        };
        let binary = match (own, tapped) {
            (Some(thread), _) => Some(
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .map_err(scan_error)?,
            ),
            (None, Some(scan)) => Some(sbom::Binary::from_scanned(
                std::fs::File::open(&t.binary).map_err(scan_error)?,
                scan,
            )),
            (None, None) => None,
        };
        packed.scanned = binary.map(std::sync::Arc::new);
        Ok(packed)
    })
}

/// Verifies and assembles; with `scan`, verify's read of the binary also
/// makes its SBOM scan (returned beside the image).
fn verify_and_assemble(
    t: &Target,
    image: &ImageSettings,
    name: &ImageName,
    verify: bool,
    scan: bool,
    built: Option<crate::error::BuiltFrom>,
    obs: &dyn Observer,
) -> std::result::Result<(Packed, Option<sbom::Scan>), PipelineError> {
    if !verify {
        let elf_platform = elf_header_platform(&t.binary)?;
        obs.event(Event::Warning(format!(
            "--no-verify: {} was not checked; it may not start in a scratch image (run `distroless-pack verify {}`)",
            t.binary.display(),
            t.binary.display()
        )));
        let platform = keep_variant(
            elf_platform.unwrap_or_else(|| t.platform.clone()),
            &t.platform,
        );
        let spec = image.spec(&t.binary, &platform, name);
        let assembled = assemble_staged(t, &spec, obs)?;
        let packed = Packed {
            files: files_of(&assembled),
            scanned: None,
            image: assembled.image,
            report: None,
        };
        return Ok((packed, None));
    }

    // Assemble alongside verify only when the ELF header already says the
    // binary is for the platform asked for (else verify refuses it anyway).
    let header = elf_header_platform(&t.binary).ok().flatten();
    let concurrent =
        header.is_some_and(|h| h.os == t.platform.os && h.architecture == t.platform.architecture);
    let spec = image.spec(&t.binary, &t.platform, name);
    let vstage = Stage::start(
        obs,
        "verify",
        format!("{} for {}", t.binary.display(), t.platform),
    );
    let started = Instant::now();
    let (verified, packed) = std::thread::scope(|s| {
        let verifier = s.spawn(|| {
            if !scan {
                return (verify_file(&t.binary, &t.platform), None);
            }
            let mut scanner = sbom::Scanner::new();
            let r = verify_file_tapped(&t.binary, &t.platform, &mut |b| scanner.update(b));
            (r, Some(scanner.finish()))
        });
        let packed = concurrent.then(|| assemble::assemble_reporting(&spec));
        let verified = verifier
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (verified, packed)
    });
    let pack_time = started.elapsed();

    let (verified, scanned) = verified;
    let report = verified?;
    if report.has_errors() {
        obs.event(Event::Findings(&report));
        return Err(PipelineError::Refused(Box::new(crate::error::Refusal {
            binary: t.binary.clone(),
            platform: t.platform.clone(),
            report,
            built,
        })));
    }
    let warnings = report.count(Severity::Warning);
    if warnings > 0 {
        obs.event(Event::Findings(&report));
    }
    vstage.done(format!(
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
    let assembled = match packed {
        Some(result) if runtime == spec.runtime => {
            // Packed while verify ran: report it now, with the time both took.
            let assembled = result?;
            obs.event(Event::Start {
                stage: "pack",
                what: pack_what(t, &spec),
            });
            cache_warnings(&assembled, obs);
            obs.event(Event::Done {
                stage: "pack",
                result: summary(&assembled),
                took: pack_time,
                alongside: true,
            });
            assembled
        }
        _ => {
            let platform = keep_variant(platform_of(&report), &t.platform);
            let spec = image
                .spec(&t.binary, &platform, name)
                .runtime_defaults(runtime);
            assemble_staged(t, &spec, obs)?
        }
    };
    let packed = Packed {
        files: files_of(&assembled),
        scanned: None,
        image: assembled.image,
        report: Some(report),
    };
    Ok((packed, scanned))
}

/// The runtime defaults for the binary verify described: a NativeAOT
/// binary gets its user's passwd entry and /tmp unless
/// `--no-runtime-defaults`.
fn runtime_defaults(report: &Report, image: &ImageSettings) -> assemble::RuntimeDefaults {
    match report.summary.toolchain {
        distroless_pack_verify::Toolchain::DotnetNativeaot if image.runtime_defaults => {
            assemble::RuntimeDefaults::NativeAot
        }
        _ => assemble::RuntimeDefaults::None,
    }
}

fn pack_what(t: &Target, spec: &ImageSpec) -> String {
    format!(
        "{} -> {} ({})",
        t.binary.display(),
        spec.path,
        spec.platform
    )
}

fn assemble_staged(
    t: &Target,
    spec: &ImageSpec,
    obs: &dyn Observer,
) -> std::result::Result<assemble::Assembled, PipelineError> {
    let stage = Stage::start(obs, "pack", pack_what(t, spec));
    let assembled = assemble::assemble_reporting(spec)?;
    cache_warnings(&assembled, obs);
    stage.done(summary(&assembled));
    Ok(assembled)
}

/// A warning for each layer whose cache entry was bad or could not be stored.
fn cache_warnings(a: &assemble::Assembled, obs: &dyn Observer) {
    for w in a.cache.iter().filter_map(assemble::CacheUse::warning) {
        obs.event(Event::Warning(w));
    }
}

/// `sha256:... (N layers, SIZE; layer: cached)`: the digest, the size, and
/// what the layer cache did (`cached`: read from it; `stored`: written and
/// stored; nothing without a cache).
fn summary(a: &assemble::Assembled) -> String {
    use assemble::CacheUse;
    let img = &a.image;
    let n = img.layers.len();
    let cached = a.cache.iter().filter(|c| **c == CacheUse::Hit).count();
    let stored = a
        .cache
        .iter()
        .filter(|c| matches!(c, CacheUse::Stored | CacheUse::Rebuilt { .. }))
        .count();
    let cache = if a.cache.iter().all(|c| *c == CacheUse::Off) {
        String::new()
    } else if cached == n {
        format!("; {}: cached", if n == 1 { "layer" } else { "layers" })
    } else if stored == n {
        format!(
            "; {}: stored in the cache",
            if n == 1 { "layer" } else { "layers" }
        )
    } else {
        format!("; layers: {cached} cached, {stored} stored")
    };
    format!(
        "{} ({} layer{}, {}{cache})",
        img.digest(),
        n,
        if n == 1 { "" } else { "s" },
        human_size(image_size(img))
    )
}

/// Compressed size of an image: config and layers (what a pull downloads
/// besides the manifest).
pub fn image_size(img: &Image) -> u64 {
    img.blobs().map(|b| b.size).sum()
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

/// The platform the ELF header of `path` names (for `--no-verify`): an
/// error when it is not a readable ELF file, `None` for an architecture
/// images are not made for.
fn elf_header_platform(path: &Path) -> std::result::Result<Option<Platform>, PipelineError> {
    let p = distroless_pack_verify::header_platform(path)?;
    Ok(matches!(p.architecture.as_str(), "amd64" | "arm64").then_some(p))
}
