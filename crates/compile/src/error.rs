//! The one error type of the build crate.

use std::path::PathBuf;

/// How the CLI should classify a [`BuildError`] (it maps these to exit codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad configuration, flags or project layout: the user must change input.
    Usage,
    /// The toolchain is missing or the compiler failed.
    Build,
    /// docker/podman is missing or failed (not the build inside it).
    Engine,
}

/// Everything that can go wrong turning a project into a static binary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `distroless-pack.toml` could not be read or has a bad key/value.
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },

    /// The project kind could not be detected.
    #[error("{}: cannot tell what kind of project this is (no *.csproj, Cargo.toml, go.mod, CMakeLists.txt or Makefile): pass --kind dotnet|cargo|go|c or set `kind` in distroless-pack.toml", dir.display())]
    UnknownKind { dir: PathBuf },

    /// A flag or setting has a value this build cannot use.
    #[error("{0}")]
    Invalid(String),

    /// A tool the host build needs is not installed.
    #[error("{tool} not found: {hint}")]
    ToolMissing { tool: String, hint: String },

    /// A tool is missing inside the builder image.
    #[error("{tool} not found in the builder image {image}: {hint}")]
    ToolMissingInImage {
        tool: String,
        image: String,
        hint: String,
    },

    /// The build command failed; `output` is everything it printed,
    /// `summary` its last meaningful line (paths as the host sees them;
    /// empty: the last line of `output`).
    #[error("build failed ({status}) running `{command}`{}", if summary.is_empty() { log_hint(output) } else { format!(": {summary}") })]
    Failed {
        command: String,
        status: String,
        output: String,
        summary: String,
    },

    /// An offline build needs a dependency that is not available locally.
    #[error("offline build: {dependency} is not available locally: {hint}")]
    MissingDependency {
        dependency: String,
        hint: String,
        output: String,
    },

    /// The build succeeded but no executable could be found.
    #[error("the build produced no executable ELF file (looked in {})", looked.display())]
    NoBinary { looked: PathBuf },

    /// Several executables were produced or several projects exist.
    #[error("{what} is ambiguous: {} (pick one with `{key}` in distroless-pack.toml or {flag})", candidates.join(", "))]
    Ambiguous {
        what: String,
        candidates: Vec<String>,
        key: String,
        flag: String,
    },

    /// The requested executable is not among the build's outputs.
    #[error("no executable named {name:?} among the build's outputs ({})", candidates.join(", "))]
    NotFound {
        name: String,
        candidates: Vec<String>,
    },

    /// The container engine could not be used.
    #[error("{0}")]
    Engine(String),

    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn log_hint(output: &str) -> String {
    let last = last_line(output);
    if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    }
}

/// The last non-blank line of a build's output, at most 200 characters.
pub(crate) fn last_line(output: &str) -> String {
    let last = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    last.chars().take(200).collect()
}

impl BuildError {
    pub fn class(&self) -> ErrorClass {
        match self {
            BuildError::Config { .. }
            | BuildError::UnknownKind { .. }
            | BuildError::Invalid(_)
            | BuildError::Ambiguous { .. }
            | BuildError::NotFound { .. } => ErrorClass::Usage,
            BuildError::ToolMissing { .. }
            | BuildError::ToolMissingInImage { .. }
            | BuildError::Failed { .. }
            | BuildError::MissingDependency { .. }
            | BuildError::NoBinary { .. }
            | BuildError::Io { .. } => ErrorClass::Build,
            BuildError::Engine(_) => ErrorClass::Engine,
        }
    }

    /// The exit-code class shared by every crate (see [`BuildError::class`]).
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        use distroless_pack_image::ErrorKind;
        match self.class() {
            ErrorClass::Usage => ErrorKind::Usage,
            ErrorClass::Build => ErrorKind::Build,
            ErrorClass::Engine => ErrorKind::Engine,
        }
    }

    /// The compiler's output, for failures that have one (the CLI prints it).
    pub fn build_output(&self) -> Option<&str> {
        match self {
            BuildError::Failed { output, .. } | BuildError::MissingDependency { output, .. } => {
                Some(output)
            }
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
