//! The push itself. Per registry and repository, every blob of the run (the
//! configs and layers of every platform of an index, plus a caller's extra
//! blobs such as attachments, each digest once) goes through one pool of at
//! most `jobs` worker threads, largest first: `HEAD`, then a mount or a
//! streamed upload. Only when all of them are in do the manifests go up:
//! each platform's manifest by digest, then the top-level manifest (or
//! index) for every tag, and, on a second thread at the same time, the
//! attached artifacts' manifests (each once its subject is in) and
//! referrers tag indexes; then the
//! caller's after-top step. A blob that fails stops the batch and no
//! manifest is put.
//!
//! The primitives a sibling module needs (push one blob if absent, put one
//! manifest by reference and read the answer's headers) are [`Repo`]'s
//! methods, and [`push_blob`] / [`put_manifest_at`] for a bare session.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distroless_pack_image::{Artifact, Blob, Digest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use super::transport::{self, read_full, Answer, Session};
use super::{
    BlobAction, BlobReport, PushEvent, PushOptions, PushReport, RegistryError, RegistryTarget,
    TargetReport, UploadMode, MAX_JOBS,
};

/// A progress callback, called from several threads.
pub type ProgressFn<'a> = &'a (dyn Fn(&PushEvent) + Sync);

/// A step run in each repository once its top-level manifest is stored
/// under every tag of the run (e.g. putting referrer manifests).
pub type AfterTop<'a> = dyn Fn(&Repo<'_>) -> Result<(), RegistryError> + Sync + 'a;

/// More to push in the same run as an artifact.
#[derive(Default)]
pub struct Extra<'a> {
    /// Blobs that join the artifact's parallel batch (an attachment's
    /// layers and config), uploaded before any manifest; a digest the
    /// artifact already has is sent once. They are listed in the report's
    /// `blobs` with the artifact's.
    pub blobs: Vec<Blob>,
    /// Run per repository after the top-level manifest; an error fails the
    /// push.
    pub after_top: Option<&'a AfterTop<'a>>,
}

/// One repository of a push in progress, for a step run inside it
/// ([`Extra::after_top`]): what is needed to send more blobs and manifests
/// with the push's connection, credentials and options.
pub struct Repo<'a> {
    session: &'a Session,
    repository: &'a str,
    name: &'a str,
    opts: &'a PushOptions,
    progress: ProgressFn<'a>,
    /// Where each blob of the run already is on this registry (mounts).
    known: &'a HashMap<Digest, String>,
}

impl Repo<'_> {
    /// The repository path (`team/app`).
    pub fn repository(&self) -> &str {
        self.repository
    }

    /// `REGISTRY/REPOSITORY`, as progress and reports name it.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Sends `blob` unless the repository has it (`HEAD`), mounting it when
    /// another repository of this run holds it.
    pub fn push_blob(&self, blob: &Blob) -> Result<BlobReport, RegistryError> {
        push_blob(
            self.session,
            self.name,
            self.repository,
            blob,
            self.known.get(&blob.digest).map(String::as_str),
            self.opts,
            self.progress,
        )
    }

    /// Puts `manifest` under `reference` (a tag or its digest) with its own
    /// media type; see [`put_manifest_at`].
    pub fn put_manifest(
        &self,
        reference: &str,
        manifest: &Blob,
    ) -> Result<ManifestPut, RegistryError> {
        put_manifest_at(
            self.session,
            self.repository,
            reference,
            manifest,
            self.opts,
        )
    }

    /// The connection to the registry, for requests the primitives above do
    /// not make (a `GET` of the referrers API).
    #[allow(dead_code)] // for the sibling modules
    pub(super) fn session(&self) -> &Session {
        self.session
    }
}

/// The registry's answer to a stored manifest.
#[derive(Clone, Debug)]
pub struct ManifestPut {
    pub status: u16,
    /// `Docker-Content-Digest`, when given (already checked against ours).
    pub digest: Option<String>,
    /// `OCI-Subject`: the digest of the manifest's `subject`, answered by
    /// registries that serve the OCI 1.1 referrers API.
    pub subject: Option<String>,
    headers: Vec<(String, String)>,
}

impl ManifestPut {
    fn from(answer: &Answer) -> ManifestPut {
        let headers: Vec<(String, String)> = answer
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        ManifestPut {
            status: answer.status,
            digest: get("Docker-Content-Digest"),
            subject: get("OCI-Subject"),
            headers,
        }
    }

    /// A header of the answer (first of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Pushes `artifact` to every target (blocking): [`push_with`] and nothing
/// extra.
pub fn push(
    artifact: &Artifact,
    targets: &[RegistryTarget],
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<PushReport, RegistryError> {
    push_with(artifact, &Extra::default(), targets, opts, progress)
}

/// Pushes `artifact` (and `extra`) to every target (blocking). Blobs are
/// checked with `HEAD` and sent only where missing, `opts.jobs` at a time
/// across every platform; a blob already in another repository of the same
/// registry (pushed earlier in this run) is mounted from it. An image goes
/// up as its manifest; an index as each platform's manifest (by digest) and
/// then the index. Every tag of a repository gets the same top-level
/// manifest.
pub fn push_with(
    artifact: &Artifact,
    extra: &Extra,
    targets: &[RegistryTarget],
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<PushReport, RegistryError> {
    if targets.is_empty() {
        return Err(RegistryError::Invalid(
            "no registry reference to push to".into(),
        ));
    }
    let top = artifact.top();
    for t in targets {
        if let Some(d) = &t.reference.digest {
            if *d != top.digest {
                return Err(RegistryError::Invalid(format!(
                    "{} names digest {d}, but the image's digest is {}",
                    t.reference, top.digest
                )));
            }
        }
    }
    let clients = transport::clients(opts)?;

    // every blob once, in one parallel batch: configs and layers of every
    // platform, the blobs of the artifacts attached to them, then the extra
    let mut seen = HashSet::new();
    let blobs: Vec<&Blob> = artifact
        .images()
        .iter()
        .flat_map(|i| i.blobs())
        .chain(artifact.referrers().flat_map(|r| r.blobs()))
        .chain(extra.blobs.iter())
        .filter(|b| seen.insert(b.digest.clone()))
        .collect();

    let mut registries: Vec<&str> = Vec::new();
    for t in targets {
        if !registries.contains(&t.reference.registry.as_str()) {
            registries.push(&t.reference.registry);
        }
    }
    let mut reports: Vec<Option<TargetReport>> = vec![None; targets.len()];
    let mut referrers = Vec::new();
    for registry in registries {
        let idx: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].reference.registry == registry)
            .collect();
        let mut repos: Vec<&str> = Vec::new();
        for &i in &idx {
            if !repos.contains(&targets[i].reference.repository.as_str()) {
                repos.push(&targets[i].reference.repository);
            }
        }
        let scopes = repos
            .iter()
            .map(|r| format!("repository:{r}:pull,push"))
            .collect();
        let session = Session::open(&targets[idx[0]].reference, opts, clients.clone(), scopes)?;
        // where each blob is known to be on this registry (for mounts)
        let mut known: HashMap<Digest, String> = HashMap::new();
        for repo in repos {
            let name = format!("{registry}/{repo}");
            let mut blob_reports =
                push_blobs(&session, &name, repo, &blobs, &known, opts, progress)?;
            for b in &blobs {
                known
                    .entry(b.digest.clone())
                    .or_insert_with(|| repo.to_string());
            }
            // The image's manifests, and beside them the manifests of the
            // artifacts attached to it (whose blobs went up in the same
            // batch), each once its subject is in (SubjectGate). A blob
            // that failed above stopped everything before any manifest.
            let mut referrer_reports = blob_reports.clone();
            let gate = super::referrers::SubjectGate::default();
            let (images_put, referrers_put) = std::thread::scope(|s| {
                let attached = s.spawn(|| {
                    super::referrers::push_referrers(
                        &session,
                        &name,
                        repo,
                        artifact,
                        &mut referrer_reports,
                        &gate,
                        opts,
                        progress,
                    )
                });
                let images_put = (|| -> Result<(), RegistryError> {
                    let _close = super::referrers::CloseOnDrop(&gate);
                    if let Artifact::Index(x) = artifact {
                        for img in &x.images {
                            let at = img.digest().as_str();
                            let heal = Heal {
                                blobs: &blobs,
                                reports: &mut blob_reports,
                                name: &name,
                                progress,
                            };
                            put_manifest_healing(&session, repo, at, &img.manifest, opts, heal)?;
                            gate.put(img.digest());
                            progress(&PushEvent::ManifestPushed {
                                reference: &format!("{name}@{}", img.digest()),
                                digest: img.digest(),
                            });
                        }
                    }
                    let mut first = true;
                    for &i in idx
                        .iter()
                        .filter(|&&i| targets[i].reference.repository == repo)
                    {
                        let r = &targets[i].reference;
                        let (at, shown) = match r.push_tag() {
                            Some(tag) => (tag.to_string(), format!("{name}:{tag}")),
                            None => (top.digest.to_string(), format!("{name}@{}", top.digest)),
                        };
                        let heal = Heal {
                            blobs: &blobs,
                            reports: &mut blob_reports,
                            name: &name,
                            progress,
                        };
                        put_manifest_healing(&session, repo, &at, top, opts, heal)?;
                        gate.put(&top.digest);
                        progress(&PushEvent::ManifestPushed {
                            reference: &shown,
                            digest: &top.digest,
                        });
                        let blobs_here: Vec<BlobReport> = if first {
                            blob_reports.clone()
                        } else {
                            blob_reports
                                .iter()
                                .map(|b| BlobReport {
                                    action: BlobAction::Skipped,
                                    from: None,
                                    ..b.clone()
                                })
                                .collect()
                        };
                        first = false;
                        let count =
                            |a: BlobAction| blobs_here.iter().filter(|b| b.action == a).count();
                        let mut normalised = r.clone();
                        if normalised.tag.is_none() && normalised.digest.is_none() {
                            normalised.tag = Some("latest".into());
                        }
                        reports[i] = Some(TargetReport {
                            reference: normalised.to_string(),
                            pushed: format!("{name}@{}", top.digest),
                            digest: top.digest.to_string(),
                            uploaded: count(BlobAction::Uploaded),
                            mounted: count(BlobAction::Mounted),
                            skipped: count(BlobAction::Skipped),
                            bytes_uploaded: blobs_here
                                .iter()
                                .filter(|b| b.action == BlobAction::Uploaded)
                                .map(|b| b.size)
                                .sum(),
                            blobs: blobs_here,
                        });
                    }
                    gate.finish(true);
                    Ok(())
                })();
                let referrers_put = attached
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                (images_put, referrers_put)
            });
            images_put?;
            referrers.extend(referrers_put?);
            if let Some(after) = extra.after_top {
                after(&Repo {
                    session: &session,
                    repository: repo,
                    name: &name,
                    opts,
                    progress,
                    known: &known,
                })?;
            }
        }
    }
    Ok(PushReport {
        digest: top.digest.to_string(),
        referrers,
        media_type: media_type_of(top),
        targets: reports
            .into_iter()
            .map(|r| r.expect("every target reported"))
            .collect(),
    })
}

fn short(d: &Digest) -> &str {
    &d.as_str()[..19]
}

/// Runs `task(i)` for every index in `order` (a permutation of `0..n`) on
/// at most `jobs` scoped threads, each taking the next index of `order`
/// when it is done with its last. After the first error no further task
/// starts and `stop` is set (for running tasks to give up); that first
/// error is returned. Results come back indexed like `0..n`.
fn run_bounded<R: Send, E: Send>(
    order: &[usize],
    jobs: usize,
    stop: &AtomicBool,
    task: &(dyn Fn(usize) -> Result<R, E> + Sync),
) -> Result<Vec<R>, E> {
    let n = order.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let failure: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = order.get(k) else { break };
                match task(i) {
                    Ok(r) => results.lock().expect("results")[i] = Some(r),
                    Err(e) => {
                        // the first error is the one reported: stored
                        // before `stop` is set, so a task that gives up
                        // because of `stop` never hides it
                        failure.lock().expect("failure").get_or_insert(e);
                        stop.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect())
}

/// The order blobs are started in: largest first (ties in their order), so
/// the long uploads begin at once and the small ones fill in around them.
fn largest_first(blobs: &[&Blob]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(blobs[i].size));
    order
}

/// Pushes `blobs` into one repository, `opts.jobs` at a time.
pub(super) fn push_blobs(
    session: &Session,
    name: &str,
    repo: &str,
    blobs: &[&Blob],
    known: &HashMap<Digest, String>,
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<Vec<BlobReport>, RegistryError> {
    // set at the first failure: no blob starts after it, and uploads in
    // flight stop (their body reader checks it)
    let cancel = Arc::new(AtomicBool::new(false));
    // set (and notified) when the workers are done, to stop the ticker
    let finished = (Mutex::new(false), std::sync::Condvar::new());
    let active: Mutex<Vec<(usize, Arc<AtomicU64>)>> = Mutex::new(Vec::new());
    let order = largest_first(blobs);
    let jobs = opts.jobs.clamp(1, MAX_JOBS);
    std::thread::scope(|s| {
        s.spawn(|| loop {
            let done = finished.0.lock().expect("finished");
            if *done {
                break;
            }
            let (done, _) = finished
                .1
                .wait_timeout(done, Duration::from_millis(100))
                .expect("finished");
            if *done {
                break;
            }
            drop(done);
            let now: Vec<(usize, u64)> = active
                .lock()
                .expect("active")
                .iter()
                .map(|(i, c)| (*i, c.load(Ordering::Relaxed)))
                .collect();
            for (i, done) in now {
                let b = blobs[i];
                progress(&PushEvent::BlobProgress {
                    name,
                    digest: &b.digest,
                    done,
                    size: b.size,
                });
            }
        });
        let task = |i: usize| {
            let blob = blobs[i];
            let counter = Arc::new(AtomicU64::new(0));
            let r = push_one(
                session,
                name,
                repo,
                blob,
                known.get(&blob.digest).map(String::as_str),
                opts,
                progress,
                Track {
                    sent: counter.clone(),
                    cancel: cancel.clone(),
                },
                || active.lock().expect("active").push((i, counter.clone())),
            );
            active.lock().expect("active").retain(|(j, _)| *j != i);
            r
        };
        let r = run_bounded(&order, jobs, &cancel, &task);
        *finished.0.lock().expect("finished") = true;
        finished.1.notify_all();
        r
    })
}

/// How an upload in flight is followed: bytes sent (for progress), and
/// whether the push gave up (another blob failed), so it stops too.
#[derive(Clone)]
struct Track {
    sent: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
}

impl Track {
    fn new() -> Track {
        Track {
            sent: Arc::new(AtomicU64::new(0)),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// Sends `blob` to `repo` unless it is there (`HEAD`), mounting it from
/// `mount_from` (another repository of the registry that has it) when
/// given. Reports `BlobStarted`/`BlobFinished` through `progress`.
pub fn push_blob(
    session: &Session,
    name: &str,
    repo: &str,
    blob: &Blob,
    mount_from: Option<&str>,
    opts: &PushOptions,
    progress: ProgressFn,
) -> Result<BlobReport, RegistryError> {
    push_one(
        session,
        name,
        repo,
        blob,
        mount_from,
        opts,
        progress,
        Track::new(),
        || {},
    )
}

#[allow(clippy::too_many_arguments)]
fn push_one(
    session: &Session,
    name: &str,
    repo: &str,
    blob: &Blob,
    known_in: Option<&str>,
    opts: &PushOptions,
    progress: ProgressFn,
    track: Track,
    uploading: impl FnOnce(),
) -> Result<BlobReport, RegistryError> {
    let report = |action: BlobAction, from: Option<String>| BlobReport {
        digest: blob.digest.to_string(),
        size: blob.size,
        media_type: blob.media_type.clone(),
        action,
        from,
    };
    let finish = |action: BlobAction| {
        progress(&PushEvent::BlobFinished {
            name,
            digest: &blob.digest,
            size: blob.size,
            action,
        })
    };
    if blob_exists(session, repo, &blob.digest, opts)? {
        finish(BlobAction::Skipped);
        return Ok(report(BlobAction::Skipped, None));
    }
    let mut location = None;
    if let Some(from) = known_in.filter(|f| *f != repo) {
        match start_upload(session, repo, Some((from, &blob.digest)), opts)? {
            Started::Mounted => {
                finish(BlobAction::Mounted);
                return Ok(report(BlobAction::Mounted, Some(from.to_string())));
            }
            Started::Upload(l) => location = Some(l),
        }
    }
    if track.cancelled() {
        return Err(RegistryError::Cancelled);
    }
    progress(&PushEvent::BlobStarted {
        name,
        digest: &blob.digest,
        size: blob.size,
    });
    // Never send a blob that does not match its digest: hash it first (a
    // local file), so a corrupt layer is bad input, not a DIGEST_INVALID.
    // A blob this process just made and hashed (a layer from pack) is not
    // hashed again.
    if !blob.is_made_here() {
        verify_local(blob)?;
    }
    uploading();
    upload(session, repo, blob, location, opts, &track)?;
    finish(BlobAction::Uploaded);
    Ok(report(BlobAction::Uploaded, None))
}

/// Hashes a local blob: a mismatch is bad input, never sent.
fn verify_local(blob: &Blob) -> Result<(), RegistryError> {
    blob.verify().map_err(|e| match e {
        distroless_pack_image::ImageError::Mismatch(m) => RegistryError::Corrupt(m),
        e => RegistryError::Invalid(format!("reading blob {}: {e}", blob.digest)),
    })
}

fn blob_exists(
    session: &Session,
    repo: &str,
    digest: &Digest,
    opts: &PushOptions,
) -> Result<bool, RegistryError> {
    let url = session.url(&format!("/v2/{repo}/blobs/{digest}"));
    let what = format!("HEAD blob {}", short(digest));
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.head(&url).timeout(session.stall))
    })?;
    match resp.status().as_u16() {
        200..=299 => Ok(true),
        404 => Ok(false),
        _ => Err(session.http_error(&what, resp)),
    }
}

enum Started {
    Mounted,
    Upload(String),
}

/// `POST /v2/REPO/blobs/uploads/` (with `mount` and `from` to mount).
fn start_upload(
    session: &Session,
    repo: &str,
    mount: Option<(&str, &Digest)>,
    opts: &PushOptions,
) -> Result<Started, RegistryError> {
    let mut url = reqwest::Url::parse(&session.url(&format!("/v2/{repo}/blobs/uploads/")))
        .map_err(|e| RegistryError::Invalid(format!("bad registry URL: {e}")))?;
    let what = match mount {
        Some((from, digest)) => {
            url.query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from);
            format!("mount of {} from {from}", short(digest))
        }
        None => "starting a blob upload".to_string(),
    };
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.post(url.clone())
            .header(CONTENT_LENGTH, 0)
            .timeout(session.stall))
    })?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match status {
        // 201 is "mounted"; some registries (ECR) also answer 201 to open an
        // upload session, with an upload Location.
        201 if mount.is_some()
            && !location
                .as_deref()
                .is_some_and(|l| l.contains("/blobs/uploads/")) =>
        {
            Ok(Started::Mounted)
        }
        200..=299 => match location {
            Some(l) => Ok(Started::Upload(l)),
            None => Err(RegistryError::Http {
                registry: session.registry.clone(),
                what,
                status,
                detail: ": no Location header in the answer".into(),
            }),
        },
        404 => Err(RegistryError::RepositoryNotFound {
            registry: session.registry.clone(),
            repository: repo.to_string(),
            what,
            status,
        }),
        _ => Err(session.http_error(&what, resp)),
    }
}

/// How an upload attempt failed.
enum Fail {
    /// Worth another attempt from a new upload session.
    Transient(RegistryError),
    /// The registry refuses this way of uploading: try chunked.
    Refused(RegistryError),
    Fatal(RegistryError),
}

fn classify(session: &Session, what: &str, answer: &Answer) -> Fail {
    let status = answer.status;
    let e = session.answer_error(what, answer);
    let detail = match &e {
        RegistryError::Http { detail, .. } => detail.clone(),
        _ => String::new(),
    };
    match status {
        408 | 429 | 500..=599 | 404 => Fail::Transient(e),
        400 if detail.contains("DIGEST_INVALID") || detail.contains("SIZE_INVALID") => {
            Fail::Fatal(e)
        }
        400 | 405 | 411 | 413 | 416 => Fail::Refused(e),
        _ => Fail::Fatal(e),
    }
}

/// Uploads one blob: new session (unless given one), then monolithic PUT or
/// chunks; retried from a fresh session on transient failures, and moved to
/// chunked when the registry refuses a single PUT.
fn upload(
    session: &Session,
    repo: &str,
    blob: &Blob,
    mut location: Option<String>,
    opts: &PushOptions,
    track: &Track,
) -> Result<(), RegistryError> {
    let mut mode = opts.upload_mode;
    let mut attempt = 0u32;
    let mut chunk = opts.chunk_size.max(64 * 1024);
    if session.base.ends_with("://ghcr.io") {
        chunk = chunk.min(4 * 1024 * 1024);
    }
    loop {
        let loc = match location.take() {
            Some(l) => l,
            None => match start_upload(session, repo, None, opts)? {
                Started::Upload(l) => l,
                Started::Mounted => return Ok(()),
            },
        };
        if track.cancelled() {
            return Err(RegistryError::Cancelled);
        }
        track.sent.store(0, Ordering::Relaxed);
        let r = match mode {
            UploadMode::Monolithic => put_monolithic(session, &loc, blob, track),
            UploadMode::Chunked => put_chunked(session, &loc, blob, chunk, track),
        };
        match r {
            Ok(()) => return Ok(()),
            Err(Fail::Refused(e)) => {
                if mode == UploadMode::Chunked {
                    return Err(e);
                }
                mode = UploadMode::Chunked;
            }
            Err(Fail::Transient(_)) if track.cancelled() => return Err(RegistryError::Cancelled),
            Err(Fail::Transient(e)) => {
                attempt += 1;
                if attempt >= opts.attempts.max(1) {
                    return Err(e);
                }
                std::thread::sleep(transport::backoff(attempt, None));
            }
            Err(Fail::Fatal(e)) => return Err(e),
        }
    }
}

fn with_digest(session: &Session, location: &str, digest: &Digest) -> Result<reqwest::Url, Fail> {
    let mut url = reqwest::Url::parse(&session.url(location)).map_err(|e| {
        Fail::Fatal(RegistryError::Http {
            registry: session.registry.clone(),
            what: "blob upload".into(),
            status: 0,
            detail: format!(": bad Location {location:?}: {e}"),
        })
    })?;
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    Ok(url)
}

/// An upload body: counts the bytes read through it, for progress, and
/// fails (so the request is abandoned) once the push is cancelled.
struct Counting {
    inner: Box<dyn Read + Send>,
    track: Track,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.track.cancelled() {
            return Err(std::io::Error::other(
                "cancelled: another blob of the push failed",
            ));
        }
        let n = self.inner.read(buf)?;
        self.track.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn send_once(
    session: &Session,
    what: &str,
    mk: &dyn Fn(
        &reqwest::blocking::Client,
    ) -> Result<reqwest::blocking::RequestBuilder, RegistryError>,
) -> Result<reqwest::blocking::Response, Fail> {
    session.send(what, 1, mk).map_err(|e| match e {
        RegistryError::Network { .. } => Fail::Transient(e),
        e => Fail::Fatal(e),
    })
}

fn put_monolithic(
    session: &Session,
    location: &str,
    blob: &Blob,
    track: &Track,
) -> Result<(), Fail> {
    let mut url = with_digest(session, location, &blob.digest)?;
    let what = format!("upload of {} ({} bytes)", short(&blob.digest), blob.size);
    // A 307/308 (a registry handing the upload to its storage backend) is
    // followed here: the body is a stream, which the HTTP client cannot
    // replay, so it is opened again from disk for the new location.
    for _ in 0..MAX_REDIRECTS {
        let target = url.clone();
        let answer = session
            .put_stream(&what, &target, blob.size, &|| {
                track.sent.store(0, Ordering::Relaxed);
                let reader = blob.open().map_err(|source| RegistryError::Io {
                    digest: blob.digest.to_string(),
                    error: source,
                })?;
                Ok(Box::new(Counting {
                    inner: reader,
                    track: track.clone(),
                }))
            })
            .map_err(|e| match e {
                e @ RegistryError::Network { .. } => Fail::Transient(with_progress(
                    e,
                    track.sent.load(Ordering::Relaxed),
                    blob.size,
                    session.stall,
                )),
                e => Fail::Fatal(e),
            })?;
        match redirect_target(&target, &answer) {
            Some(next) => url = next,
            None => return finish_upload(session, &what, &answer, &blob.digest),
        }
    }
    Err(Fail::Fatal(RegistryError::Http {
        registry: session.registry.clone(),
        what,
        status: 307,
        detail: format!(": more than {MAX_REDIRECTS} redirects"),
    }))
}

/// A dropped upload's error, saying how far it got and that a connection
/// taking no bytes for the stall timeout is dropped.
fn with_progress(e: RegistryError, sent: u64, size: u64, stall: Duration) -> RegistryError {
    match e {
        RegistryError::Network {
            registry,
            what,
            message,
        } if !message.contains("stall timeout") => RegistryError::Network {
            registry,
            what,
            message: format!(
                "{message} (after {sent} of {size} bytes; a connection that takes no bytes for the stall timeout {stall:?} is dropped: --stall-timeout or DISTROLESS_PACK_STALL_TIMEOUT)"
            ),
        },
        e => e,
    }
}

/// Redirects followed for one upload request.
const MAX_REDIRECTS: usize = 5;

/// Where a 307/308 answer sends the request again (the same method and
/// body), resolved against the URL it answered.
fn redirect_target(from: &reqwest::Url, answer: &Answer) -> Option<reqwest::Url> {
    if !matches!(answer.status, 307 | 308) {
        return None;
    }
    from.join(answer.header(LOCATION)?).ok()
}

fn finish_upload(
    session: &Session,
    what: &str,
    answer: &Answer,
    digest: &Digest,
) -> Result<(), Fail> {
    match answer.status {
        200..=299 => {
            check_digest(session, what, answer, digest).map_err(Fail::Fatal)?;
            Ok(())
        }
        _ => Err(classify(session, what, answer)),
    }
}

fn check_digest(
    session: &Session,
    what: &str,
    answer: &Answer,
    expected: &Digest,
) -> Result<(), RegistryError> {
    if let Some(got) = answer.header("Docker-Content-Digest") {
        if got != expected.as_str() {
            return Err(RegistryError::DigestMismatch {
                registry: session.registry.clone(),
                what: what.to_string(),
                expected: expected.to_string(),
                got: got.to_string(),
            });
        }
    }
    Ok(())
}

fn put_chunked(
    session: &Session,
    location: &str,
    blob: &Blob,
    chunk: u64,
    track: &Track,
) -> Result<(), Fail> {
    let io = |source| {
        Fail::Fatal(RegistryError::Io {
            digest: blob.digest.to_string(),
            error: source,
        })
    };
    let mut reader = blob.open().map_err(io)?;
    let mut buf = vec![0u8; chunk.min(blob.size.max(1)) as usize];
    let mut offset = 0u64;
    let mut loc = location.to_string();
    loop {
        let n = read_full(&mut reader, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        if track.cancelled() {
            return Err(Fail::Fatal(RegistryError::Cancelled));
        }
        let url = session.url(&loc);
        let what = format!("chunk {offset}+{n} of {}", short(&blob.digest));
        let data = &buf[..n];
        let resp = send_once(session, &what, &|c| {
            Ok(c.patch(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, format!("{offset}-{}", offset + n as u64 - 1))
                .body(data.to_vec())
                .timeout(session.timeout_for(n as u64)))
        })?;
        let answer = Answer::read(resp);
        if !(200..=299).contains(&answer.status) {
            return Err(classify(session, &what, &answer));
        }
        if let Some(l) = answer.header(LOCATION) {
            loc = l.to_string();
        }
        offset += n as u64;
        track.sent.store(offset, Ordering::Relaxed);
    }
    let url = with_digest(session, &loc, &blob.digest)?;
    let what = format!("completing upload of {}", short(&blob.digest));
    let resp = send_once(session, &what, &|c| {
        Ok(c.put(url.clone())
            .header(CONTENT_LENGTH, 0)
            .timeout(session.stall))
    })?;
    finish_upload(session, &what, &Answer::read(resp), &blob.digest)
}

fn media_type_of(blob: &Blob) -> String {
    if !blob.media_type.is_empty() {
        return blob.media_type.clone();
    }
    blob.read_all()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| distroless_pack_image::MEDIA_TYPE_MANIFEST.to_string())
}

/// What a manifest PUT can repair: the blobs of the push and their
/// report for this repository.
pub(super) struct Heal<'a, 'b> {
    pub(super) blobs: &'a [&'a Blob],
    pub(super) reports: &'a mut Vec<BlobReport>,
    pub(super) name: &'a str,
    pub(super) progress: ProgressFn<'b>,
}

/// Puts a manifest; when the registry refuses it because it lacks blobs
/// (MANIFEST_BLOB_UNKNOWN: a HEAD answered 200 for a blob it did not
/// have), uploads the blobs it names (or, when it names none of ours, every
/// blob that was skipped) and tries the manifest once more.
pub(super) fn put_manifest_healing(
    session: &Session,
    repo: &str,
    at: &str,
    manifest: &Blob,
    opts: &PushOptions,
    heal: Heal,
) -> Result<ManifestPut, RegistryError> {
    let unknown = match put_manifest(session, repo, at, manifest, opts)? {
        Ok(put) => return Ok(put),
        Err(u) => u,
    };
    let named: Vec<&Blob> = heal
        .blobs
        .iter()
        .copied()
        .filter(|b| unknown.digests.contains(&b.digest))
        .collect();
    let again: Vec<&Blob> = if named.is_empty() {
        heal.blobs
            .iter()
            .copied()
            .filter(|b| {
                heal.reports
                    .iter()
                    .any(|r| r.digest == b.digest.as_str() && r.action != BlobAction::Uploaded)
            })
            .collect()
    } else {
        named
    };
    if again.is_empty() {
        return Err(unknown.error);
    }
    for blob in again {
        verify_local(blob)?;
        (heal.progress)(&PushEvent::BlobStarted {
            name: heal.name,
            digest: &blob.digest,
            size: blob.size,
        });
        upload(session, repo, blob, None, opts, &Track::new())?;
        (heal.progress)(&PushEvent::BlobFinished {
            name: heal.name,
            digest: &blob.digest,
            size: blob.size,
            action: BlobAction::Uploaded,
        });
        for r in heal
            .reports
            .iter_mut()
            .filter(|r| r.digest == blob.digest.as_str())
        {
            r.action = BlobAction::Uploaded;
            r.from = None;
        }
    }
    put_manifest(session, repo, at, manifest, opts)?.map_err(|u| u.error)
}

/// `PUT /v2/REPO/manifests/REFERENCE` (a tag or the manifest's digest)
/// with the manifest's own media type; the `Docker-Content-Digest` the
/// registry answers must be the manifest's. The answer's headers (such as
/// `OCI-Subject`) come back. A registry refusing it for lack of blobs is an
/// error here (no healing: that is for the push's own manifests).
pub fn put_manifest_at(
    session: &Session,
    repo: &str,
    reference: &str,
    manifest: &Blob,
    opts: &PushOptions,
) -> Result<ManifestPut, RegistryError> {
    put_manifest(session, repo, reference, manifest, opts)?.map_err(|u| u.error)
}

/// A manifest refused because the registry lacks blobs it names.
struct BlobsUnknown {
    digests: Vec<Digest>,
    error: RegistryError,
}

/// Every `sha256:<64 hex>` in `text`.
fn digests_in(text: &str) -> Vec<Digest> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let cand = rest[i..].get(..71).unwrap_or("");
        if let Ok(d) = cand.parse::<Digest>() {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        rest = &rest[i + 7..];
    }
    out
}

/// `PUT /v2/REPO/manifests/REF` with the manifest's media type, checking the
/// digest the registry computed. `Ok(Err(_))` when the registry says it
/// lacks blobs the manifest names.
fn put_manifest(
    session: &Session,
    repo: &str,
    at: &str,
    manifest: &Blob,
    opts: &PushOptions,
) -> Result<Result<ManifestPut, BlobsUnknown>, RegistryError> {
    let bytes = manifest.read_all().map_err(|e| {
        RegistryError::Invalid(format!("reading manifest {}: {e}", manifest.digest))
    })?;
    let media_type = media_type_of(manifest);
    let url = session.url(&format!("/v2/{repo}/manifests/{at}"));
    let what = format!("PUT manifest {repo}:{at}");
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.put(&url)
            .header(CONTENT_TYPE, media_type.as_str())
            .body(bytes.clone())
            .timeout(session.stall))
    })?;
    let answer = Answer::read(resp);
    let status = answer.status;
    match status {
        200..=299 => {
            check_digest(session, &what, &answer, &manifest.digest)?;
            Ok(Ok(ManifestPut::from(&answer)))
        }
        400 => {
            let body = &answer.body;
            let error = RegistryError::Http {
                registry: session.registry.clone(),
                what,
                status,
                detail: transport::error_detail(body),
            };
            if body.contains("MANIFEST_BLOB_UNKNOWN") || body.contains("BLOB_UNKNOWN") {
                Ok(Err(BlobsUnknown {
                    digests: digests_in(body),
                    error,
                }))
            } else {
                Err(error)
            }
        }
        404 => {
            let e = session.answer_error(&what, &answer);
            match e {
                RegistryError::Http { detail, .. }
                    if detail.contains("NAME_UNKNOWN") || detail.is_empty() =>
                {
                    Err(RegistryError::RepositoryNotFound {
                        registry: session.registry.clone(),
                        repository: repo.to_string(),
                        what,
                        status: 404,
                    })
                }
                e => Err(e),
            }
        }
        _ => Err(session.answer_error(&what, &answer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_in_a_manifest_blob_unknown_body() {
        let d = "sha256:".to_string() + &"ab".repeat(32);
        let body = format!(
            r#"{{"errors":[{{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"{d}"}},{{"code":"MANIFEST_BLOB_UNKNOWN","detail":{{"digest":"{d}"}}}}]}}"#
        );
        assert_eq!(digests_in(&body), vec![d.parse::<Digest>().unwrap()]);
        assert!(digests_in("sha256:abc").is_empty());
    }

    /// Runs `n` tasks through [`run_bounded`] with `jobs`; each task waits
    /// (up to 10 s) until `jobs` tasks are running at once. Returns the most
    /// that ran at the same time.
    fn most_at_once(n: usize, jobs: usize) -> usize {
        let running = Mutex::new(0usize);
        let changed = std::sync::Condvar::new();
        let most = AtomicUsize::new(0);
        let order: Vec<usize> = (0..n).collect();
        let stop = AtomicBool::new(false);
        let task = |i: usize| -> Result<usize, ()> {
            let mut r = running.lock().unwrap();
            *r += 1;
            most.fetch_max(*r, Ordering::SeqCst);
            changed.notify_all();
            // the first `jobs` tasks wait for each other; later ones pass
            let want = jobs.min(n);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while most.load(Ordering::SeqCst) < want && std::time::Instant::now() < deadline {
                r = changed
                    .wait_timeout(r, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
            *r -= 1;
            Ok(i * 10)
        };
        let out = run_bounded(&order, jobs, &stop, &task).unwrap();
        assert_eq!(out, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        most.into_inner()
    }

    #[test]
    fn the_blob_pool_runs_jobs_tasks_at_once_and_never_more() {
        assert_eq!(most_at_once(12, 4), 4);
        assert_eq!(most_at_once(3, 4), 3, "more jobs than tasks");
        assert_eq!(most_at_once(5, 1), 1);
    }

    #[test]
    fn a_failed_blob_stops_the_pool_and_its_error_is_the_one_returned() {
        let started = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let order: Vec<usize> = (0..50).collect();
        let task = |i: usize| -> Result<(), String> {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 0 {
                Err("blob 0 failed".into())
            } else if stop.load(Ordering::SeqCst) {
                Err(format!("blob {i} cancelled"))
            } else {
                std::thread::sleep(Duration::from_millis(20));
                Ok(())
            }
        };
        let e = run_bounded(&order, 2, &stop, &task).unwrap_err();
        assert_eq!(e, "blob 0 failed");
        assert!(stop.load(Ordering::SeqCst));
        // one worker failed at once; the other finished what it had
        assert!(started.load(Ordering::SeqCst) <= 3, "{started:?} started");
    }

    #[test]
    fn blobs_start_largest_first() {
        let b = |n: usize| Blob::from_bytes("x", vec![0; n]);
        let (a, c, d) = (b(10), b(300), b(10));
        let e = b(20);
        assert_eq!(largest_first(&[&a, &c, &d, &e]), vec![1, 3, 0, 2]);
    }
}
