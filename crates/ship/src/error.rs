//! The one error type of this crate: every variant names the file, directory
//! or engine it is about, so the CLI can print it on one line as it is.

use std::path::{Path, PathBuf};

use distroless_pack_image::ImageError;

/// What went wrong writing or reading an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// A sink or source string that does not parse.
    #[error("invalid output/source {spec:?}: {message}")]
    BadSink { spec: String, message: String },

    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The destination of an `oci:` output exists but is not an OCI layout.
    #[error("{} exists and is not an OCI image layout (it is not empty and has no oci-layout file); choose a new or empty directory", path.display())]
    NotALayout { path: PathBuf },

    /// A layout, archive or image that is malformed.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    /// An image in a source that fails to parse or check.
    #[error("{}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: ImageError,
    },

    /// The tag asked for is not in the layout.
    #[error("{}: no image tagged {tag:?}; available: {}", path.display(), list(available))]
    TagNotFound {
        path: PathBuf,
        tag: String,
        available: Vec<String>,
    },

    /// No tag was given and the source holds several images.
    #[error("{}: holds {} images, name one with :TAG; available: {}", path.display(), available.len(), list(available))]
    Ambiguous {
        path: PathBuf,
        available: Vec<String>,
    },

    /// A single-platform format asked to hold an index.
    #[error("{}: {format} holds a single platform but the image is an index of {}; write one platform (--platform) or use oci: / oci-archive:", path.display(), list(platforms))]
    IndexNotSupported {
        path: PathBuf,
        format: &'static str,
        platforms: Vec<String>,
    },

    /// The platform asked for is not in the index.
    #[error("{}: the image has no {platform} variant; it has {}", path.display(), list(platforms))]
    PlatformNotFound {
        path: PathBuf,
        platform: String,
        platforms: Vec<String>,
    },

    /// docker/podman is not installed or not running.
    #[error("{0}")]
    EngineMissing(String),

    /// docker/podman ran and failed.
    #[error("`{engine} load` failed ({status}): {stderr}")]
    EngineFailed {
        engine: &'static str,
        status: String,
        stderr: String,
    },

    /// The registry push (see the `registry` module).
    #[error("{0}")]
    Registry(String),

    /// A push to `targets` (the references, joined) failed.
    #[error("pushing to {targets}: {source}")]
    Push {
        targets: String,
        #[source]
        source: crate::registry::RegistryError,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl ShipError {
    /// Choosing a format that cannot hold the image is bad input; engine
    /// problems are engine failures; the rest happened writing an output.
    /// (Reading a source maps every error to bad input: see the callers.)
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        use distroless_pack_image::ErrorKind;
        match self {
            ShipError::BadSink { .. }
            | ShipError::IndexNotSupported { .. }
            | ShipError::PlatformNotFound { .. } => ErrorKind::Usage,
            ShipError::EngineMissing(_) | ShipError::EngineFailed { .. } => ErrorKind::Engine,
            ShipError::Registry(_) => ErrorKind::Registry,
            ShipError::Push { source, .. } => source.kind(),
            _ => ErrorKind::Output,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> ShipError {
        let path = path.to_path_buf();
        move |source| ShipError::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> ShipError {
        ShipError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn image(path: &Path) -> impl FnOnce(ImageError) -> ShipError {
        let path = path.to_path_buf();
        move |source| ShipError::Image { path, source }
    }
}
