//! Pushing an [`Artifact`] to OCI distribution registries (GHCR, Docker Hub,
//! ECR, Harbor, a self-hosted `distribution`), without a daemon.
//!
//! The entry point is [`push`]: blocking, it pushes one artifact to one or
//! more [`RegistryTarget`]s and reports, per target, which blobs it uploaded,
//! mounted from another repository or skipped because the registry had them.
//!
//! How a push goes, per registry:
//! 1. `GET /v2/` picks the scheme (HTTPS; plain HTTP only for loopback hosts
//!    or `--insecure`) and learns the auth challenge (`Basic` or `Bearer`).
//! 2. For each repository, each blob (configs and layers, de-duplicated) is
//!    checked with `HEAD`; a missing one is mounted from a repository of the
//!    same registry this run already pushed it to (`POST ?mount=&from=`), or
//!    uploaded: `POST` then one streaming `PUT` (monolithic) read from disk,
//!    falling back to chunked `PATCH`es when the registry refuses a single
//!    request. The blobs of every platform go up at the same time, at
//!    most [`PushOptions::jobs`] at once (largest first).
//! 3. Manifests are `PUT` with their own media type (per-platform manifests
//!    by digest first for an index), and the `Docker-Content-Digest` the
//!    registry answers is checked against ours.
//! 4. The images' referrers (attached SBOM, provenance): their blobs go up
//!    in the batch of step 2; their manifests, and the referrers tag
//!    schema's index where the registry has no referrers API
//!    ([`referrers`]), go up on a thread of their own beside step 3 (a
//!    referrer may reach the registry before its subject, as OCI 1.1
//!    allows).
//!
//! Why not `oci-client`: see `docs/design.md` ("Registry client").

mod auth;
pub mod credentials;
pub mod pull;
mod push;
pub mod reference;
pub mod referrers;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

pub use credentials::{Credential, CredentialOptions, Secret};
pub use push::{push, push_with, AfterTop, Extra, ManifestPut, Repo};
pub use reference::{Reference, ReferenceError};
pub use referrers::{ReferrerReport, ReferrersList, Via};

use distroless_pack_image::Digest;

/// Where to push: a parsed reference (`REGISTRY/REPO[:TAG][@DIGEST]`).
#[derive(Clone, Debug)]
pub struct RegistryTarget {
    pub reference: Reference,
}

impl RegistryTarget {
    pub fn parse(s: &str) -> Result<RegistryTarget, RegistryError> {
        Ok(RegistryTarget {
            reference: Reference::parse(s)?,
        })
    }
}

/// How blobs are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// `POST` then one streaming `PUT`; chunked only if the registry refuses.
    #[default]
    Monolithic,
    /// `PATCH` chunks from the start.
    Chunked,
}

/// Options for [`push`].
#[derive(Clone, Debug)]
pub struct PushOptions {
    pub credentials: CredentialOptions,
    /// Extra PEM CA certificates to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for any registry.
    pub insecure: bool,
    pub upload_mode: UploadMode,
    /// Chunk size for chunked uploads (a registry's `OCI-Chunk-Min-Length`
    /// raises it; `ghcr.io` caps it at 4 MiB).
    pub chunk_size: u64,
    /// Blobs checked and uploaded at the same time, across every platform
    /// of an index (1 to [`MAX_JOBS`]; see [`parse_jobs`]).
    pub jobs: usize,
    /// Attempts per request on 408/429/5xx and dropped connections.
    pub attempts: u32,
    /// How long a request may go without a byte moving before it is given
    /// up (and retried): the whole time of a request without a large body,
    /// the unacknowledged-send limit (`TCP_USER_TIMEOUT`) of an upload, and
    /// the base of an upload's total timeout (see [`parse_duration`]).
    pub stall_timeout: Duration,
}

/// The default [`PushOptions::jobs`]: go-containerregistry's (crane, ko).
pub const DEFAULT_JOBS: usize = 4;

/// The most blobs a push sends at once.
pub const MAX_JOBS: usize = 32;

/// Parses a blob concurrency as `--jobs` and `DISTROLESS_PACK_PUSH_JOBS`
/// take it: a whole number from 1 to [`MAX_JOBS`].
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid job count {s:?}: give a whole number from 1 to {MAX_JOBS} (blobs uploaded at once)"
        )),
    }
}

/// The default [`PushOptions::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Parses a timeout as `--stall-timeout` and `DISTROLESS_PACK_STALL_TIMEOUT`
/// take it: seconds (`20`, `2.5`) or a number with a unit, as Go's
/// durations (`500ms`, `20s`, `2m`, `1m30s`). It must be more than zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: use seconds (20) or a number with ms, s, m or h (500ms, 20s, 1m30s)")
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let total = if let Ok(secs) = t.parse::<f64>() {
        secs
    } else {
        let mut total = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let n = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let num: f64 = rest[..n].parse().map_err(|_| bad())?;
            rest = &rest[n..];
            let u = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..u] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
            total += num * scale;
            rest = &rest[u..];
        }
        total
    };
    if !(total.is_finite() && total > 0.0 && total < 1e9) {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(total))
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            credentials: CredentialOptions::default(),
            ca_file: None,
            insecure: false,
            upload_mode: UploadMode::Monolithic,
            chunk_size: 5 * 1024 * 1024 + 1024 * 1024, // above ECR's 5 MB minimum
            jobs: DEFAULT_JOBS,
            attempts: 5,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// What happened to one blob in one repository.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BlobAction {
    /// Sent to the registry.
    Uploaded,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// The repository already had it (found by `HEAD`, or pushed earlier in
    /// this run for another tag of the same repository).
    Skipped,
}

/// Progress of a push, reported as it goes (from several threads).
#[derive(Clone, Debug)]
pub enum PushEvent<'a> {
    /// A blob's upload starts.
    BlobStarted {
        name: &'a str,
        digest: &'a Digest,
        size: u64,
    },
    /// Bytes of a blob sent so far.
    BlobProgress {
        name: &'a str,
        digest: &'a Digest,
        done: u64,
        size: u64,
    },
    /// A blob is in the repository.
    BlobFinished {
        name: &'a str,
        digest: &'a Digest,
        size: u64,
        action: BlobAction,
    },
    /// A manifest or index was stored under `reference` (a tag or digest).
    ManifestPushed {
        reference: &'a str,
        digest: &'a Digest,
    },
}

/// One blob in a target's report.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobReport {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub action: BlobAction,
    /// For a mount, the repository it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What a push did for one target reference.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// The reference as normalised (`docker.io/library/x:latest`).
    pub reference: String,
    /// `NAME@sha256:...`, the immutable reference to what was pushed.
    pub pushed: String,
    pub digest: String,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
    pub bytes_uploaded: u64,
    pub blobs: Vec<BlobReport>,
}

/// What [`push`] did.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// The digest of the top-level manifest or index.
    pub digest: String,
    pub media_type: String,
    pub targets: Vec<TargetReport>,
    /// The artifacts attached to the images (SBOM, provenance, ...), per
    /// repository they went to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<ReferrerReport>,
}

/// Errors pushing to a registry. None of them ever holds a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{0}")]
    Invalid(String),
    #[error("registry credentials: {message}")]
    Credentials { message: String },
    /// 401/403: the message says which credential sources were tried and how
    /// to log in.
    #[error("{registry}: {message}")]
    Auth { registry: String, message: String },
    #[error("{registry}: repository {repository} not found (HTTP {status} on {what}); check the name, or create the repository first on registries that need it (ECR, Harbor projects)")]
    RepositoryNotFound {
        registry: String,
        repository: String,
        what: String,
        status: u16,
    },
    #[error("{registry}: {what}: HTTP {status}{detail}")]
    Http {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: {what}: {message}")]
    Network {
        registry: String,
        what: String,
        message: String,
    },
    #[error("reading blob {digest}: {error}")]
    Io {
        digest: String,
        error: std::io::Error,
    },
    /// A local blob that does not match its digest: never uploaded.
    #[error("{0}; not pushed")]
    Corrupt(distroless_pack_image::BlobMismatch),
    /// An upload given up because another blob of the push failed (never
    /// the error a push returns: that is the failure itself).
    #[error("cancelled: another blob of the push failed")]
    Cancelled,
    #[error("{registry}: {what}: the registry computed digest {got}, expected {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        got: String,
    },
    /// A blob the registry sent that is not the one asked for; `sent`
    /// says what came and what was expected.
    #[error("{registry}: {what}: the registry sent {sent}")]
    WrongBlob {
        registry: String,
        what: String,
        sent: String,
    },
}

impl RegistryError {
    /// Refused credentials, bad input, or the registry failed.
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        use distroless_pack_image::ErrorKind;
        // Credentials that cannot be used (half set, a helper failing) are
        // a credentials problem, as a refusal is.
        if self.is_auth() || matches!(self, RegistryError::Credentials { .. }) {
            ErrorKind::Auth
        } else if self.is_usage() {
            ErrorKind::Usage
        } else {
            ErrorKind::Registry
        }
    }

    /// A 401/403 (or missing credentials).
    pub fn is_auth(&self) -> bool {
        matches!(self, RegistryError::Auth { .. })
    }
    /// Bad input from the user (reference, option, unreadable file).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RegistryError::Reference(_) | RegistryError::Invalid(_) | RegistryError::Corrupt(_)
        )
    }
}

/// Checks that `registry` (`HOST[:PORT]` or `docker.io`) accepts the
/// credentials in `opts` (for `login`): `GET /v2/` with Basic auth, or a
/// token fetched with them. A registry that needs no auth at all passes.
pub fn check_login(registry: &str, opts: &PushOptions) -> Result<(), RegistryError> {
    let host = credentials::normalise_key(registry);
    // A reference only to reach the registry: its path never shows.
    let reference = Reference::parse(&format!("{host}/login-check")).map_err(|_| {
        RegistryError::Invalid(format!(
            "{registry:?} is not a registry: give HOST[:PORT] or docker.io"
        ))
    })?;
    let clients = transport::clients(opts)?;
    let session = transport::Session::open(&reference, opts, clients, Vec::new())?;
    let url = session.url("/v2/");
    let resp = session.send("GET /v2/", opts.attempts, &|c| {
        Ok(c.get(&url).timeout(session.stall))
    })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(session.http_error("GET /v2/", resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_timeouts_parse_as_seconds_or_go_durations() {
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "0", "-1", "soon", "5x", "s", "1m30"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn job_counts_are_whole_numbers_from_one_to_the_maximum() {
        assert_eq!(parse_jobs("1"), Ok(1));
        assert_eq!(parse_jobs(" 8 "), Ok(8));
        assert_eq!(parse_jobs(&MAX_JOBS.to_string()), Ok(MAX_JOBS));
        for bad in ["", "0", "-2", "2.5", "many", "33"] {
            let e = parse_jobs(bad).unwrap_err();
            assert!(e.contains("from 1 to 32"), "{bad:?}: {e}");
        }
    }
}
