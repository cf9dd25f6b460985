//! Where an image goes (and, with the same syntax, where one is read from).
//!
//! | syntax                  | format                                             |
//! |-------------------------|----------------------------------------------------|
//! | `oci:DIR[:TAG]`         | OCI image layout directory; TAG names the image in it |
//! | `oci-archive:FILE[:TAG]` | the same layout as one tar file                    |
//! | `docker-archive:FILE[:NAME[:TAG]]` | one tar that `docker load` and `podman load` take; NAME:TAG its `RepoTags` |
//!
//! As in skopeo, the first `:` after the format's prefix ends the path, so
//! a path cannot contain a colon (use a relative path or a symlink). A FILE
//! of `-` is standard output.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::ShipError;

/// An output (or input) location and format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// An OCI image layout directory, with the tag (ref name) to give the
    /// image (or to read); `None` means the default ("latest" or the tag of
    /// the image name) when writing, "the only image" when reading.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// An OCI image layout in a tar file, with the ref name of the image
    /// (as for `OciLayout`).
    OciArchive { path: PathBuf, tag: Option<String> },
    /// A tar for `docker load` / `podman load` (OCI layout plus a docker
    /// `manifest.json`); `reference` (`NAME[:TAG]`) replaces the image name
    /// in `RepoTags`.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
}

/// Sources use the same syntax as sinks.
pub type Source = Sink;

const SYNTAX: &str =
    "expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]";

/// What a source may be, for a bare path that names nothing.
pub(crate) const SOURCE_SYNTAX: &str =
    "expected an OCI layout directory, an OCI or docker archive file, or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE";

/// Whether a sink's path is standard output (`-`).
pub fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

impl Sink {
    /// The file or directory it names.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Sink::OciLayout { dir, .. } => dir,
            Sink::OciArchive { path, .. } | Sink::DockerArchive { path, .. } => path,
        }
    }

    /// The format name as written before the colon.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::OciLayout { .. } => "oci",
            Sink::OciArchive { .. } => "oci-archive",
            Sink::DockerArchive { .. } => "docker-archive",
        }
    }
}

/// Whether `tag` is a valid OCI/docker tag (also used for ref names).
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for Sink {
    type Err = ShipError;

    fn from_str(s: &str) -> Result<Sink, ShipError> {
        let bad = |message: String| ShipError::BadSink {
            spec: s.to_string(),
            message,
        };
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(bad(format!("no format prefix; {SYNTAX}")));
        };
        if rest.is_empty() {
            return Err(bad(format!("missing path after {kind}:; {SYNTAX}")));
        }
        // As skopeo: the path ends at the first ':'.
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad(format!("missing path before ':'; {SYNTAX}")));
        }
        let tag = |what: &str| -> Result<Option<String>, ShipError> {
            match reference {
                Some(tag) if !valid_tag(tag) => Err(bad(format!(
                    "invalid tag {tag:?}: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-'); a {what} name cannot contain ':'"
                ))),
                t => Ok(t.map(str::to_string)),
            }
        };
        match kind {
            "oci" => Ok(Sink::OciLayout {
                dir: path.into(),
                tag: tag("directory")?,
            }),
            "oci-archive" => Ok(Sink::OciArchive {
                path: path.into(),
                tag: tag("file")?,
            }),
            "docker-archive" => Ok(Sink::DockerArchive {
                path: path.into(),
                reference: match reference {
                    Some(r) => Some(docker_reference(r).map_err(|why| {
                        bad(format!("invalid image name {r:?}: {why}; {SYNTAX}"))
                    })?),
                    None => None,
                },
            }),
            "docker" | "docker-daemon" => Err(bad(format!(
                "to load into docker or podman use --load; {SYNTAX}"
            ))),
            "registry" | "docker-registry" => Err(bad(format!(
                "to push to a registry use --push REF; {SYNTAX}"
            ))),
            other => Err(bad(format!("unknown format {other:?}; {SYNTAX}"))),
        }
    }
}

/// Whether `name` (`[HOST[:PORT]/]path`, no tag) is a valid repository
/// name: path components of lowercase letters, digits, `.`, `_`, `-`,
/// each starting with a letter or digit; a registry host may hold a port.
pub fn valid_repository(name: &str) -> bool {
    let path = match name.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => name,
    };
    path.split('/').all(|c| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
    })
}

/// Checks a docker-archive's `NAME[:TAG]` (no digest: `RepoTags` holds
/// tags) and gives it back with its tag (`latest` when none).
fn docker_reference(r: &str) -> Result<String, String> {
    if r.contains('@') {
        return Err("a docker archive names its image by tag, not digest".into());
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    let (name, tag) = match last.split_once(':') {
        Some((_, t)) => (&r[..r.len() - t.len() - 1], Some(t)),
        None => (r, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(format!(
                "invalid tag {t:?}: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')"
            ));
        }
    }
    if !valid_repository(name) {
        return Err("the name must be lowercase letters, digits, '.', '_', '-' and '/'".into());
    }
    Ok(format!("{name}:{}", tag.unwrap_or("latest")))
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::OciLayout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            Sink::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Sink::OciArchive { path, tag: None } => write!(f, "oci-archive:{}", path.display()),
            Sink::OciArchive { path, tag: Some(t) } => {
                write!(f, "oci-archive:{}:{t}", path.display())
            }
            Sink::DockerArchive {
                path,
                reference: None,
            } => write!(f, "docker-archive:{}", path.display()),
            Sink::DockerArchive {
                path,
                reference: Some(r),
            } => write!(f, "docker-archive:{}:{r}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            "oci:out".parse::<Sink>().unwrap(),
            Sink::OciLayout {
                dir: "out".into(),
                tag: None
            }
        );
        assert_eq!(
            "oci:/tmp/out:v1.2".parse::<Sink>().unwrap(),
            Sink::OciLayout {
                dir: "/tmp/out".into(),
                tag: Some("v1.2".into())
            }
        );
        assert_eq!(
            "oci-archive:a.tar".parse::<Sink>().unwrap(),
            Sink::OciArchive {
                path: "a.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:/x/a.tar".parse::<Sink>().unwrap(),
            Sink::DockerArchive {
                path: "/x/a.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            "oci:/tmp/out:v1".parse::<Sink>().unwrap().to_string(),
            "oci:/tmp/out:v1"
        );
    }

    #[test]
    fn rejects_with_clear_errors() {
        let e = |s: &str| s.parse::<Sink>().unwrap_err().to_string();
        assert!(e("out").contains("no format prefix"), "{}", e("out"));
        assert!(e("oci:").contains("missing path"));
        assert!(e("oci::v1").contains("missing path"));
        assert!(e("zip:a").contains("unknown format \"zip\""));
        assert!(e("oci:a:b:c").contains("invalid tag"));
        assert!(e("oci:a:").contains("invalid tag"));
        assert!(e("docker-daemon:x").contains("--load"));
    }

    #[test]
    fn skopeo_references_name_the_image_not_the_file() {
        assert_eq!(
            "docker-archive:app.tar:myapp:v2".parse::<Sink>().unwrap(),
            Sink::DockerArchive {
                path: "app.tar".into(),
                reference: Some("myapp:v2".into())
            }
        );
        assert_eq!(
            "docker-archive:app.tar:localhost:5000/x/app"
                .parse::<Sink>()
                .unwrap(),
            Sink::DockerArchive {
                path: "app.tar".into(),
                reference: Some("localhost:5000/x/app:latest".into())
            }
        );
        assert_eq!(
            "oci-archive:app.tar:v3".parse::<Sink>().unwrap(),
            Sink::OciArchive {
                path: "app.tar".into(),
                tag: Some("v3".into())
            }
        );
        assert!("docker-archive:a.tar:App:v1".parse::<Sink>().is_err());
        assert!("docker-archive:a.tar:app@sha256:00"
            .parse::<Sink>()
            .is_err());
        assert!("oci-archive:a.tar:b:c".parse::<Sink>().is_err());
        for s in ["docker-archive:a.tar:myapp:v2", "oci-archive:a.tar:v3"] {
            assert_eq!(s.parse::<Sink>().unwrap().to_string(), s);
        }
        assert!(is_stdout(
            "docker-archive:-".parse::<Sink>().unwrap().path()
        ));
    }
}
