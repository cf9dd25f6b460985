//! Documents attached to an image as OCI 1.1 artifacts ("referrers"): an
//! SBOM, a provenance statement, a signature.
//!
//! A [`Referrer`] is an image manifest whose `artifactType` says what it
//! holds, whose config is the empty descriptor (`{}`), whose one layer is
//! the document with its own media type, and whose `subject` is the
//! descriptor of the image manifest it is about. Attaching one never
//! changes the image: the image's manifest, config and any index over it
//! keep their bytes and digests; the referrer points at the image, not the
//! other way round (image-spec 1.1, `manifest.md` "subject",
//! distribution-spec 1.1 "Listing Referrers").

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::{to_canonical_json, Blob, Digest, Image, ImageError, MEDIA_TYPE_MANIFEST};

/// Media type of the empty descriptor an artifact uses as its config.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty blob's bytes: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The annotation naming a layer's file (what `oras pull` names it by).
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// The annotation giving a manifest's creation time (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// The manifest a referrer is about: its descriptor's three fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Subject {
    /// The subject descriptor of an image's manifest.
    pub fn of(image: &Image) -> Subject {
        Subject::of_manifest(&image.manifest)
    }

    /// The subject descriptor of a manifest blob (an image manifest read
    /// from a registry, or an index).
    pub fn of_manifest(manifest: &Blob) -> Subject {
        Subject {
            media_type: if manifest.media_type.is_empty() {
                MEDIA_TYPE_MANIFEST.to_string()
            } else {
                manifest.media_type.clone()
            },
            digest: manifest.digest.clone(),
            size: manifest.size,
        }
    }

    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.as_str(), "size": self.size})
    }
}

/// One artifact attached to an image: its manifest (the exact bytes its
/// digest names), the empty config blob and the payload blob(s).
#[derive(Clone, Debug)]
pub struct Referrer {
    /// The artifact manifest.
    pub manifest: Blob,
    /// `artifactType`: what the document is (`application/spdx+json`).
    pub artifact_type: String,
    /// The config blob (the empty `{}` for artifacts this crate makes;
    /// whatever the manifest names for ones read back).
    pub config: Blob,
    /// The payload blobs, in manifest order (one for artifacts made here).
    pub layers: Vec<Blob>,
    /// The image manifest it is attached to.
    pub subject: Subject,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The first of `referrers` whose artifact type (`type_of`) is `wanted`,
/// and the artifact types among them, sorted, each once (for messages that
/// say what is attached). Serves a layout's [`Referrer`]s and a registry's
/// listed descriptors alike.
pub fn first_of_type<'a, T>(
    referrers: &'a [T],
    wanted: &str,
    type_of: impl Fn(&T) -> &str,
) -> (Option<&'a T>, Vec<String>) {
    let mut types: Vec<String> = referrers.iter().map(|r| type_of(r).to_string()).collect();
    types.sort();
    types.dedup();
    (referrers.iter().find(|r| type_of(r) == wanted), types)
}

/// Whether `s` looks like a media type (`type/subtype[+suffix][;params]`).
pub fn valid_media_type(s: &str) -> bool {
    let base = s.split(';').next().unwrap_or("");
    let Some((t, sub)) = base.split_once('/') else {
        return false;
    };
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 127
            && p.as_bytes()[0].is_ascii_alphanumeric()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    ok(t) && ok(sub) && !s.chars().any(char::is_whitespace)
}

fn invalid(message: String) -> ImageError {
    ImageError::Invalid {
        what: "referrer",
        message,
    }
}

impl Referrer {
    /// An artifact of `artifact_type` holding `payload` (with its own media
    /// type), attached to `subject`. The manifest is canonical JSON; it
    /// holds no time unless the caller passes one in `annotations` (the
    /// CLI takes it from `SOURCE_DATE_EPOCH`), so the same inputs give the
    /// same digest.
    pub fn new(
        subject: &Image,
        artifact_type: &str,
        payload: Blob,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Referrer, ImageError> {
        Referrer::for_subject(
            Subject::of(subject),
            artifact_type,
            payload,
            None,
            annotations,
        )
    }

    /// As [`Referrer::new`], for a subject known by its descriptor (an
    /// image in a registry), with an optional file name for the payload
    /// (`org.opencontainers.image.title`, as `oras attach` sets it).
    pub fn for_subject(
        subject: Subject,
        artifact_type: &str,
        payload: Blob,
        title: Option<&str>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Referrer, ImageError> {
        if !valid_media_type(artifact_type) {
            return Err(invalid(format!(
                "artifact type {artifact_type:?} is not a media type (type/subtype)"
            )));
        }
        if !valid_media_type(&payload.media_type) {
            return Err(invalid(format!(
                "payload media type {:?} is not a media type (type/subtype)",
                payload.media_type
            )));
        }
        let config = empty_blob();
        let mut layer = payload.descriptor_json();
        if let Some(t) = title {
            layer["annotations"] = json!({ ANNOTATION_TITLE: t });
        }
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "artifactType": artifact_type,
            "config": config.descriptor_json(),
            "layers": [layer],
            "subject": subject.to_json(),
        });
        if !annotations.is_empty() {
            manifest["annotations"] =
                serde_json::to_value(annotations).expect("string map serialises");
        }
        let bytes = to_canonical_json(&manifest).map_err(|source| ImageError::Json {
            what: "referrer manifest",
            source,
        })?;
        Ok(Referrer {
            manifest: Blob::from_bytes(MEDIA_TYPE_MANIFEST, bytes),
            artifact_type: artifact_type.to_string(),
            config,
            layers: vec![payload],
            subject,
            annotations: annotations.clone(),
        })
    }

    /// Parses a referrer's manifest read back from somewhere; `blob` gives
    /// the blob a descriptor names (the config and each layer).
    pub fn from_manifest(
        manifest: Blob,
        mut blob: impl FnMut(&str, &Digest, u64) -> Result<Blob, ImageError>,
    ) -> Result<Referrer, ImageError> {
        let p = parse_artifact_manifest(&manifest.read_all()?)?;
        let config = blob(&p.config.0, &p.config.1, p.config.2)?;
        let mut layers = Vec::new();
        for (mt, d, size) in &p.layers {
            layers.push(blob(mt, d, *size)?);
        }
        Ok(Referrer {
            manifest,
            artifact_type: p.artifact_type,
            config,
            layers,
            subject: p.subject,
            annotations: p.annotations,
        })
    }

    /// The manifest digest: the referrer's identity.
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// The config, then the layers: every blob besides the manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// The descriptor a referrers list (the registry's referrers API, the
    /// tag schema's index) gives it: media type, digest, size,
    /// `artifactType` and the manifest's annotations.
    pub fn descriptor_json(&self) -> Value {
        let mut d = self.manifest.descriptor_json();
        d["artifactType"] = self.artifact_type.clone().into();
        if !self.annotations.is_empty() {
            d["annotations"] =
                serde_json::to_value(&self.annotations).expect("string map serialises");
        }
        d
    }
}

/// The empty blob `{}` with its media type.
pub fn empty_blob() -> Blob {
    Blob::from_bytes(MEDIA_TYPE_EMPTY, EMPTY_JSON.to_vec())
}

/// What a manifest with a `subject` says about itself.
#[derive(Clone, Debug)]
pub struct ArtifactManifest {
    /// `artifactType`, else the config's media type (as the
    /// distribution-spec's referrers list reports it).
    pub artifact_type: String,
    /// `(mediaType, digest, size)` of the config.
    pub config: (String, Digest, u64),
    /// `(mediaType, digest, size)` of each layer.
    pub layers: Vec<(String, Digest, u64)>,
    pub subject: Subject,
    pub annotations: BTreeMap<String, String>,
}

fn desc_fields(v: &Value, what: &str) -> Result<(String, Digest, u64), ImageError> {
    let mt = v
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no mediaType")))?;
    let d: Digest = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?
        .parse()?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(format!("{what} has no size")))?;
    Ok((mt.to_string(), d, size))
}

/// Parses `bytes` as an image manifest that has a `subject` (an artifact
/// manifest). `Ok(None)`-like cases (no subject, not a manifest) are
/// errors here; [`is_artifact_manifest`] is the cheap test.
pub fn parse_artifact_manifest(bytes: &[u8]) -> Result<ArtifactManifest, ImageError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what: "referrer manifest",
        source,
    })?;
    let (smt, sd, ssize) = desc_fields(
        v.get("subject")
            .ok_or_else(|| invalid("manifest has no subject".into()))?,
        "subject",
    )?;
    let config = desc_fields(
        v.get("config")
            .ok_or_else(|| invalid("manifest has no config".into()))?,
        "config",
    )?;
    let mut layers = Vec::new();
    for l in v
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        layers.push(desc_fields(l, "layer")?);
    }
    let artifact_type = v
        .get("artifactType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| config.0.clone());
    let annotations = v
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ArtifactManifest {
        artifact_type,
        config,
        layers,
        subject: Subject {
            media_type: smt,
            digest: sd,
            size: ssize,
        },
        annotations,
    })
}

/// Whether `bytes` are an image manifest with a `subject` whose digest is
/// `subject` (a referrer of it).
pub fn refers_to(bytes: &[u8], subject: &Digest) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let mt = v.get("mediaType").and_then(Value::as_str);
    (mt.is_none() || mt == Some(MEDIA_TYPE_MANIFEST))
        && v.pointer("/subject/digest").and_then(Value::as_str) == Some(subject.as_str())
}

/// Whether `bytes` look like an artifact manifest (an image manifest with
/// a `subject`), whatever it refers to.
pub fn is_artifact_manifest(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|v| {
        v.get("subject").is_some()
            && v.get("config").is_some()
            && matches!(
                v.get("mediaType").and_then(Value::as_str),
                None | Some(MEDIA_TYPE_MANIFEST)
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ImageConfiguration;

    fn image() -> Image {
        let config: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        Image::new(&config, vec![], &BTreeMap::new()).unwrap()
    }

    fn sbom() -> Blob {
        Blob::from_bytes(
            "application/spdx+json",
            br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
        )
    }

    #[test]
    fn a_referrer_is_an_oci_1_1_artifact_manifest_with_the_empty_config() {
        let img = image();
        let r = Referrer::new(&img, "application/spdx+json", sbom(), &BTreeMap::new()).unwrap();
        let v: Value = serde_json::from_slice(&r.manifest.read_all().unwrap()).unwrap();
        assert_eq!(v["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(v["artifactType"], "application/spdx+json");
        assert_eq!(v["config"]["mediaType"], MEDIA_TYPE_EMPTY);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["config"]["size"], 2);
        assert_eq!(v["layers"][0]["mediaType"], "application/spdx+json");
        assert_eq!(v["subject"]["digest"], img.digest().as_str());
        assert_eq!(v["subject"]["size"], img.manifest.size);
        assert_eq!(v["subject"]["mediaType"], MEDIA_TYPE_MANIFEST);
        assert!(v.get("annotations").is_none());
        // canonical: re-serialising sorted gives the same bytes
        assert_eq!(
            to_canonical_json(&v).unwrap(),
            r.manifest.read_all().unwrap()
        );
        assert!(refers_to(&r.manifest.read_all().unwrap(), img.digest()));
        assert!(is_artifact_manifest(&r.manifest.read_all().unwrap()));
        assert!(!is_artifact_manifest(&img.manifest.read_all().unwrap()));
    }

    #[test]
    fn the_same_inputs_give_the_same_referrer_digest() {
        let img = image();
        let mut ann = BTreeMap::new();
        ann.insert("b".to_string(), "2".to_string());
        ann.insert("a".to_string(), "1".to_string());
        let a = Referrer::new(&img, "application/spdx+json", sbom(), &ann).unwrap();
        let b = Referrer::new(&img, "application/spdx+json", sbom(), &ann).unwrap();
        assert_eq!(a.digest(), b.digest());
        let d = a.descriptor_json();
        assert_eq!(d["artifactType"], "application/spdx+json");
        assert_eq!(d["annotations"]["a"], "1");
    }

    #[test]
    fn attaching_does_not_change_the_image_or_index_digest() {
        let img = image();
        let before = img.digest().clone();
        let idx_before = crate::Index::new(vec![img.clone()], &BTreeMap::new())
            .unwrap()
            .digest()
            .clone();
        let r = Referrer::new(&img, "application/spdx+json", sbom(), &BTreeMap::new()).unwrap();
        let mut img2 = img.clone();
        img2.attach(r.clone()).unwrap();
        img2.attach(r).unwrap(); // the same one twice is kept once
        assert_eq!(img2.referrers.len(), 1);
        assert_eq!(img2.digest(), &before);
        assert_eq!(
            img2.manifest.read_all().unwrap(),
            img.manifest.read_all().unwrap()
        );
        assert_eq!(img2.config.digest, img.config.digest);
        let idx = crate::Index::new(vec![img2], &BTreeMap::new()).unwrap();
        assert_eq!(idx.digest(), &idx_before);
    }

    #[test]
    fn a_referrer_of_another_image_is_refused() {
        let img = image();
        let other = {
            let config: ImageConfiguration = serde_json::from_value(json!({
                "architecture": "arm64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []}
            }))
            .unwrap();
            Image::new(&config, vec![], &BTreeMap::new()).unwrap()
        };
        let r = Referrer::new(&other, "application/spdx+json", sbom(), &BTreeMap::new()).unwrap();
        let mut img = img;
        let e = img.attach(r).unwrap_err().to_string();
        assert!(e.contains("is attached to"), "{e}");
    }

    #[test]
    fn artifact_types_must_be_media_types() {
        let img = image();
        for bad in ["spdx", "", "a/", "/b", "a b/c"] {
            assert!(
                Referrer::new(&img, bad, sbom(), &BTreeMap::new()).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(valid_media_type("application/vnd.in-toto+json"));
        assert!(!valid_media_type("text/plain; charset=utf-8"));
        assert!(valid_media_type("text/plain;charset=utf-8"));
    }

    #[test]
    fn a_referrer_read_back_from_its_manifest_is_the_same() {
        let img = image();
        let mut ann = BTreeMap::new();
        ann.insert(
            ANNOTATION_CREATED.to_string(),
            "1970-01-01T00:00:00Z".into(),
        );
        let r = Referrer::for_subject(
            Subject::of(&img),
            "application/spdx+json",
            sbom(),
            Some("sbom.spdx.json"),
            &ann,
        )
        .unwrap();
        let blobs: Vec<Blob> = r.blobs().cloned().collect();
        let back = Referrer::from_manifest(r.manifest.clone(), |_, d, _| {
            Ok(blobs.iter().find(|b| &b.digest == d).unwrap().clone())
        })
        .unwrap();
        assert_eq!(back.digest(), r.digest());
        assert_eq!(back.artifact_type, "application/spdx+json");
        assert_eq!(back.subject, Subject::of(&img));
        assert_eq!(back.annotations, ann);
        assert_eq!(back.layers[0].digest, sbom().digest);
    }
}
