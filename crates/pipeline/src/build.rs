//! `build`'s chain: compile the project once per platform (every build
//! first, so a failed one leaves no output at all), then pack the binaries
//! as `pack` does.

use std::path::{Path, PathBuf};

use distroless_pack_compile::config::BuildConfig;
use distroless_pack_compile::{self as compile, Built};
use distroless_pack_image::{human_size, Platform};

use crate::attest::BuiltWith;
use crate::pack::{self, Outputs, Packed, Target};
use crate::settings::{Attest, ImageSettings, Smoke};
use crate::{Event, Observer, PipelineError, Stage};

/// Everything `build` needs (settings already resolved).
#[derive(Clone, Debug)]
pub struct Request {
    pub dir: PathBuf,
    /// The file's build keys with the build flags laid over them.
    pub config: BuildConfig,
    pub platforms: Vec<Platform>,
    pub image: ImageSettings,
    pub verify: bool,
    /// Copy the compiler's output to stderr while it runs.
    pub stream_output: bool,
    /// Where the debug info goes (`--save-debug DIR` / `save_debug`,
    /// relative to the project).
    pub save_debug: Option<PathBuf>,
    pub smoke: Option<Smoke>,
    pub outputs: Outputs,
    /// The SBOM and provenance of each image.
    pub attest: Attest,
}

impl Request {
    /// The compile request for one platform.
    pub fn compile_request(&self, platform: &Platform) -> compile::Request {
        compile::Request {
            dir: self.dir.clone(),
            config: self.config.clone(),
            platform: platform.clone(),
            stream_output: self.stream_output,
        }
    }
}

/// What `build` made: the builds, then what packing them made.
#[derive(Debug)]
pub struct Result {
    pub builds: Vec<(Platform, Built)>,
    pub packed: pack::Result,
}

/// Compiles, verifies, assembles, smoke-runs and ships.
pub fn build(req: &Request, obs: &dyn Observer) -> std::result::Result<Result, PipelineError> {
    pack::check_files(&req.outputs, &req.attest, &req.platforms)?;
    let mut builds = Vec::new();
    for p in &req.platforms {
        builds.push((p.clone(), compile_one(&req.compile_request(p), obs)?));
    }

    let mut image = req.image.clone();
    if image.extras.icu_data.is_none() {
        image.extras.icu_data = builds.iter().find_map(|(_, b)| b.icu_data.clone());
    }
    let names = image.names(&builds[0].1.binary);
    let mut packed: Vec<Packed> = Vec::new();
    for (p, b) in &builds {
        let t = Target {
            platform: p.clone(),
            binary: b.binary.clone(),
        };
        let built = Some(crate::error::BuiltFrom {
            dir: req.dir.clone(),
            name: b.name.clone(),
            hint: b.hint.clone(),
        });
        packed.push(pack::pack_one(
            &t,
            &image,
            &names[0],
            req.verify,
            req.attest.any(),
            built,
            obs,
        )?);
    }
    if let Some(dir) = &req.save_debug {
        save_debug(dir, &builds)?;
    }
    let kinds: Vec<String> = builds.iter().map(|(_, b)| b.kind.to_string()).collect();
    let built: Vec<Option<BuiltWith>> = builds
        .iter()
        .zip(&kinds)
        .map(|((_, b), kind)| {
            Some(BuiltWith {
                inputs: &b.inputs,
                kind,
                runner: &b.runner,
                command: &b.command,
            })
        })
        .collect();
    let packed = pack::finish(
        packed,
        names,
        req.smoke.as_ref(),
        &req.outputs,
        &req.attest,
        &built,
        obs,
    )?;
    drop(built);
    Ok(Result { builds, packed })
}

/// One platform's build, with its progress lines and notes.
fn compile_one(
    req: &compile::Request,
    obs: &dyn Observer,
) -> std::result::Result<Built, PipelineError> {
    let stage = Stage::start(
        obs,
        "build",
        format!("{} for {}", req.dir.display(), req.platform),
    );
    let b = compile::build(req).map_err(|source| PipelineError::Compile {
        dir: req.dir.clone(),
        platform: req.platform.clone(),
        source: Box::new(source),
    })?;
    for n in &b.notes {
        obs.event(Event::Note(n.clone()));
    }
    stage.done(format!(
        "{} {} ({}) with {}",
        b.kind,
        b.name,
        human_size(binary_size(&b)),
        b.runner
    ));
    Ok(b)
}

/// The size of the built executable.
pub fn binary_size(b: &Built) -> u64 {
    std::fs::metadata(&b.binary).map(|m| m.len()).unwrap_or(0)
}

/// Copies the separate debug info to `dir`: NAME.debug (cargo, C) or
/// NAME.dbg (.NET); NAME-ARCH.EXT for several platforms.
fn save_debug(dir: &Path, builds: &[(Platform, Built)]) -> std::result::Result<(), PipelineError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PipelineError::SaveDebug { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (p, b) in builds {
        if let Some(dbg) = &b.debug_symbols {
            let ext = dbg.extension().and_then(|e| e.to_str()).unwrap_or("dbg");
            let name = if builds.len() > 1 {
                format!("{}-{}.{ext}", b.name, p.architecture)
            } else {
                format!("{}.{ext}", b.name)
            };
            let dest = dir.join(name);
            std::fs::copy(dbg, &dest).map_err(io(&dest))?;
        }
    }
    Ok(())
}
