//! The in-memory OCI image that every distroless-pack stage passes along.
//!
//! `assemble` produces an [`Image`] (or an [`Index`] of several, one per
//! platform); every output format in `ship` (OCI layout, OCI archive, docker
//! archive, engine load, registry push) writes the same value, and every
//! reader in `ship` gives one back. This is the role `v1.Image` and
//! `v1.ImageIndex` play in go-containerregistry.
//!
//! An image is eager and immutable: the manifest and config are kept as the
//! exact bytes whose digests name them, and each layer is a [`Blob`] whose
//! bytes live in memory or in a region of a file on disk (a temp file written
//! by the layer writer, a file in a layout, or an entry inside a tar archive).
//! Nothing here recompresses or re-serialises a blob, so digests never drift
//! between formats.

mod blob;
mod canonical;
mod digest;
mod engine;
pub mod inputs;
mod kind;
mod layer_reader;
pub mod platform;
mod referrer;
mod severity;
mod tools;

pub use blob::{Blob, BlobData, BlobMismatch, KeepAlive, VerifyingReader};
pub use canonical::to_canonical_json;
pub use digest::{Digest, DigestError, DigestWriter};
pub use engine::Engine;
pub use inputs::{BuilderImage, Ecosystem, Package, PinnedInputs, SourceTree, StaticLibrary};
pub use kind::ErrorKind;
pub use layer_reader::uncompressed;
pub use oci_spec::image as spec;
pub use platform::{expand_choices, Platform, PlatformChoice, PlatformChoiceError, PlatformError};
pub use referrer::{
    empty_blob, first_of_type, is_artifact_manifest, parse_artifact_manifest, refers_to,
    valid_media_type, ArtifactManifest, Referrer, Subject, ANNOTATION_CREATED, ANNOTATION_TITLE,
    EMPTY_JSON, MEDIA_TYPE_EMPTY,
};
pub use severity::Severity;
pub use tools::{clean_path, human_size, which};

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

/// Media type of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer (image-spec 1.1; `pack
/// --compression zstd`).
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The first four bytes of every zstd frame (RFC 8878), how readers tell a
/// zstd layer from a gzip (`1f 8b`) or plain tar one.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Docker schema 2 manifest (accepted when reading foreign images).
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (accepted when reading foreign images).
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config (accepted when reading foreign images).
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer (accepted when reading foreign images).
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation OCI layouts use to name an image ("the tag").
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd/podman read for the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Errors building or parsing an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Mismatch(#[from] BlobMismatch),
    #[error("reading blob {digest}: {source}")]
    Io {
        digest: String,
        #[source]
        source: std::io::Error,
    },
}

/// No image of an artifact fits the platform asked for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", match wanted {
    Some(p) => format!("the image has no {p} variant; it has {}", available.join(", ")),
    None => format!("the index has {} and none is this host's; pick one with --platform", available.join(", ")),
})]
pub struct NoSuchPlatform {
    /// The platform asked for (`None`: the host's, implicitly).
    pub wanted: Option<Platform>,
    /// The platforms the artifact has.
    pub available: Vec<String>,
}

impl ImageError {
    /// Every image error is bad input (a malformed manifest or config).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

/// One single-platform image: manifest, config and layers.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest, as the exact bytes its digest names.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// Layers, bottom first.
    pub layers: Vec<Blob>,
    /// The platform from the config (`os`/`architecture`/`variant`).
    pub platform: Platform,
    /// Artifacts attached to this image (SBOM, provenance, ...), each with
    /// this image's manifest as its `subject`, sorted by digest. They are
    /// not part of the manifest: attaching never changes a digest.
    pub referrers: Vec<Referrer>,
}

impl Image {
    /// Builds an OCI image from a config and its layers. The config and the
    /// manifest are serialised canonically (sorted keys, no whitespace), so
    /// the same inputs always give the same digests.
    pub fn new(
        config: &ImageConfiguration,
        layers: Vec<Blob>,
        manifest_annotations: &BTreeMap<String, String>,
    ) -> Result<Image, ImageError> {
        let platform = Platform::from_config(config);
        let config_bytes = to_canonical_json(config).map_err(|source| ImageError::Json {
            what: "image config",
            source,
        })?;
        let config = Blob::from_bytes(MEDIA_TYPE_CONFIG, config_bytes);
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": config.descriptor_json(),
            "layers": layers.iter().map(Blob::descriptor_json).collect::<Vec<_>>(),
        });
        if !manifest_annotations.is_empty() {
            manifest["annotations"] =
                serde_json::to_value(manifest_annotations).expect("string map serialises");
        }
        let manifest_bytes = to_canonical_json(&manifest).map_err(|source| ImageError::Json {
            what: "image manifest",
            source,
        })?;
        Ok(Image {
            manifest: Blob::from_bytes(MEDIA_TYPE_MANIFEST, manifest_bytes),
            config,
            layers,
            platform,
            referrers: Vec::new(),
        })
    }

    /// Reassembles an image from blobs read back from some source. The
    /// manifest is checked to name exactly the given config and layers.
    pub fn from_parts(
        manifest: Blob,
        config: Blob,
        layers: Vec<Blob>,
    ) -> Result<Image, ImageError> {
        let parsed = parse_manifest(&manifest)?;
        if parsed.config().digest().to_string() != config.digest.as_str() {
            return Err(ImageError::Invalid {
                what: "image",
                message: format!(
                    "manifest names config {} but {} was given",
                    parsed.config().digest(),
                    config.digest
                ),
            });
        }
        if parsed.layers().len() != layers.len() {
            return Err(ImageError::Invalid {
                what: "image",
                message: format!(
                    "manifest names {} layers but {} were given",
                    parsed.layers().len(),
                    layers.len()
                ),
            });
        }
        let config_json: ImageConfiguration =
            serde_json::from_slice(&config.read_all()?).map_err(|source| ImageError::Json {
                what: "image config",
                source,
            })?;
        Ok(Image {
            platform: Platform::from_config(&config_json),
            manifest,
            config,
            layers,
            referrers: Vec::new(),
        })
    }

    /// The manifest digest: the image's identity.
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// The parsed manifest.
    pub fn manifest_json(&self) -> Result<ImageManifest, ImageError> {
        parse_manifest(&self.manifest)
    }

    /// The parsed config.
    pub fn config_json(&self) -> Result<ImageConfiguration, ImageError> {
        serde_json::from_slice(&self.config.read_all()?).map_err(|source| ImageError::Json {
            what: "image config",
            source,
        })
    }

    /// Config first, then the layers: every blob a registry or layout needs
    /// besides the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// Attaches `referrer` to this image (once: the same digest twice is
    /// kept once; the list stays sorted by digest). Refused when its
    /// `subject` is another manifest.
    pub fn attach(&mut self, referrer: Referrer) -> Result<(), ImageError> {
        if referrer.subject.digest != *self.digest() {
            return Err(ImageError::Invalid {
                what: "referrer",
                message: format!(
                    "{} is attached to {}, not to this image ({})",
                    referrer.digest(),
                    referrer.subject.digest,
                    self.digest()
                ),
            });
        }
        if let Err(at) = self
            .referrers
            .binary_search_by(|r| r.digest().cmp(referrer.digest()))
        {
            self.referrers.insert(at, referrer);
        }
        Ok(())
    }

    /// The descriptor of this image's manifest, with its platform, as an
    /// index or `index.json` lists it.
    pub fn manifest_descriptor(&self) -> serde_json::Value {
        let mut d = self.manifest.descriptor_json();
        d["platform"] = self.platform.to_json();
        d
    }
}

/// Several images, one per platform, under one OCI image index.
#[derive(Clone, Debug)]
pub struct Index {
    /// The index, as the exact bytes its digest names.
    pub index: Blob,
    /// The images it lists, in its order.
    pub images: Vec<Image>,
}

impl Index {
    /// Builds an index over `images` (in the given order, which callers keep
    /// stable so the digest is reproducible).
    pub fn new(
        images: Vec<Image>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Index, ImageError> {
        let mut index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": images.iter().map(Image::manifest_descriptor).collect::<Vec<_>>(),
        });
        if !annotations.is_empty() {
            index["annotations"] =
                serde_json::to_value(annotations).expect("string map serialises");
        }
        let bytes = to_canonical_json(&index).map_err(|source| ImageError::Json {
            what: "image index",
            source,
        })?;
        Ok(Index {
            index: Blob::from_bytes(MEDIA_TYPE_INDEX, bytes),
            images,
        })
    }

    /// The index digest.
    pub fn digest(&self) -> &Digest {
        &self.index.digest
    }

    /// The parsed index.
    pub fn index_json(&self) -> Result<ImageIndex, ImageError> {
        serde_json::from_slice(&self.index.read_all()?).map_err(|source| ImageError::Json {
            what: "image index",
            source,
        })
    }

    /// The image for `platform`, if the index has one.
    pub fn image_for(&self, platform: &Platform) -> Option<&Image> {
        self.images.iter().find(|i| i.platform.matches(platform))
    }
}

/// What a command produces or reads: one image, or an index of several.
// An Image is a few hundred bytes (its blobs' descriptors); a run holds one
// or two artifacts and moves them rarely, so boxing it would only churn
// every constructor and match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Artifact {
    Image(Image),
    Index(Index),
}

impl Artifact {
    /// The digest of the top-level manifest or index.
    pub fn digest(&self) -> &Digest {
        match self {
            Artifact::Image(i) => i.digest(),
            Artifact::Index(x) => x.digest(),
        }
    }

    /// The top-level blob (manifest or index).
    pub fn top(&self) -> &Blob {
        match self {
            Artifact::Image(i) => &i.manifest,
            Artifact::Index(x) => &x.index,
        }
    }

    /// Every single-platform image it holds.
    pub fn images(&self) -> &[Image] {
        match self {
            Artifact::Image(i) => std::slice::from_ref(i),
            Artifact::Index(x) => &x.images,
        }
    }

    /// Every single-platform image, to attach referrers to (attaching
    /// changes no digest, so the index stays valid).
    pub fn images_mut(&mut self) -> &mut [Image] {
        match self {
            Artifact::Image(i) => std::slice::from_mut(i),
            Artifact::Index(x) => &mut x.images,
        }
    }

    /// Whether any image of it has referrers.
    pub fn has_referrers(&self) -> bool {
        self.images().iter().any(|i| !i.referrers.is_empty())
    }

    /// Every referrer of every image, in image order.
    pub fn referrers(&self) -> impl Iterator<Item = &Referrer> {
        self.images().iter().flat_map(|i| i.referrers.iter())
    }

    /// The image for one platform: the image itself when it is a single
    /// image of that platform (or any platform when `platform` is `None`
    /// and there is only one image).
    pub fn select(&self, platform: Option<&Platform>) -> Option<&Image> {
        match (self, platform) {
            (Artifact::Image(i), None) => Some(i),
            (Artifact::Image(i), Some(p)) => i.platform.matches(p).then_some(i),
            (Artifact::Index(x), Some(p)) => x.image_for(p),
            (Artifact::Index(x), None) if x.images.len() == 1 => x.images.first(),
            (Artifact::Index(_), None) => None,
        }
    }

    /// The image to use from this artifact: the one `platform` names, else
    /// the only one, else the host's. The error lists what there is. (The
    /// one rule `run`, `inspect`, `--load` and the docker archive share.)
    pub fn image_for(&self, platform: Option<&Platform>) -> Result<&Image, NoSuchPlatform> {
        let images = self.images();
        let platforms: Vec<&Platform> = images.iter().map(|i| &i.platform).collect();
        choose_platform(&platforms, platform).map(|i| &images[i])
    }
}

/// Which of `platforms` (an artifact's images, in order) to use: the one
/// `wanted` names, else the only one, else the host's. The rule of
/// [`Artifact::image_for`], for readers that choose before they have the
/// images (a registry pull fetches only the chosen image's layers).
pub fn choose_platform(
    platforms: &[&Platform],
    wanted: Option<&Platform>,
) -> Result<usize, NoSuchPlatform> {
    let found = match (wanted, platforms.len()) {
        (Some(w), _) => platforms.iter().position(|p| p.matches(w)),
        (None, 1) => Some(0),
        (None, _) => platforms.iter().position(|p| p.matches(&Platform::host())),
    };
    found.ok_or_else(|| NoSuchPlatform {
        wanted: wanted.cloned(),
        available: platforms.iter().map(|p| p.to_string()).collect(),
    })
}

fn parse_manifest(blob: &Blob) -> Result<ImageManifest, ImageError> {
    serde_json::from_slice(&blob.read_all()?).map_err(|source| ImageError::Json {
        what: "image manifest",
        source,
    })
}

/// Turns a spec descriptor into our JSON form (used by readers).
pub fn descriptor_media_type(d: &Descriptor) -> String {
    match d.media_type() {
        MediaType::Other(s) => s.clone(),
        m => m.to_string(),
    }
}
