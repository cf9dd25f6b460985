//! Why a file could not be verified at all (as opposed to findings about a
//! file that could be read).

use std::path::Path;

/// The input cannot be read as an ELF file. Every message names the file and
/// fits on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is a directory, not an executable")]
    Directory { path: String },
    #[error("{path}: not a regular file")]
    NotRegular { path: String },
    #[error("{path}: empty file (0 bytes), not an executable")]
    Empty { path: String },
    #[error("{path}: file is too large ({size} bytes; the limit is {limit} bytes)")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// The magic number is not `\x7fELF`; `what` guesses what it is instead.
    #[error("{path}: not an ELF file ({what})")]
    NotElf { path: String, what: String },
    /// The file ends inside the ELF header.
    #[error("{path}: truncated ELF file: {what}")]
    Truncated { path: String, what: String },
    /// Tables or segments point outside the file, or hold impossible values.
    #[error("{path}: malformed ELF file: {what}")]
    Malformed { path: String, what: String },
}

impl VerifyError {
    /// A file that cannot be read as ELF is bad input.
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        distroless_pack_image::ErrorKind::Usage
    }

    /// The file the error is about.
    pub fn path(&self) -> &str {
        match self {
            VerifyError::Io { path, .. }
            | VerifyError::Directory { path }
            | VerifyError::NotRegular { path }
            | VerifyError::Empty { path }
            | VerifyError::TooLarge { path, .. }
            | VerifyError::NotElf { path, .. }
            | VerifyError::Truncated { path, .. }
            | VerifyError::Malformed { path, .. } => path,
        }
    }

    /// The message without the leading `path: `.
    pub fn problem(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.path());
        full.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(full)
    }
}

/// Where an error happened, before the path is known to the parser.
pub(crate) enum Problem {
    Empty,
    NotElf(String),
    Truncated(String),
    Malformed(String),
}

impl Problem {
    pub(crate) fn at(self, path: &str) -> VerifyError {
        let path = path.to_string();
        match self {
            Problem::Empty => VerifyError::Empty { path },
            Problem::NotElf(what) => VerifyError::NotElf { path, what },
            Problem::Truncated(what) => VerifyError::Truncated { path, what },
            Problem::Malformed(what) => VerifyError::Malformed { path, what },
        }
    }
}

/// How a path is named in reports and errors.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}
