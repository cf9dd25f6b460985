//! Ships an [`Artifact`] (one image or an index) to where it is used, and
//! reads it back: one module per format, each writing the same value with
//! the same verbs, as go-containerregistry's `layout`, `tarball` and
//! `daemon` packages do.
//!
//! | module              | sink syntax            | writes                                  |
//! |---------------------|------------------------|-----------------------------------------|
//! | [`layout`]          | `oci:DIR[:TAG]`        | OCI image layout directory (adds a tag) |
//! | [`oci_archive`]     | `oci-archive:FILE`     | the layout as one deterministic tar     |
//! | [`docker_archive`]  | `docker-archive:FILE`  | tar for `docker load` and `podman load` |
//! | [`engine`]          | `--load[=ENGINE]`      | a docker archive piped into the engine  |
//!
//! Nothing here recompresses or re-serialises a blob: the bytes written
//! are the bytes the image holds, so digests are the same in every format.
//! Every file output is atomic (temp file in the destination directory,
//! renamed into place).

pub mod attach;
mod blobcopy;
mod error;
mod store;
mod tarw;

pub mod dest;

pub mod docker_archive;
pub mod engine;
pub mod engine_run;
pub mod layout;
pub mod list;
pub mod oci_archive;
pub mod output;
pub mod sink;

// The registry push lives in `registry` (another module's owner adds it here).
pub mod registry;

pub use attach::{attach_to_file, attached_document, parse_location, Location};
pub use dest::{check_destination, write_bytes, write_digest_file};
pub use distroless_pack_image::Engine;
pub use engine::{load, Loaded};
pub use engine_run::{run_in_engine, EngineRun};
pub use error::ShipError;
pub use list::{list_layer, LayerEntry};
pub use output::{check, write, Output, Shipped};
pub use sink::{Sink, Source};

use distroless_pack_image::{Artifact, Platform};

/// How an output names and selects the image.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The full image name, e.g. `hello:latest` or `registry/x/y:tag`: its
    /// tag is the default ref name in layouts, and docker archives carry it
    /// as `RepoTags`.
    pub name: Option<String>,
    /// For single-platform formats (docker-archive, load): the platform to
    /// take from an index.
    pub platform: Option<Platform>,
    /// Further names: a docker archive lists them in `RepoTags` too.
    pub also: Vec<String>,
}

/// Writes `artifact` in one file format (the `Output::File` part of
/// [`write`]).
pub fn write_sink(artifact: &Artifact, sink: &Sink, opts: &WriteOptions) -> Result<(), ShipError> {
    match sink {
        Sink::OciLayout { dir, tag } => layout::write_layout(artifact, dir, tag.as_deref(), opts),
        Sink::OciArchive { path, tag } => {
            oci_archive::write_oci_archive_tagged(artifact, path, tag.as_deref(), opts)
        }
        Sink::DockerArchive { path, reference } => {
            // `docker-archive:FILE:NAME:TAG` names the image instead.
            let named;
            let opts = match reference {
                Some(r) => {
                    named = WriteOptions {
                        name: Some(r.clone()),
                        also: Vec::new(),
                        ..opts.clone()
                    };
                    &named
                }
                None => opts,
            };
            // `-` is standard output (ship::dest).
            docker_archive::write_docker_archive(artifact, path, opts)
        }
    }
}

/// Reads the image or index at `source` (same syntax as sinks).
pub fn read(source: &Source) -> Result<Artifact, ShipError> {
    read_back(source).map(|r| r.artifact)
}

/// An image or index read back from a file, with the name the file records
/// for it, if any: the `io.containerd.image.name` of its `index.json`
/// entry in an OCI layout or archive (what `pack --tag` wrote), a docker
/// archive's first `RepoTags`.
#[derive(Debug)]
pub struct ReadBack {
    pub artifact: Artifact,
    pub name: Option<String>,
}

/// [`read`], with the name the file records.
pub fn read_back(source: &Source) -> Result<ReadBack, ShipError> {
    match source {
        Sink::OciLayout { dir, tag } => layout::read_layout(dir, tag.as_deref()),
        Sink::OciArchive { path, tag } => oci_archive::read_oci_archive(path, tag.as_deref()),
        Sink::DockerArchive { path, .. } => docker_archive::read_docker_archive(path),
    }
}

/// Parses a source, also taking a bare path: a directory is an OCI layout,
/// a file a docker archive when it carries `manifest.json`, else an OCI
/// archive. A bare path that is no image (an executable, a file that is not
/// a tar archive, a FIFO, a path that does not exist) is refused as bad
/// input, saying what it is.
pub fn parse_source(s: &str) -> Result<Source, ShipError> {
    let parsed = s.parse::<Sink>();
    if parsed.is_ok() {
        return parsed;
    }
    let p = std::path::Path::new(s);
    let not_an_image = |message: String| ShipError::NotAnImage {
        path: p.to_path_buf(),
        message,
    };
    if p.is_dir() {
        return Ok(Sink::OciLayout {
            dir: p.to_path_buf(),
            tag: None,
        });
    }
    if p.is_file() {
        if is_elf_file(p) {
            return Err(not_an_image(format!(
                "an ELF executable, not an image; `distroless-pack pack {s}` makes one"
            )));
        }
        let store = store::TarStore::open(p).map_err(|e| {
            not_an_image(format!(
                "not an image: neither an OCI layout directory nor a tar archive ({})",
                e.to_string()
                    .trim_start_matches(&format!("{}: ", p.display()))
            ))
        })?;
        return Ok(if store.has("manifest.json") {
            Sink::DockerArchive {
                path: p.to_path_buf(),
                reference: None,
            }
        } else {
            Sink::OciArchive {
                path: p.to_path_buf(),
                tag: None,
            }
        });
    }
    if p.exists() {
        return Err(not_an_image(
            "not a regular file or a directory (a source is an OCI layout directory or an archive)"
                .to_string(),
        ));
    }
    if !s.contains(':') {
        return Err(not_an_image(format!(
            "no such file or directory; {}",
            sink::SOURCE_SYNTAX
        )));
    }
    // `DIR:TAG` for a layout that exists: say how to name the tag in it
    if let Some((head, tag)) = s.rsplit_once(':') {
        let head_path = std::path::Path::new(head);
        let prefix = if head_path.is_dir() {
            Some("oci")
        } else if head_path.is_file() {
            Some("oci-archive")
        } else {
            None
        };
        if let Some(prefix) = prefix {
            return Err(ShipError::BadSink {
                spec: s.to_string(),
                message: format!(
                    "{head} exists, but a bare path takes no tag; for the image tagged {tag:?} in it, write {prefix}:{s}"
                ),
            });
        }
    }
    parsed
}

/// Whether `path` is a regular file that starts with the ELF magic (an
/// executable, not an image).
pub fn is_elf_file(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == *b"\x7fELF"
}
