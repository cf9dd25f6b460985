//! distroless-pack-compile: a project directory -> one static Linux executable.
//!
//! Four kinds of project are known (see [`Kind`]): .NET NativeAOT, Cargo, Go
//! and C (make or CMake). Each kind module turns the project and its
//! [`Config`] into a [`Plan`]: a POSIX shell script plus the tools it needs
//! and where its output lands. A [`runner`] executes the script on the host or
//! in a builder container (docker or podman), with the project mounted at
//! `/src` and an empty output directory at `/out`; [`locate`] then finds the
//! one executable the build made. Nothing here prints: the compiler's output
//! is captured into [`Built::log`] (or [`BuildError::Failed`]) and, when
//! [`Request::stream_output`] is set, copied to stderr as it comes.
//!
//! Every build writes into a fresh temporary directory that lives as long as
//! the returned [`Built`]; a failed build leaves nothing behind but what the
//! project's own build system writes into the project (e.g. `target/`).

pub mod c;
pub mod cargo;
pub mod config;
pub mod detect;
pub mod dotnet;
mod error;
pub mod go;
pub mod inputs;
pub mod locate;
pub mod runner;
pub mod shell;
pub mod strip;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use config::{BuildConfig, Config};
pub use distroless_pack_image::Engine;
pub use distroless_pack_image::Platform;
pub use error::{BuildError, ErrorClass};
pub use inputs::{Ecosystem, Package, PinnedInputs};
pub use runner::Runner;
use shell::Cmd;

/// The kinds of project `build` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dotnet,
    Cargo,
    Go,
    C,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dotnet => "dotnet",
            Kind::Cargo => "cargo",
            Kind::Go => "go",
            Kind::C => "c",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "dotnet" => Ok(Kind::Dotnet),
            "cargo" | "rust" => Ok(Kind::Cargo),
            "go" => Ok(Kind::Go),
            "c" => Ok(Kind::C),
            _ => Err(format!(
                "unknown project kind {s:?}: expected dotnet, cargo, go or c"
            )),
        }
    }
}

/// Where the build runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerChoice {
    /// The container when docker or podman answers, else the host.
    #[default]
    Auto,
    /// In the builder image, with docker or podman.
    Container,
    /// With the host's own toolchains.
    Host,
}

impl std::str::FromStr for RunnerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<RunnerChoice, String> {
        match s {
            "auto" => Ok(RunnerChoice::Auto),
            "container" => Ok(RunnerChoice::Container),
            "host" => Ok(RunnerChoice::Host),
            _ => Err(format!(
                "unknown runner {s:?}: expected auto, container or host"
            )),
        }
    }
}

/// What to build. The pipeline lays the flags over the file's build keys
/// before calling.
#[derive(Clone, Debug)]
pub struct Request {
    /// The project directory.
    pub dir: PathBuf,
    /// The build keys (file + flags); no image keys.
    pub config: BuildConfig,
    /// The platform to build for.
    pub platform: Platform,
    /// Copy the build's output to stderr while it runs.
    pub stream_output: bool,
}

/// A tool a plan runs, with how to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub hint: String,
}

impl Tool {
    pub fn new(name: &str, hint: &str) -> Tool {
        Tool {
            name: name.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// One command of a plan; `stdout` redirects its standard output to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub cmd: Cmd,
    pub stdout: Option<String>,
}

impl From<Cmd> for Step {
    fn from(cmd: Cmd) -> Step {
        Step { cmd, stdout: None }
    }
}

/// Where a plan's executable ends up (paths as the runner sees them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locate {
    /// Exactly this file.
    Exact(String),
    /// The executables listed in cargo's JSON messages in this file.
    CargoMessages(String),
    /// The executable ELF files under this directory.
    Scan { dir: String, prefer: Option<String> },
    /// The executable ELF files under this directory that the build created
    /// or changed (falling back to all of them).
    Changed(String),
}

/// What a kind module produces: a shell script and how to find its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Tools the script runs (checked before a host build).
    pub tools: Vec<Tool>,
    /// Variables exported at the top of the script.
    pub env: Vec<(String, String)>,
    /// Raw shell lines run first (toolchain selection, data file discovery).
    pub prelude: Vec<String>,
    /// Shell lines that record the toolchain's versions (run after the
    /// prelude, before the build).
    pub versions: Vec<String>,
    /// The build commands.
    pub steps: Vec<Step>,
    /// Raw shell lines run after the steps (copying data files out).
    pub epilogue: Vec<String>,
    /// Where the binary is.
    pub locate: Locate,
    /// Things the user should know (fallbacks taken, modes chosen).
    pub notes: Vec<String>,
    /// Files the generator wrote (name relative to the output dir, contents).
    pub files: Vec<(String, String)>,
    /// Directories (as the runner sees them, inside the project) emptied
    /// before the build: build trees distroless-pack keeps in the project.
    pub fresh_dirs: Vec<String>,
    /// A note that holds only when the result is static (e.g. "-static").
    pub static_claim: Option<String>,
    /// What to change when the result is not static (for the CLI to print
    /// when verify refuses the binary).
    pub refusal_hint: Option<String>,
}

impl Plan {
    fn new(locate: Locate) -> Plan {
        Plan {
            tools: Vec::new(),
            env: Vec::new(),
            prelude: Vec::new(),
            versions: Vec::new(),
            steps: Vec::new(),
            epilogue: Vec::new(),
            locate,
            notes: Vec::new(),
            files: Vec::new(),
            fresh_dirs: Vec::new(),
            static_claim: None,
            refusal_hint: None,
        }
    }

    /// The main command, for messages.
    pub fn command_line(&self) -> String {
        self.steps
            .last()
            .map(|s| s.cmd.to_string())
            .unwrap_or_default()
    }

    /// The whole script (`pre_build` runs after the prelude).
    pub fn script(&self, pre_build: Option<&str>) -> String {
        let mut s = String::from("set -e\n");
        for (k, v) in &self.env {
            s.push_str(&format!("export {k}={}\n", shell::quote(v)));
        }
        for t in &self.tools {
            s.push_str(&format!(
                "command -v {0} >/dev/null 2>&1 || {{ echo \"{MISSING_TOOL}{0}\" >&2; exit 127; }}\n",
                t.name
            ));
        }
        for l in self.prelude.iter().chain(&self.versions) {
            s.push_str(l);
            s.push('\n');
        }
        if let Some(pre) = pre_build {
            s.push_str(&format!("echo {} >&2\n", shell::quote(&format!("+ {pre}"))));
            s.push_str(&format!("( {pre} )\n"));
        }
        for step in &self.steps {
            s.push_str(&format!(
                "echo {} >&2\n",
                shell::quote(&format!("+ {}", step.cmd))
            ));
            s.push_str(&step.cmd.to_shell());
            if let Some(f) = &step.stdout {
                s.push_str(&format!(" > {}", shell::quote(f)));
            }
            s.push('\n');
        }
        for l in &self.epilogue {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// The marker a script prints when a tool is missing in the builder image.
pub const MISSING_TOOL: &str = "distroless-pack: missing tool: ";

/// What a kind module is given to make its plan.
#[derive(Clone, Debug)]
pub struct Ctx<'a> {
    /// The project directory on the host.
    pub dir: &'a Path,
    pub config: &'a BuildConfig,
    pub platform: &'a Platform,
    /// The project directory as the runner sees it.
    pub src: String,
    /// The output directory as the runner sees it.
    pub out: String,
    /// Whether the script runs in the builder container.
    pub container: bool,
}

impl Ctx<'_> {
    /// `amd64` or `arm64`.
    pub fn arch(&self) -> &str {
        &self.platform.architecture
    }

    /// Whether the target is the machine's own architecture.
    pub fn native(&self) -> bool {
        self.platform.architecture == Platform::host().architecture
    }

    pub fn out_path(&self, name: &str) -> String {
        format!("{}/{}", self.out.trim_end_matches('/'), name)
    }
}

/// The result of a successful build.
#[derive(Debug)]
pub struct Built {
    /// The static executable (inside [`Built::workdir`]).
    pub binary: PathBuf,
    /// Its file name, a good default for the image name.
    pub name: String,
    /// The separate debug info, never put in the image: NativeAOT's
    /// `NAME.dbg`, or `NAME.debug` from stripping with `save_debug`.
    pub debug_symbols: Option<PathBuf>,
    /// The binary's size before it was stripped (`None`: not stripped).
    pub unstripped_size: Option<u64>,
    /// An ICU data file to ship in the image (dotnet `icu-file` mode).
    pub icu_data: Option<PathBuf>,
    pub kind: Kind,
    /// Where it ran: `host`, or `docker:IMAGE` / `podman:IMAGE`.
    pub runner: String,
    /// The main build command.
    pub command: String,
    /// Everything the build printed.
    pub log: String,
    /// Notes for the user (fallbacks taken and why).
    pub notes: Vec<String>,
    /// What pins the result: packages, toolchain versions, builder image.
    pub inputs: PinnedInputs,
    /// The binary is not static: what to change in the build settings (the
    /// CLI prints it when verify refuses the binary).
    pub hint: Option<String>,
    workdir: tempfile::TempDir,
}

impl Built {
    /// The temporary directory holding the outputs (removed on drop).
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }
}

/// The project directory, absolute; a missing one is a usage error.
fn project_dir(dir: &Path) -> Result<PathBuf, BuildError> {
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| BuildError::Invalid(format!("{}: project directory: {e}", dir.display())))?;
    if !abs.is_dir() {
        return Err(BuildError::Invalid(format!(
            "{}: not a directory",
            dir.display()
        )));
    }
    Ok(abs)
}

/// Builds the project: detect, plan, run, locate.
pub fn build(req: &Request) -> Result<Built, BuildError> {
    let dir = project_dir(&req.dir)?;
    if !dir.is_dir() {
        return Err(BuildError::Invalid(format!(
            "{}: not a directory",
            dir.display()
        )));
    }
    let cfg = &req.config;
    let kind = match cfg.kind {
        Some(k) => k,
        None => detect::detect(&dir)?,
    };
    let runner = Runner::resolve(cfg)?;

    let workdir = tempfile::Builder::new()
        .prefix("distroless-pack-compile-")
        .tempdir()
        .map_err(BuildError::io(std::env::temp_dir()))?;
    let out = workdir.path().join("out");
    std::fs::create_dir_all(&out).map_err(BuildError::io(&out))?;

    let (src, out_seen) = match &runner {
        Runner::Host => (dir.display().to_string(), out.display().to_string()),
        Runner::Container(_) => (
            runner::CONTAINER_SRC.to_string(),
            runner::CONTAINER_OUT.to_string(),
        ),
    };
    let ctx = Ctx {
        dir: &dir,
        config: cfg,
        platform: &req.platform,
        src,
        out: out_seen,
        container: runner.is_container(),
    };
    let plan = make_plan(kind, &ctx)?;
    for (name, contents) in &plan.files {
        let p = out.join(name);
        std::fs::write(&p, contents).map_err(BuildError::io(&p))?;
    }
    if let Runner::Host = runner {
        for t in &plan.tools {
            if runner::which(&t.name).is_none() {
                return Err(BuildError::ToolMissing {
                    tool: t.name.clone(),
                    hint: t.hint.clone(),
                });
            }
        }
    }

    let snapshot = match &plan.locate {
        Locate::Changed(_) => Some(locate::snapshot(&dir)),
        _ => None,
    };
    let map = |p: &str| -> PathBuf { runner.host_path(p, &dir, &out) };
    for d in &plan.fresh_dirs {
        let host = map(d);
        if host.starts_with(&dir) && host != dir && host.is_dir() {
            std::fs::remove_dir_all(&host).map_err(BuildError::io(&host))?;
        }
    }
    // Before the build, which writes into the project (target/, obj/).
    let source = inputs::source_tree(&dir);
    let script = plan.script(cfg.pre_build.as_deref());
    let log_path = workdir.path().join("build.log");
    let status = runner.run(&script, &dir, &out, &log_path, req.stream_output)?;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success {
        if let Some(tool) = log
            .lines()
            .find_map(|l| l.trim().strip_prefix(MISSING_TOOL))
        {
            let hint = plan
                .tools
                .iter()
                .find(|t| t.name == tool)
                .map(|t| t.hint.clone())
                .unwrap_or_else(|| "use a builder image that has it".to_string());
            return Err(match &runner {
                Runner::Container(c) => BuildError::ToolMissingInImage {
                    tool: tool.to_string(),
                    image: c.image.clone(),
                    hint,
                },
                Runner::Host => BuildError::ToolMissing {
                    tool: tool.to_string(),
                    hint,
                },
            });
        }
        if cfg.offline() {
            let missing = match kind {
                Kind::Cargo => cargo::missing_dependency(&log),
                Kind::Go => go::missing_dependency(&log),
                Kind::Dotnet => dotnet::missing_dependency(&log),
                Kind::C => None,
            };
            if let Some((dependency, hint)) = missing {
                return Err(BuildError::MissingDependency {
                    dependency,
                    hint,
                    output: log,
                });
            }
        }
        let mut summary = match kind {
            Kind::Dotnet => dotnet::explain_failure(&log).unwrap_or_else(|| error::last_line(&log)),
            _ => error::last_line(&log),
        };
        if runner.is_container() {
            // Paths in the project, as the host sees them.
            summary = summary.replace(
                &format!("{}/", runner::CONTAINER_SRC),
                &format!("{}/", dir.display()),
            );
        }
        return Err(BuildError::Failed {
            command: failed_step(&plan, cfg.pre_build.as_deref(), &log),
            status: status.description,
            output: log,
            summary,
        });
    }

    let binary = locate::locate(&plan.locate, cfg.binary.as_deref(), &map, snapshot.as_ref())?;
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_string());

    // Keep only what we need, inside the work dir.
    let bin_dir = workdir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(BuildError::io(&bin_dir))?;
    let kept = bin_dir.join(&name);
    std::fs::copy(&binary, &kept).map_err(BuildError::io(&binary))?;
    let dbg = binary.with_file_name(format!("{name}.dbg"));
    let debug_symbols = if dbg.is_file() {
        let d = workdir.path().join(format!("{name}.dbg"));
        std::fs::copy(&dbg, &d).map_err(BuildError::io(&dbg))?;
        Some(d)
    } else {
        None
    };
    let icu_data = locate::first_file(&out.join(dotnet::ICU_OUT_DIR));

    let mut notes: Vec<String> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix(c::NOTE_MARKER))
        .map(str::to_string)
        .collect();
    notes.splice(0..0, plan.notes.iter().cloned());
    let mut debug_symbols = debug_symbols;
    let mut unstripped_size = None;
    if cfg.strip() {
        // NativeAOT's own `.dbg` is the debug file when there is one.
        let keep = cfg.save_debug.is_some() && debug_symbols.is_none();
        match strip::strip(&kept, &req.platform, keep)? {
            Ok(Some(s)) => {
                notes.push(format!(
                    "stripped: {} -> {} bytes{}",
                    s.before,
                    s.after,
                    if s.debug_file.is_some() {
                        format!(" (debug info kept in {name}.debug)")
                    } else {
                        " (save_debug / --save-debug keeps the debug info)".to_string()
                    }
                ));
                unstripped_size = Some(s.before);
                if s.debug_file.is_some() {
                    debug_symbols = s.debug_file;
                }
            }
            Ok(None) => {}
            Err(hint) => notes.push(format!(
                "not stripped: no objcopy for {} ({hint})",
                req.platform
            )),
        }
    }
    let bytes = std::fs::read(&kept).map_err(BuildError::io(&kept))?;
    let hint = if strip::is_static(&bytes) {
        notes.extend(plan.static_claim.clone());
        None
    } else {
        plan.refusal_hint.clone()
    };
    drop(bytes);

    let inputs = pinned_inputs(kind, &dir, cfg, &plan, &runner, &out, &map, source);

    Ok(Built {
        binary: kept,
        name,
        debug_symbols,
        unstripped_size,
        icu_data,
        kind,
        runner: runner.describe(),
        command: plan.command_line(),
        log,
        notes,
        inputs,
        hint,
        workdir,
    })
}

/// The step the log shows running last (the script echoes `+ COMMAND`
/// before each), else the main command.
fn failed_step(plan: &Plan, pre_build: Option<&str>, log: &str) -> String {
    let mut candidates: Vec<String> = plan.steps.iter().map(|s| s.cmd.to_string()).collect();
    if let Some(p) = pre_build {
        candidates.push(p.to_string());
    }
    log.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("+ "))
        .find(|l| candidates.iter().any(|c| c == l))
        .map(str::to_string)
        .unwrap_or_else(|| plan.command_line())
}

/// What the build used, from the files the script left in OUT and the
/// project's lock files.
#[allow(clippy::too_many_arguments)]
fn pinned_inputs(
    kind: Kind,
    dir: &Path,
    cfg: &BuildConfig,
    plan: &Plan,
    runner: &Runner,
    out: &Path,
    map: &dyn Fn(&str) -> PathBuf,
    source: Option<inputs::SourceTree>,
) -> PinnedInputs {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut inputs = PinnedInputs {
        toolchain: inputs::read_toolchain(&read(&out.join(inputs::TOOLCHAIN_FILE))),
        builder_image: runner.image_identity(),
        ..PinnedInputs::default()
    };
    inputs.source = source;
    match kind {
        Kind::Cargo => {
            if let Locate::CargoMessages(m) = &plan.locate {
                let lock = dir.join("Cargo.lock");
                inputs.packages = inputs::cargo_packages(
                    &read(&map(m)),
                    lock.is_file().then_some(lock.as_path()),
                );
                let licenses =
                    inputs::cargo_licenses(&read(&out.join(inputs::CARGO_METADATA_FILE)));
                inputs::apply_licenses(&mut inputs.packages, &licenses);
            }
        }
        Kind::Go => {
            let info = read(&out.join(inputs::GO_BUILDINFO_FILE));
            inputs.packages = inputs::go_packages(&info);
            if let Some(v) = inputs::go_version(&info) {
                inputs.toolchain.entry("go".into()).or_insert(v);
            }
        }
        Kind::Dotnet => {
            let configured = cfg.dotnet.as_ref().and_then(|d| d.project.as_deref());
            if let Ok(project) = dotnet::project_file(dir, configured) {
                let assets = read(&dotnet::assets_file(&project));
                inputs.packages = inputs::nuget_packages(&assets);
                let licenses =
                    inputs::nuget_licenses(&read(&out.join(inputs::NUSPEC_LICENSES_FILE)));
                inputs::apply_nuget_licenses(&mut inputs.packages, &licenses);
                inputs.runtime_packs = inputs::runtime_packs(&assets);
                inputs::apply_nuget_licenses(&mut inputs.runtime_packs, &licenses);
                if let Some(v) = inputs::dotnet_sdk_version(&assets) {
                    inputs.toolchain.insert("dotnet-sdk".into(), v);
                }
                if let Some(p) = inputs
                    .packages
                    .iter()
                    .chain(&inputs.runtime_packs)
                    .find(|p| p.name.ends_with("Microsoft.DotNet.ILCompiler"))
                {
                    inputs
                        .toolchain
                        .insert("ilcompiler".into(), p.version.clone());
                }
            }
        }
        Kind::C => {
            let src = match runner {
                Runner::Host => dir.display().to_string(),
                Runner::Container(_) => runner::CONTAINER_SRC.to_string(),
            };
            inputs.static_libraries =
                inputs::static_libraries(&read(&out.join(inputs::STATIC_LIBRARIES_FILE)), &src);
        }
    }
    inputs
}

/// The plan `build` would run, without running it (for `--dry-run` and tests).
pub fn plan_for(req: &Request, container: bool) -> Result<(Kind, Plan), BuildError> {
    let dir = project_dir(&req.dir)?;
    let kind = match req.config.kind {
        Some(k) => k,
        None => detect::detect(&dir)?,
    };
    let (src, out) = if container {
        (
            runner::CONTAINER_SRC.to_string(),
            runner::CONTAINER_OUT.to_string(),
        )
    } else {
        (
            dir.display().to_string(),
            "/tmp/distroless-pack-out".to_string(),
        )
    };
    let ctx = Ctx {
        dir: &dir,
        config: &req.config,
        platform: &req.platform,
        src,
        out,
        container,
    };
    Ok((kind, make_plan(kind, &ctx)?))
}

/// The kind's plan; a `pre_build` command also gets the C toolchain of the
/// binary's C library (musl, or glibc for a glibc .NET build).
pub fn make_plan(kind: Kind, ctx: &Ctx) -> Result<Plan, BuildError> {
    let mut plan = match kind {
        Kind::Dotnet => dotnet::plan(ctx)?,
        Kind::Cargo => cargo::plan(ctx)?,
        Kind::Go => go::plan(ctx)?,
        Kind::C => c::plan(ctx)?,
    };
    if ctx.config.pre_build.is_some() && kind != Kind::C {
        let tc = match kind {
            // A glibc .NET build links its static libraries with glibc's gcc.
            Kind::Dotnet if dotnet::libc(ctx).0 == config::Libc::Glibc => {
                dotnet::glibc_c_toolchain(ctx)
            }
            _ => c::toolchain(ctx)?,
        };
        plan.env.extend(tc.env);
        plan.prelude.extend(tc.prelude);
        plan.tools.extend(tc.tools);
    }
    Ok(plan)
}
