//! The pipeline's error: a stage's error with the context the message
//! needs, or a problem of the chain itself. [`PipelineError::kind`] is what
//! the CLI maps to an exit code.

use std::path::PathBuf;

use distroless_pack_image::{ErrorKind, ImageError, Platform};
use distroless_pack_verify::{Report, Severity};

/// A binary verify refused, with its report.
#[derive(Debug)]
pub struct Refusal {
    pub binary: PathBuf,
    pub platform: Platform,
    pub report: Report,
    /// For `build`: which project made the binary.
    pub built: Option<BuiltFrom>,
}

/// The project a binary was built from, for `build`'s messages.
#[derive(Debug, Clone)]
pub struct BuiltFrom {
    pub dir: PathBuf,
    /// The binary's file name.
    pub name: String,
    /// The compile stage's hint when the binary is not static: the build
    /// settings that would fix it.
    pub hint: Option<String>,
}

/// Why a pack or build stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Settings that do not fit together or do not parse.
    #[error("{0}")]
    Usage(String),

    /// Verify refused a binary: nothing was packed.
    #[error("{}", refused_message(.0))]
    Refused(Box<Refusal>),

    /// The binary could not be verified (not readable as ELF).
    #[error(transparent)]
    Verify(#[from] distroless_pack_verify::VerifyError),

    /// Assembling the image failed.
    #[error(transparent)]
    Assemble(#[from] distroless_pack_assemble::AssembleError),

    /// Making the index failed.
    #[error(transparent)]
    Image(#[from] ImageError),

    /// The project's build failed (`dir` is named unless the message does).
    #[error("{}", compile_message(dir, source))]
    Compile {
        dir: PathBuf,
        platform: Platform,
        #[source]
        source: Box<distroless_pack_compile::BuildError>,
    },

    /// The smoke run could not run the program.
    #[error("smoke test ({platform}): {source}")]
    SmokeRun {
        platform: Platform,
        #[source]
        source: Box<distroless_pack_run::RunError>,
    },

    /// The smoke run's program did not start or exited non-zero.
    #[error("smoke test ({platform}) failed: {outcome}")]
    SmokeFailed { platform: Platform, outcome: String },

    /// An output could not be written; `context` names it.
    #[error("{}{source}", context.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Ship {
        context: Option<String>,
        #[source]
        source: Box<distroless_pack_ship::ShipError>,
    },

    /// The SBOM could not be made (the image's layers cannot be read).
    #[error("sbom: {source}")]
    Sbom {
        #[source]
        source: Box<distroless_pack_sbom::SbomError>,
    },

    /// Writing `--sbom-output` (or `sbom --output`): the file and why.
    #[error("writing the SBOM to {}: {source}", path.display())]
    SbomOutput {
        path: PathBuf,
        #[source]
        source: Box<distroless_pack_ship::ShipError>,
    },

    /// Copying a debug-symbols file (`--save-debug`).
    #[error("{}: {source}", path.display())]
    SaveDebug {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn refused_message(r: &Refusal) -> String {
    let (binary, platform) = (&r.binary, &r.platform);
    let errors = r.report.count(Severity::Error);
    match &r.built {
        None => format!(
            "{}: verify found {errors} error{} for {platform}; nothing was packed (--no-verify packs it anyway)",
            binary.display(),
            plural(errors)
        ),
        Some(BuiltFrom { dir, name, hint }) => format!(
            "{}: the built binary {name} has {errors} verify error{} for {platform}; nothing was packed (--no-verify packs it anyway){}",
            dir.display(),
            plural(errors),
            hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
        ),
    }
}

fn compile_message(dir: &std::path::Path, e: &distroless_pack_compile::BuildError) -> String {
    let dir = dir.display().to_string();
    let msg = e.to_string();
    if msg.contains(&dir) {
        msg
    } else {
        format!("{dir}: {msg}")
    }
}

impl PipelineError {
    /// The class of the failure (the CLI maps it to an exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Usage(_) => ErrorKind::Usage,
            PipelineError::Refused { .. } => ErrorKind::Findings,
            PipelineError::Verify(e) => e.kind(),
            PipelineError::Assemble(e) => e.kind(),
            PipelineError::Image(e) => e.kind(),
            PipelineError::Compile { source, .. } => source.kind(),
            PipelineError::SmokeRun { source, .. } => match source.kind() {
                ErrorKind::Interrupted => ErrorKind::Interrupted,
                _ => ErrorKind::Smoke,
            },
            PipelineError::SmokeFailed { .. } => ErrorKind::Smoke,
            PipelineError::Ship { source, .. } => source.kind(),
            PipelineError::SaveDebug { .. } => ErrorKind::Output,
            PipelineError::Sbom { source } => source.kind(),
            PipelineError::SbomOutput { source, .. } => source.kind(),
        }
    }

    pub(crate) fn usage(msg: impl Into<String>) -> PipelineError {
        PipelineError::Usage(msg.into())
    }
}
