//! Docker archives (`docker-archive:FILE`): one tar that `docker load`
//! (20.10 and later) and `podman load` both take.
//!
//! The tar is an OCI image layout (what podman and docker 25+ read) plus
//! the docker `manifest.json` (`Config`, `RepoTags`, `Layers`, pointing at
//! the same `blobs/sha256/<hex>` files) that docker 20.10 requires. Blobs are
//! stored once; layers stay gzip-compressed, which `docker load` accepts.
//! It holds exactly one platform: an index is refused unless a platform is
//! chosen.
//!
//! Reading also accepts plain `docker save` tars (manifest.json only, layers
//! as `<id>/layer.tar`): the image is rebuilt around their bytes as they are,
//! so layer digests are those of the (usually uncompressed) layer files.

use std::io::Write;
use std::path::Path;

use distroless_pack_image::{
    to_canonical_json, Artifact, Blob, DigestWriter, Image, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST,
};
use serde_json::{json, Value};

use crate::layout::{name_repository, name_tag, naming};
use crate::oci_archive::layout_entries;
use crate::store::{blob_path, open_region, read_layout_store, Store, TarStore};
use crate::tarw::{write_tar, write_tar_file, Content};
use crate::ReadBack;
use crate::{ShipError, WriteOptions};

/// Media type of an uncompressed OCI layer (what `docker save` layers are).
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The one image a docker archive of `artifact` holds.
pub fn single_image<'a>(
    artifact: &'a Artifact,
    opts: &WriteOptions,
    path: &Path,
) -> Result<&'a Image, ShipError> {
    let platforms = || {
        artifact
            .images()
            .iter()
            .map(|i| i.platform.to_string())
            .collect::<Vec<_>>()
    };
    match (artifact, &opts.platform) {
        (Artifact::Image(i), None) => Ok(i),
        (_, Some(p)) => artifact
            .select(Some(p))
            .ok_or_else(|| ShipError::PlatformNotFound {
                path: path.to_path_buf(),
                platform: p.to_string(),
                platforms: platforms(),
            }),
        (Artifact::Index(x), None) if x.images.len() == 1 => Ok(&x.images[0]),
        (Artifact::Index(_), None) => Err(ShipError::IndexNotSupported {
            path: path.to_path_buf(),
            format: "docker-archive",
            platforms: platforms(),
        }),
    }
}

/// The fully qualified name docker's `RepoTags` wants (`hello` -> `hello:latest`).
pub fn repo_tag(name: &str) -> Option<String> {
    if name.contains('@') {
        return None;
    }
    Some(match name_tag(name) {
        Some(_) => name.to_string(),
        None => format!("{}:latest", name_repository(name)),
    })
}

fn entries<'a>(image: &'a Artifact, opts: &WriteOptions) -> Vec<(String, Content<'a>)> {
    let Artifact::Image(img) = image else {
        unreachable!("docker archives hold one image")
    };
    let (ref_name, full) = naming(None, opts);
    // podman names an OCI-layout image after its ref name: give it the full name.
    let ref_name = full.clone().unwrap_or(ref_name);
    let mut e = layout_entries(image, &ref_name, full.as_deref(), false);
    // Every name, as `docker save` lists every tag.
    let mut tags: Vec<String> = Vec::new();
    for t in opts
        .name
        .iter()
        .chain(&opts.also)
        .filter_map(|n| repo_tag(n))
    {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let manifest = json!([{
        "Config": blob_path(&img.config.digest),
        "RepoTags": tags,
        "Layers": img.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }]);
    e.push((
        "manifest.json".into(),
        Content::Bytes(to_canonical_json(&manifest).expect("JSON values serialise")),
    ));
    e
}

/// Writes the image (or the platform `opts.platform` picks from an index)
/// as a docker archive at `path`.
pub fn write_docker_archive(
    artifact: &Artifact,
    path: &Path,
    opts: &WriteOptions,
) -> Result<(), ShipError> {
    let img = Artifact::Image(single_image(artifact, opts, crate::dest::shown(path))?.clone());
    write_tar_file(path, entries(&img, opts))
}

/// Streams the docker archive to `w` (for `docker load` on a pipe).
pub fn write_docker_archive_to<W: Write>(
    artifact: &Artifact,
    w: W,
    opts: &WriteOptions,
    label: &Path,
) -> Result<W, ShipError> {
    let img = Artifact::Image(single_image(artifact, opts, label)?.clone());
    write_tar(w, entries(&img, opts), label)
}

/// Reads a docker archive: ours (or docker 25+'s) through its OCI layout,
/// an older `docker save` tar through its manifest.json.
pub fn read_docker_archive(path: &Path) -> Result<ReadBack, ShipError> {
    let store = TarStore::open(path)?;
    if store.has("oci-layout") && store.has("index.json") {
        return read_layout_store(&store, None);
    }
    let bytes = store.read_small("manifest.json")?.ok_or_else(|| {
        ShipError::invalid(
            path,
            "not a docker archive (no manifest.json and no OCI layout in it)",
        )
    })?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ShipError::invalid(path, format!("invalid JSON in manifest.json: {e}")))?;
    let list = v
        .as_array()
        .ok_or_else(|| ShipError::invalid(path, "manifest.json is not a list"))?;
    let entry = match list.as_slice() {
        [one] => one,
        [] => return Err(ShipError::invalid(path, "manifest.json lists no image")),
        many => {
            return Err(ShipError::Ambiguous {
                path: path.to_path_buf(),
                available: many
                    .iter()
                    .map(|m| {
                        m.pointer("/RepoTags/0")
                            .and_then(Value::as_str)
                            .unwrap_or("<untagged>")
                            .to_string()
                    })
                    .collect(),
            })
        }
    };
    Ok(ReadBack {
        artifact: Artifact::Image(from_docker_save(&store, entry)?),
        name: entry
            .pointer("/RepoTags/0")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn from_docker_save(store: &TarStore, entry: &Value) -> Result<Image, ShipError> {
    let path = store.path();
    let config_path = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| ShipError::invalid(path, "manifest.json entry without Config"))?;
    let config_bytes = store.read_small(config_path)?.ok_or_else(|| {
        ShipError::invalid(
            path,
            format!("manifest.json names {config_path}, which is not in the archive"),
        )
    })?;
    let config = Blob::from_bytes(MEDIA_TYPE_CONFIG, config_bytes);
    let mut layers = Vec::new();
    for l in entry
        .get("Layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rel = l
            .as_str()
            .ok_or_else(|| ShipError::invalid(path, "manifest.json: a layer is not a path"))?;
        let (file, offset, size) = store.locate(rel)?.ok_or_else(|| {
            ShipError::invalid(
                path,
                format!("manifest.json names {rel}, which is not in the archive"),
            )
        })?;
        // Hash the layer where it is, and look at its first bytes for gzip
        // or zstd.
        let mut r = open_region(&file, offset, size).map_err(ShipError::io("reading", path))?;
        let mut w = DigestWriter::new(std::io::sink());
        let mut head = [0u8; 4];
        let mut got = 0;
        while got < head.len() {
            let n = std::io::Read::read(&mut r, &mut head[got..])
                .map_err(ShipError::io("reading", path))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        w.write_all(&head[..got]).expect("sink");
        std::io::copy(&mut r, &mut w).map_err(ShipError::io("reading", path))?;
        let (digest, n, _) = w.finish_with_size();
        if n != size {
            return Err(ShipError::invalid(path, format!("{rel} is truncated")));
        }
        let mt = if got >= 2 && head[..2] == [0x1f, 0x8b] {
            distroless_pack_image::MEDIA_TYPE_LAYER_GZIP
        } else if got == 4 && head == distroless_pack_image::ZSTD_MAGIC {
            distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD
        } else {
            MEDIA_TYPE_LAYER_TAR
        };
        layers.push(Blob::from_file(mt, digest, size, file, offset, None));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": config.descriptor_json(),
        "layers": layers.iter().map(Blob::descriptor_json).collect::<Vec<_>>(),
    });
    let manifest = Blob::from_bytes(
        MEDIA_TYPE_MANIFEST,
        to_canonical_json(&manifest).expect("JSON values serialise"),
    );
    Image::from_parts(manifest, config, layers).map_err(crate::ShipError::image(path))
}
