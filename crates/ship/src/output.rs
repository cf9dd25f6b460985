//! Every place an image can go, as one type: the three file formats
//! ([`Sink`]), an engine (`--load`) and registries (`--push`), with
//! [`check`] (run before anything is written) and [`write`] (one output).

use std::fmt;
use std::path::PathBuf;

use distroless_pack_image::{Artifact, Platform, MEDIA_TYPE_LAYER_ZSTD};

use crate::engine;
use crate::registry::{self, PushEvent, PushOptions, RegistryTarget};
use crate::{layout, ShipError, Sink, WriteOptions};
use distroless_pack_image::Engine;

/// One output of `pack`/`build`.
#[derive(Clone, Debug)]
pub enum Output {
    /// `oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`.
    File(Sink),
    /// `--load[=ENGINE]`; `None` (plain `--load`): docker if its daemon
    /// answers, else podman.
    Load(Option<Engine>),
    /// `--push REF...`: every reference in one push (blobs go up once per
    /// registry).
    Push(Vec<RegistryTarget>),
}

impl From<Sink> for Output {
    fn from(s: Sink) -> Output {
        Output::File(s)
    }
}

impl Output {
    /// `oci`, `oci-archive`, `docker-archive`, `load` or `push`.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::File(s) => s.kind(),
            Output::Load(_) => "load",
            Output::Push(_) => "push",
        }
    }
}

impl fmt::Display for Output {
    /// What a message about this output names: the sink, `--load`, or the
    /// references.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::File(s) => write!(f, "{s}"),
            Output::Load(_) => f.write_str("--load"),
            Output::Push(targets) => {
                let names: Vec<String> = targets.iter().map(|t| t.reference.to_string()).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// One output that was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Shipped {
    /// `oci`, `oci-archive`, `docker-archive`, `load` or `push`.
    pub kind: &'static str,
    /// The sink (with the tag an `oci:DIR` got), the engine, or the
    /// registry reference.
    pub target: String,
    /// Digest of the manifest (or index) written there.
    pub digest: String,
    /// The name it is known by there: the loaded image name, or
    /// `NAME@sha256:...` for a push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Bytes a push uploaded (for its summary line; not in JSON).
    #[serde(skip)]
    pub bytes_uploaded: u64,
}

/// Refuses, before anything is written, an output that cannot take
/// `artifact`: an index to a docker archive (one platform), `--load` of
/// an index without this host's platform, or zstd layers to a docker
/// archive or to a docker older than 23.0 (see [`check_zstd`]).
pub fn check(artifact: &Artifact, outputs: &[Output]) -> Result<(), ShipError> {
    check_zstd(artifact, outputs)?;
    let Artifact::Index(index) = artifact else {
        return Ok(());
    };
    let platforms: Vec<String> = index
        .images
        .iter()
        .map(|i| i.platform.to_string())
        .collect();
    for o in outputs {
        match o {
            Output::File(s @ Sink::DockerArchive { .. }) if index.images.len() > 1 => {
                return Err(ShipError::IndexNotSupported {
                    path: s.path().to_path_buf(),
                    format: "docker-archive",
                    platforms,
                });
            }
            Output::Load(_) if artifact.select(Some(&Platform::host())).is_none() => {
                return Err(ShipError::PlatformNotFound {
                    path: PathBuf::from("--load"),
                    platform: Platform::host().to_string(),
                    platforms,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether any layer of `artifact` is zstd-compressed.
pub fn has_zstd_layers(artifact: &Artifact) -> bool {
    artifact
        .images()
        .iter()
        .flat_map(|i| &i.layers)
        .any(|l| l.media_type == MEDIA_TYPE_LAYER_ZSTD)
}

/// zstd layers go only where they will be read: never into a
/// `docker-archive:` file (made for `docker load`, and docker before 23.0
/// cannot read zstd; which docker will load the file is unknown), and to
/// `--load` only when the engine is podman or docker 23.0 or later (asked
/// with `docker version`). Registries, OCI layouts and OCI archives take
/// them.
pub fn check_zstd(artifact: &Artifact, outputs: &[Output]) -> Result<(), ShipError> {
    if !has_zstd_layers(artifact) {
        return Ok(());
    }
    for o in outputs {
        match o {
            Output::File(s @ Sink::DockerArchive { .. }) => {
                return Err(ShipError::ZstdNotSupported {
                    output: s.to_string(),
                    reason: "a docker archive is for `docker load`, and docker before 23.0 cannot read zstd; \
                             write oci-archive:FILE instead (podman, skopeo and containerd read it), or pack with --compression gzip"
                        .into(),
                });
            }
            Output::Load(engine) => engine::check_reads_zstd(*engine)?,
            _ => {}
        }
    }
    Ok(())
}

/// Writes `artifact` to one output. `push` and `progress` are used by
/// [`Output::Push`] only.
pub fn write(
    artifact: &Artifact,
    output: &Output,
    opts: &WriteOptions,
    push: &PushOptions,
    progress: &(dyn Fn(&PushEvent) + Sync),
) -> Result<Vec<Shipped>, ShipError> {
    let digest = artifact.digest().to_string();
    match output {
        Output::File(sink) => {
            crate::write_sink(artifact, sink, opts)?;
            // Name the tag an `oci:DIR` output got when none was given.
            let target = match sink {
                Sink::OciLayout { dir, tag: None } => Sink::OciLayout {
                    dir: dir.clone(),
                    tag: Some(
                        opts.name
                            .as_deref()
                            .and_then(layout::name_tag)
                            .unwrap_or("latest")
                            .to_string(),
                    ),
                },
                other => other.clone(),
            };
            Ok(vec![Shipped {
                kind: sink.kind(),
                target: target.to_string(),
                digest,
                reference: None,
                bytes_uploaded: 0,
            }])
        }
        Output::Load(engine) => {
            let loaded = engine::load(artifact, *engine, opts)?;
            let image_digest = artifact
                .image_for(Some(&Platform::host()))
                .or_else(|_| artifact.image_for(None))
                .map(|i| i.digest().to_string())
                .unwrap_or(digest);
            Ok(vec![Shipped {
                kind: "load",
                target: loaded.engine.to_string(),
                digest: image_digest,
                reference: Some(loaded.name),
                bytes_uploaded: 0,
            }])
        }
        Output::Push(targets) => {
            let report = registry::push(artifact, targets, push, progress).map_err(|source| {
                ShipError::Push {
                    targets: output.to_string(),
                    source,
                }
            })?;
            Ok(report
                .targets
                .into_iter()
                .map(|t| Shipped {
                    kind: "push",
                    target: t.reference,
                    digest: t.digest,
                    reference: Some(t.pushed),
                    bytes_uploaded: t.bytes_uploaded,
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distroless_pack_image::{spec::ImageConfiguration, Image, Index};

    fn image(arch: &str) -> Image {
        let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {}
        }))
        .unwrap();
        Image::new(&config, Vec::new(), &Default::default()).unwrap()
    }

    #[test]
    fn index_to_docker_archive_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let index = Artifact::Index(
            Index::new(vec![image("amd64"), image("arm64")], &Default::default()).unwrap(),
        );
        let archive = d.path().join("d.tar");
        let outputs = vec![
            Output::File(
                format!("oci:{}", d.path().join("lay").display())
                    .parse()
                    .unwrap(),
            ),
            Output::File(Sink::DockerArchive {
                path: archive.clone(),
                reference: None,
            }),
        ];
        let e = check(&index, &outputs).unwrap_err();
        assert!(matches!(e, ShipError::IndexNotSupported { .. }), "{e}");
        assert_eq!(e.kind(), distroless_pack_image::ErrorKind::Usage);
        assert!(!archive.exists() && !d.path().join("lay").exists());
        // One image is fine anywhere.
        check(&Artifact::Image(image("amd64")), &outputs).unwrap();
    }

    #[test]
    fn zstd_image_to_docker_archive_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},
            "config": {}
        }))
        .unwrap();
        let layer = distroless_pack_image::Blob::from_bytes(
            MEDIA_TYPE_LAYER_ZSTD,
            vec![0x28, 0xb5, 0x2f, 0xfd],
        );
        let img = Artifact::Image(Image::new(&config, vec![layer], &Default::default()).unwrap());
        assert!(has_zstd_layers(&img));
        let archive = d.path().join("d.tar");
        let docker = Output::File(Sink::DockerArchive {
            path: archive.clone(),
            reference: None,
        });
        let oci = Output::File(
            format!("oci-archive:{}", d.path().join("o.tar").display())
                .parse()
                .unwrap(),
        );
        let e = check(&img, &[oci.clone(), docker.clone()]).unwrap_err();
        assert!(matches!(e, ShipError::ZstdNotSupported { .. }), "{e}");
        assert_eq!(e.kind(), distroless_pack_image::ErrorKind::Usage);
        let msg = e.to_string();
        assert!(
            msg.contains("docker-archive:") && msg.contains("zstd"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        assert!(!archive.exists());
        // An OCI archive takes it, and a gzip image goes anywhere.
        check(&img, &[oci]).unwrap();
        assert!(!has_zstd_layers(&Artifact::Image(image("amd64"))));
        check(&Artifact::Image(image("amd64")), &[docker]).unwrap();
    }

    #[test]
    fn digest_file_has_no_newline_and_no_temp_left() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("digest");
        crate::dest::write_digest_file(&f, "sha256:00").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "sha256:00");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let e = crate::dest::write_digest_file(&d.path().join("no/such/dir/x"), "sha256:00")
            .unwrap_err();
        assert_eq!(e.kind(), distroless_pack_image::ErrorKind::Output);
    }
}
