//! Referrers in registries (distribution-spec 1.1): pushing the artifacts
//! attached to an image, and listing the ones a registry has for a
//! manifest.
//!
//! Pushing, after the image's manifests: each referrer's blobs (the empty
//! config, the payload) through push.rs's blob upload, then its manifest
//! by digest. A registry that keeps the referrers index itself answers the
//! manifest `PUT` with an `OCI-Subject` header naming the subject; one
//! that does not (distribution 2.8, most registries before 2024) gets the
//! referrers tag schema: the tag `sha256-<hex of the subject>` holds an
//! image index listing the subject's referrers, read (when present),
//! merged (deduplicated by digest, sorted by digest) and put back.
//!
//! Listing: `GET /v2/<name>/referrers/<digest>` (following `Link` pages);
//! on 404, or an answer that is not an image index (no referrers API), the
//! tag schema's index. `oras discover` (oras-go's `Repository.Referrers`)
//! and `cosign tree` (go-containerregistry's `remote.Referrers`) look in
//! the same two places, the same way.

use std::collections::{BTreeMap, HashMap};

use distroless_pack_image::{
    Artifact, Blob, Digest, Platform, Referrer, Subject, MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

use super::push::{push_blobs, put_manifest_at, put_manifest_healing, Heal, ProgressFn};
use super::transport::{self, Session};
use super::BlobReport;
use super::{PushEvent, PushOptions, Reference, RegistryError};

/// How a registry learnt about a referrer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The registry answered `OCI-Subject`: its referrers API lists it.
    Api,
    /// The `sha256-<hex>` tag's index lists it (the referrers tag schema).
    TagSchema,
}

/// One referrer pushed.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerReport {
    /// The image manifest it is attached to.
    pub subject: String,
    pub digest: String,
    pub artifact_type: String,
    pub size: u64,
    pub via: Via,
    /// For the tag schema: the tag holding the index (`sha256-<hex>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The tag the referrers tag schema uses for `subject`: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// Pushes the manifests of every referrer of every image of `artifact`
/// into `repo` (called by [`super::push`] beside the image's manifests,
/// each referrer once `subjects` says its subject is in; their blobs went
/// up in the image's batch, whose `blob_reports` heal a manifest the
/// registry refuses for a missing blob).
#[allow(clippy::too_many_arguments)]
pub(super) fn push_referrers(
    session: &Session,
    name: &str,
    repo: &str,
    artifact: &Artifact,
    blob_reports: &mut Vec<BlobReport>,
    subjects: &SubjectGate,
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<Vec<ReferrerReport>, RegistryError> {
    let referrers: Vec<&Referrer> = artifact.referrers().collect();
    put_referrer_manifests(
        session,
        name,
        repo,
        &referrers,
        blob_reports,
        Some(subjects),
        opts,
        progress,
    )
}

/// The manifests a push has put so far, for the attached artifacts' thread
/// to put each referrer only after its subject. OCI 1.1 allows a referrer
/// first, but some registries refuse one whose subject they do not have
/// yet (gitlab.com: buildkit#7007), so the subject goes first; the
/// referrers of an index's first platform still go up while the others'
/// manifests do.
#[derive(Default)]
pub(super) struct SubjectGate {
    /// (digests put, `Some(ok)` once the image manifests are over)
    state: std::sync::Mutex<(std::collections::HashSet<Digest>, Option<bool>)>,
    changed: std::sync::Condvar,
}

impl SubjectGate {
    /// `digest` is in the registry now.
    pub(super) fn put(&self, digest: &Digest) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.insert(digest.clone());
        self.changed.notify_all();
    }

    /// No more manifests will be put: all went up (`ok`), or an error
    /// stopped them. The first call counts.
    pub(super) fn finish(&self, ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1.get_or_insert(ok);
        self.changed.notify_all();
    }

    /// Waits until `digest` is put or the image manifests are over: true
    /// to go on (the subject is in, or everything went up, so a subject
    /// from outside this push is the registry's business), false when the
    /// image's push stopped.
    fn wait_for(&self, digest: &Digest) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if s.0.contains(digest) {
                return true;
            }
            if let Some(ok) = s.1 {
                return ok;
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Finishes the gate as failed when dropped before it finished well, so
/// that an error or a panic on the image side never leaves the referrers'
/// thread waiting.
pub(super) struct CloseOnDrop<'a>(pub(super) &'a SubjectGate);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish(false);
    }
}

/// Uploads the blobs of `referrers` (skipping those `repo` has), then
/// puts their manifests.
fn push_referrer_list(
    session: &Session,
    name: &str,
    repo: &str,
    referrers: &[&Referrer],
    known: &HashMap<Digest, String>,
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<Vec<ReferrerReport>, RegistryError> {
    if referrers.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<&Blob> = referrers
        .iter()
        .flat_map(|r| r.blobs())
        .filter(|b| seen.insert(b.digest.clone()))
        .collect();
    let mut blob_reports = push_blobs(session, name, repo, &blobs, known, opts, progress)?;
    put_referrer_manifests(
        session,
        name,
        repo,
        referrers,
        &mut blob_reports,
        None,
        opts,
        progress,
    )
}

/// Puts each referrer's manifest (its blobs are in `repo`; with `subjects`,
/// once its subject is), then, for the subjects whose registry did not
/// answer `OCI-Subject`, the referrers tag schema's index. When the image's
/// push stops before a subject is put, so does this (the image's error is
/// the push's).
#[allow(clippy::too_many_arguments)]
fn put_referrer_manifests(
    session: &Session,
    name: &str,
    repo: &str,
    referrers: &[&Referrer],
    blob_reports: &mut Vec<BlobReport>,
    subjects: Option<&SubjectGate>,
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<Vec<ReferrerReport>, RegistryError> {
    if referrers.is_empty() {
        return Ok(Vec::new());
    }
    let mut reports = Vec::new();
    // per subject, the referrers the registry did not index itself
    let mut by_tag: BTreeMap<Digest, Vec<&Referrer>> = BTreeMap::new();
    for r in referrers {
        if subjects.is_some_and(|g| !g.wait_for(&r.subject.digest)) {
            return Ok(reports);
        }
        // healed as the image's manifests are: a registry whose HEAD said
        // it had a blob it lacks gets the blob, then the manifest again
        let rblobs: Vec<&Blob> = r.blobs().collect();
        let heal = Heal {
            blobs: &rblobs,
            reports: blob_reports,
            name,
            progress,
        };
        let put =
            put_manifest_healing(session, repo, r.digest().as_str(), &r.manifest, opts, heal)?;
        // the registry keeps the referrers list itself when it answers
        // `OCI-Subject` with the subject
        let indexed = put.subject.as_deref() == Some(r.subject.digest.as_str());
        progress(&PushEvent::ManifestPushed {
            reference: &format!("{name}@{}", r.digest()),
            digest: r.digest(),
        });
        if !indexed {
            by_tag.entry(r.subject.digest.clone()).or_default().push(r);
        }
        reports.push(ReferrerReport {
            subject: r.subject.digest.to_string(),
            digest: r.digest().to_string(),
            artifact_type: r.artifact_type.clone(),
            size: r.manifest.size,
            via: if indexed { Via::Api } else { Via::TagSchema },
            tag: (!indexed).then(|| referrers_tag(&r.subject.digest)),
        });
    }
    for (subject, rs) in by_tag {
        let tag = referrers_tag(&subject);
        let mut entries = match get_manifest(session, repo, &tag, opts)? {
            Some((bytes, _)) => index_entries(session, &tag, &bytes)?,
            None => Vec::new(),
        };
        for r in rs {
            entries
                .retain(|e| e.get("digest").and_then(Value::as_str) != Some(r.digest().as_str()));
            entries.push(r.descriptor_json());
        }
        entries.sort_by(|a, b| {
            let d = |v: &Value| {
                v.get("digest")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            d(a).cmp(&d(b))
        });
        let index = tag_index(entries);
        put_manifest_at(session, repo, &tag, &index, opts)?;
        progress(&PushEvent::ManifestPushed {
            reference: &format!("{name}:{tag}"),
            digest: &index.digest,
        });
    }
    Ok(reports)
}

/// The tag schema's index over `entries` (canonical JSON).
fn tag_index(entries: Vec<Value>) -> Blob {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
    });
    Blob::from_bytes(
        MEDIA_TYPE_INDEX,
        distroless_pack_image::to_canonical_json(&v).expect("JSON values serialise"),
    )
}

/// The `manifests` of an index the registry gave back.
fn index_entries(session: &Session, what: &str, bytes: &[u8]) -> Result<Vec<Value>, RegistryError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| RegistryError::Http {
        registry: session.registry.clone(),
        what: format!("reading {what}"),
        status: 200,
        detail: format!(": not JSON: {e}"),
    })?;
    Ok(v.get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// `GET /v2/REPO/manifests/AT`: the bytes and media type, `None` on 404.
fn get_manifest(
    session: &Session,
    repo: &str,
    at: &str,
    opts: &PushOptions,
) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
    let url = session.url(&format!("/v2/{repo}/manifests/{at}"));
    let what = format!("GET manifest {repo}:{at}");
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.get(&url)
            .header(ACCEPT, ACCEPT_MANIFESTS)
            .timeout(session.stall))
    })?;
    if resp.status().as_u16() == 404 {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(session.http_error(&what, resp));
    }
    let mt = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.bytes().map_err(|e| RegistryError::Network {
        registry: session.registry.clone(),
        what: what.clone(),
        message: transport::error_chain(&e),
    })?;
    let mt = if mt.is_empty() || mt == "application/json" {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string())
    } else {
        mt
    };
    Ok(Some((bytes.to_vec(), mt)))
}

/// `GET /v2/REPO/blobs/DIGEST` of a small (JSON) blob, checked.
pub(super) fn get_small_blob(
    session: &Session,
    repo: &str,
    digest: &Digest,
    opts: &PushOptions,
) -> Result<Vec<u8>, RegistryError> {
    let url = session.url(&format!("/v2/{repo}/blobs/{digest}"));
    let what = format!("GET blob {digest}");
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.get(&url).timeout(session.stall))
    })?;
    if !resp.status().is_success() {
        return Err(session.http_error(&what, resp));
    }
    let bytes = resp.bytes().map_err(|e| RegistryError::Network {
        registry: session.registry.clone(),
        what: what.clone(),
        message: transport::error_chain(&e),
    })?;
    if Digest::sha256_of(&bytes) != *digest {
        return Err(RegistryError::DigestMismatch {
            registry: session.registry.clone(),
            what,
            expected: digest.to_string(),
            got: Digest::sha256_of(&bytes).to_string(),
        });
    }
    Ok(bytes.to_vec())
}

/// A referrer as a registry lists it, with what its manifest holds.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedReferrer {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: String,
    /// The manifest's size.
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
    /// The payload blobs from its manifest (`mediaType`, `digest`, `size`,
    /// `annotations`).
    pub layers: Vec<Value>,
}

/// What [`list_referrers`] found, and where.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersList {
    pub subject: String,
    /// `api`, or `tag-schema` when the registry has no referrers API.
    pub via: Via,
    pub referrers: Vec<ListedReferrer>,
}

pub(super) fn session_for(
    reference: &Reference,
    opts: &PushOptions,
    push: bool,
) -> Result<Session, RegistryError> {
    let clients = transport::clients(opts)?;
    let scope = if push { "pull,push" } else { "pull" };
    Session::open(
        reference,
        opts,
        clients,
        vec![format!("repository:{}:{scope}", reference.repository)],
    )
}

pub(super) fn list_on(
    session: &Session,
    repo: &str,
    subject: &Digest,
    opts: &PushOptions,
) -> Result<ReferrersList, RegistryError> {
    let mut entries: Vec<Value> = Vec::new();
    let mut next = Some(session.url(&format!("/v2/{repo}/referrers/{subject}")));
    let mut via = Via::Api;
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        let what = format!("GET referrers of {subject}");
        let resp = session.send(&what, opts.attempts, &|c| {
            Ok(c.get(&url)
                .header(ACCEPT, MEDIA_TYPE_INDEX)
                .timeout(session.stall))
        })?;
        let status = resp.status().as_u16();
        // No referrers API: a 404, or (as oras-go also reads it) an answer
        // that is not an image index.
        let is_index_answer = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == MEDIA_TYPE_INDEX);
        if pages == 1 && (status == 404 || (resp.status().is_success() && !is_index_answer)) {
            via = Via::TagSchema;
            break;
        }
        if !resp.status().is_success() {
            return Err(session.http_error(&what, resp));
        }
        next = resp
            .headers()
            .get("Link")
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .map(|l| session.url(&l));
        let bytes = resp.bytes().map_err(|e| RegistryError::Network {
            registry: session.registry.clone(),
            what: what.clone(),
            message: transport::error_chain(&e),
        })?;
        entries.extend(index_entries(session, &what, &bytes)?);
        if pages > 100 {
            break;
        }
    }
    if via == Via::TagSchema {
        let tag = referrers_tag(subject);
        if let Some((bytes, _)) = get_manifest(session, repo, &tag, opts)? {
            entries = index_entries(session, &tag, &bytes)?;
        }
    }
    let mut referrers = Vec::new();
    for e in entries {
        let Some(d) = e.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let Ok(digest) = d.parse::<Digest>() else {
            continue;
        };
        let Some((bytes, mt)) = get_manifest(session, repo, digest.as_str(), opts)? else {
            // listed but gone (deleted): not a referrer any more
            continue;
        };
        if Digest::sha256_of(&bytes) != digest {
            return Err(RegistryError::DigestMismatch {
                registry: session.registry.clone(),
                what: format!("GET manifest {digest}"),
                expected: digest.to_string(),
                got: Digest::sha256_of(&bytes).to_string(),
            });
        }
        let Ok(p) = distroless_pack_image::parse_artifact_manifest(&bytes) else {
            continue;
        };
        if p.subject.digest != *subject {
            continue;
        }
        referrers.push(ListedReferrer {
            digest: digest.to_string(),
            media_type: mt,
            artifact_type: p.artifact_type,
            size: bytes.len() as u64,
            annotations: p.annotations,
            // as the manifest gives them (with their annotations: the title)
            layers: serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|m| m.get("layers").and_then(Value::as_array).cloned())
                .unwrap_or_else(|| {
                    p.layers
                        .iter()
                        .map(|(mt, d, s)| json!({"mediaType": mt, "digest": d.as_str(), "size": s}))
                        .collect()
                }),
        });
    }
    referrers.sort_by(|a, b| a.digest.cmp(&b.digest));
    referrers.dedup_by(|a, b| a.digest == b.digest);
    Ok(ReferrersList {
        subject: subject.to_string(),
        via,
        referrers,
    })
}

/// The `rel="next"` target of a `Link` header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The referrers the registry has for `subject` in `reference`'s
/// repository: its referrers API, else the tag schema.
pub fn list_referrers(
    reference: &Reference,
    subject: &Digest,
    opts: &PushOptions,
) -> Result<ReferrersList, RegistryError> {
    let session = session_for(reference, opts, false)?;
    list_on(&session, &reference.repository, subject, opts)
}

/// One platform image of a registry artifact, as [`fetch`] reads it: the
/// manifest and config (no layers) and its referrers.
#[derive(Clone, Debug)]
pub struct RemoteImage {
    pub manifest: Blob,
    pub config: Blob,
    pub platform: Platform,
    pub referrers: ReferrersList,
}

/// An image or index in a registry, without its layers' bytes.
#[derive(Clone, Debug)]
pub struct RemoteArtifact {
    pub reference: Reference,
    /// The manifest or index the reference names.
    pub top: Blob,
    pub images: Vec<RemoteImage>,
}

fn is_index(mt: &str) -> bool {
    mt == MEDIA_TYPE_INDEX || mt == MEDIA_TYPE_DOCKER_LIST
}

pub(super) fn manifest_at(reference: &Reference) -> String {
    match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    }
}

/// The manifest `at` names, required to be there and to match a digest.
pub(super) fn required_manifest(
    session: &Session,
    reference: &Reference,
    at: &str,
    opts: &PushOptions,
) -> Result<Blob, RegistryError> {
    let repo = &reference.repository;
    let (bytes, mt) =
        get_manifest(session, repo, at, opts)?.ok_or_else(|| RegistryError::Http {
            registry: session.registry.clone(),
            what: format!("GET manifest {repo}:{at}"),
            status: 404,
            detail: ": no such image (manifest unknown)".into(),
        })?;
    let blob = Blob::from_bytes(&mt, bytes);
    if let Ok(d) = at.parse::<Digest>() {
        if d != blob.digest {
            return Err(RegistryError::DigestMismatch {
                registry: session.registry.clone(),
                what: format!("GET manifest {repo}@{at}"),
                expected: d.to_string(),
                got: blob.digest.to_string(),
            });
        }
    }
    Ok(blob)
}

/// The platform image manifests of `top` (itself for an image), with
/// their platforms from the index (or, for an image, its config).
fn platform_manifests(
    session: &Session,
    reference: &Reference,
    top: &Blob,
    opts: &PushOptions,
) -> Result<Vec<(Blob, Option<Platform>)>, RegistryError> {
    if !is_index(&top.media_type) {
        return Ok(vec![(top.clone(), None)]);
    }
    let bytes = top
        .read_all()
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let mut out = Vec::new();
    for e in index_entries(session, "image index", &bytes)? {
        let Some(d) = e.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let mt = e.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if mt != MEDIA_TYPE_MANIFEST && mt != MEDIA_TYPE_DOCKER_MANIFEST {
            continue;
        }
        let platform = e.get("platform").and_then(|p| {
            let os = p.get("os")?.as_str()?;
            let arch = p.get("architecture")?.as_str()?;
            let s = match p.get("variant").and_then(Value::as_str) {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            };
            s.parse::<Platform>().ok()
        });
        out.push((required_manifest(session, reference, d, opts)?, platform));
    }
    Ok(out)
}

/// Reads `reference` from its registry for `inspect`: the manifest (or
/// index and each platform's manifest), each config, and each image's
/// referrers. Layers are not fetched.
pub fn fetch(reference: &Reference, opts: &PushOptions) -> Result<RemoteArtifact, RegistryError> {
    let session = session_for(reference, opts, false)?;
    let top = required_manifest(&session, reference, &manifest_at(reference), opts)?;
    let mut images = Vec::new();
    for (manifest, config, platform) in images_of(&session, reference, &top, opts)? {
        let referrers = list_on(&session, &reference.repository, &manifest.digest, opts)?;
        images.push(RemoteImage {
            manifest,
            config,
            platform,
            referrers,
        });
    }
    Ok(RemoteArtifact {
        reference: reference.clone(),
        top,
        images,
    })
}

/// The config blob of an image manifest, fetched from the registry.
pub(super) fn config_of(
    session: &Session,
    reference: &Reference,
    manifest: &Blob,
    opts: &PushOptions,
) -> Result<Blob, RegistryError> {
    let what = || format!("manifest {}", manifest.digest);
    let v: Value = serde_json::from_slice(&manifest.read_all().unwrap_or_default())
        .map_err(|e| RegistryError::Invalid(format!("{}: {e}", what())))?;
    let c = v.get("config").cloned().unwrap_or(Value::Null);
    let cd: Digest = c
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or("")
        .parse()
        .map_err(|e| RegistryError::Invalid(format!("{}: {e}", what())))?;
    let cmt = c.get("mediaType").and_then(Value::as_str).unwrap_or("");
    Ok(Blob::from_bytes(
        cmt,
        get_small_blob(session, &reference.repository, &cd, opts)?,
    ))
}

/// The platform an image config records (for a manifest no index entry
/// describes).
pub(super) fn platform_in_config(config: &Blob) -> Result<Platform, RegistryError> {
    serde_json::from_slice::<distroless_pack_image::spec::ImageConfiguration>(
        &config.read_all().unwrap_or_default(),
    )
    .map(|c| Platform::from_config(&c))
    .map_err(|e| RegistryError::Invalid(format!("config {}: {e}", config.digest)))
}

/// The image manifests under `top` with their platforms: the index entry's,
/// else the config's. A config is fetched only where no index entry says
/// the platform; the second value holds it then.
pub(super) fn listed_images(
    session: &Session,
    reference: &Reference,
    top: &Blob,
    opts: &PushOptions,
) -> Result<Vec<(Blob, Option<Blob>, Platform)>, RegistryError> {
    let mut out = Vec::new();
    for (manifest, platform) in platform_manifests(session, reference, top, opts)? {
        out.push(match platform {
            Some(p) => (manifest, None, p),
            None => {
                let config = config_of(session, reference, &manifest, opts)?;
                let p = platform_in_config(&config)?;
                (manifest, Some(config), p)
            }
        });
    }
    Ok(out)
}

/// Every image manifest under `top` with its config and platform.
pub(super) fn images_of(
    session: &Session,
    reference: &Reference,
    top: &Blob,
    opts: &PushOptions,
) -> Result<Vec<(Blob, Blob, Platform)>, RegistryError> {
    listed_images(session, reference, top, opts)?
        .into_iter()
        .map(|(manifest, config, p)| {
            let config = match config {
                Some(c) => c,
                None => config_of(session, reference, &manifest, opts)?,
            };
            Ok((manifest, config, p))
        })
        .collect()
}

/// The image manifests `reference` names that `platform` picks (every
/// platform's when `None`), as referrer subjects with their platforms.
pub fn subjects(
    reference: &Reference,
    platform: Option<&Platform>,
    opts: &PushOptions,
) -> Result<Vec<(Subject, Platform)>, RegistryError> {
    let session = session_for(reference, opts, false)?;
    let top = required_manifest(&session, reference, &manifest_at(reference), opts)?;
    let mut out = Vec::new();
    let mut have = Vec::new();
    for (manifest, _, p) in listed_images(&session, reference, &top, opts)? {
        have.push(p.to_string());
        if platform.is_none_or(|want| p.matches(want)) {
            out.push((Subject::of_manifest(&manifest), p));
        }
    }
    if out.is_empty() {
        return Err(RegistryError::Invalid(format!(
            "{reference}: no {} image; it has {}",
            platform.map(|p| p.to_string()).unwrap_or_default(),
            have.join(", ")
        )));
    }
    Ok(out)
}

/// Pushes `referrers` (already made for subjects [`subjects`] gave) into
/// `reference`'s repository: blobs, manifests, and the tag schema's index
/// where the registry keeps none.
pub fn push_referrers_to(
    reference: &Reference,
    referrers: &[Referrer],
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<Vec<ReferrerReport>, RegistryError> {
    let session = session_for(reference, opts, true)?;
    let list: Vec<&Referrer> = referrers.iter().collect();
    push_referrer_list(
        &session,
        &reference.name(),
        &reference.repository,
        &list,
        &HashMap::new(),
        opts,
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_schema_names_the_subject_digest_with_a_dash() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(referrers_tag(&d), format!("sha256-{}", "ab".repeat(32)));
    }

    #[test]
    fn the_gate_lets_a_referrer_go_once_its_subject_is_put_and_never_hangs() {
        let d = |c: &str| -> Digest { format!("sha256:{}", c.repeat(64)).parse().unwrap() };
        let gate = SubjectGate::default();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.wait_for(&d("a")));
            std::thread::sleep(std::time::Duration::from_millis(20));
            gate.put(&d("b"));
            gate.put(&d("a"));
            assert!(waiter.join().unwrap(), "put: the referrer goes");
        });
        assert!(gate.wait_for(&d("b")), "already put: no wait");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.wait_for(&d("c")));
            {
                let _close = CloseOnDrop(&gate); // the image side stops
            }
            assert!(!waiter.join().unwrap(), "stopped without it: stop");
        });
        let done = SubjectGate::default();
        done.finish(true);
        drop(CloseOnDrop(&done));
        assert!(
            done.wait_for(&d("e")),
            "all went up: a subject from elsewhere goes"
        );
    }

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/x/referrers/sha256:1?n=2&last=a>; rel="next""#).as_deref(),
            Some("/v2/x/referrers/sha256:1?n=2&last=a")
        );
        assert_eq!(next_link(r#"<a>; rel="prev""#), None);
    }
}
