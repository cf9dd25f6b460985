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

    /// Reading or writing a file failed. (The OS error is in the message,
    /// not also a `source`, so a chain printed with `{:#}` names it once.)
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },

    /// A blob whose content does not match its digest or size: names the
    /// file, the expected and the actual digest.
    #[error(transparent)]
    BlobMismatch(#[from] distroless_pack_image::BlobMismatch),

    /// The destination of an `oci:` output exists but is not an OCI layout.
    #[error("{} exists and is not an OCI image layout (it is not empty and has no oci-layout file); choose a new or empty directory", path.display())]
    NotALayout { path: PathBuf },

    /// A bare source path that is no image: an executable, a file that is
    /// not a tar archive, a device or FIFO. (Bad input.)
    #[error("{}: {message}", path.display())]
    NotAnImage { path: PathBuf, message: String },

    /// A layout, archive or image that is malformed.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    /// An image in a source that fails to parse or check.
    #[error("{}: {error}", path.display())]
    Image { path: PathBuf, error: ImageError },

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

    /// An output whose reader may not read zstd layers, given an image
    /// that has them: names the output and why.
    #[error("{output}: cannot take an image with zstd layers: {reason}")]
    ZstdNotSupported { output: String, reason: String },

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
            e if e.is_bad_input() => ErrorKind::Usage,
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
        move |error| match distroless_pack_image::BlobMismatch::in_io(&error) {
            Some(m) => {
                let mut m = m.clone();
                if m.location == "memory" {
                    m.location = format!("{action} {}", path.display());
                }
                ShipError::BlobMismatch(m)
            }
            None => ShipError::Io {
                action,
                path,
                error: plain_io(error),
            },
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
        move |error| match error {
            ImageError::Mismatch(m) => ShipError::BlobMismatch(m),
            error => ShipError::Image { path, error },
        }
    }

    /// Whether the input was bad (a corrupt blob), as opposed to a failure
    /// to write.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ShipError::BlobMismatch(_)
                | ShipError::BadSink { .. }
                | ShipError::NotAnImage { .. }
                | ShipError::IndexNotSupported { .. }
                | ShipError::PlatformNotFound { .. }
                | ShipError::ZstdNotSupported { .. }
        )
    }
}

/// The OS error alone: tempfile wraps its errors with the temp file's path
/// ("... (os error 30) at path \".x.tmp-s5PTwu\""), which would name a file
/// the user never asked for and repeat the OS error once more in a chain.
fn plain_io(e: std::io::Error) -> std::io::Error {
    if e.get_ref().is_none() {
        return e;
    }
    // tempfile's PathError hides the inner io::Error from `source()`: read
    // the OS error code from its message.
    let text = e.to_string();
    if let Some(code) = text
        .split_once("(os error ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(n, _)| n.parse::<i32>().ok())
    {
        return std::io::Error::from_raw_os_error(code);
    }
    match text.split_once(" at path ") {
        Some((msg, _)) => std::io::Error::new(e.kind(), msg.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message and every source under it, as `{:#}` of anyhow prints it.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            out.push_str(": ");
            out.push_str(&s.to_string());
            src = s.source();
        }
        out
    }

    #[test]
    fn a_temp_file_error_names_the_output_and_the_os_error_once() {
        let dest = Path::new("/nonexistent-dir/out.tar");
        let e = tempfile::Builder::new()
            .prefix(".distroless-pack-tmp-")
            .tempfile_in("/nonexistent-dir")
            .unwrap_err();
        let e = ShipError::io("creating a temp file for", dest)(e);
        let text = chain(&e);
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(!text.contains("tmp"), "names a temp file: {text}");
        assert!(text.contains("/nonexistent-dir/out.tar"), "{text}");
    }
}
