//! Where an image goes (and, with the same syntax, where one is read from).
//!
//! | syntax                  | format                                             |
//! |-------------------------|----------------------------------------------------|
//! | `oci:DIR[:TAG]`         | OCI image layout directory; TAG names the image in it |
//! | `oci-archive:FILE`      | the same layout as one tar file                     |
//! | `docker-archive:FILE`   | one tar that `docker load` and `podman load` take    |
//!
//! As in skopeo, the first `:` after `oci:DIR` starts the tag, so DIR cannot
//! contain a colon (use a relative path or a symlink).

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
    /// An OCI image layout in a tar file.
    OciArchive { path: PathBuf },
    /// A tar for `docker load` / `podman load` (OCI layout plus a docker
    /// `manifest.json`).
    DockerArchive { path: PathBuf },
}

/// Sources use the same syntax as sinks.
pub type Source = Sink;

const SYNTAX: &str = "expected oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE";

impl Sink {
    /// The file or directory it names.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Sink::OciLayout { dir, .. } => dir,
            Sink::OciArchive { path } | Sink::DockerArchive { path } => path,
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
        match kind {
            "oci" => {
                let (dir, tag) = match rest.split_once(':') {
                    Some((dir, tag)) => (dir, Some(tag)),
                    None => (rest, None),
                };
                if dir.is_empty() {
                    return Err(bad(format!("missing directory; {SYNTAX}")));
                }
                if let Some(tag) = tag {
                    if !valid_tag(tag) {
                        return Err(bad(format!(
                            "invalid tag {tag:?}: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-'); a directory name cannot contain ':'"
                        )));
                    }
                }
                Ok(Sink::OciLayout {
                    dir: dir.into(),
                    tag: tag.map(str::to_string),
                })
            }
            "oci-archive" => Ok(Sink::OciArchive { path: rest.into() }),
            "docker-archive" => Ok(Sink::DockerArchive { path: rest.into() }),
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

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::OciLayout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            Sink::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Sink::OciArchive { path } => write!(f, "oci-archive:{}", path.display()),
            Sink::DockerArchive { path } => write!(f, "docker-archive:{}", path.display()),
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
                path: "a.tar".into()
            }
        );
        assert_eq!(
            "docker-archive:/x/a.tar".parse::<Sink>().unwrap(),
            Sink::DockerArchive {
                path: "/x/a.tar".into()
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
        assert!(e("zip:a").contains("unknown format \"zip\""));
        assert!(e("oci:a:b:c").contains("invalid tag"));
        assert!(e("oci:a:").contains("invalid tag"));
        assert!(e("docker-daemon:x").contains("--load"));
    }
}
