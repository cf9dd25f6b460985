//! A real CNCF distribution registry (`docker-registry serve`, Debian's
//! package) on 127.0.0.1 with a random free port, killed on drop:
//! without auth, with htpasswd Basic auth, with Bearer token auth (a small
//! token issuer in a thread here signs RS256 JWTs with an `x5c` header the
//! registry trusts through `rootcertbundle`; it takes the password by
//! Basic auth on GET, as docker's token spec has it, and a refresh token by
//! the spec's OAuth2 POST), and optionally behind TLS with
//! a self-signed CA. [`FaultProxy`] puts a small HTTP/1.1 proxy in front of
//! one, answering or rewriting chosen requests the way other registries
//! (ECR, Harbor, registries behind size-limited gateways) do.
//! [`ReferrersRegistry`] is a second real registry, one with the OCI 1.1
//! referrers API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use super::engines::{free_port, get_once};
use crate::util;

/// Which auth the registry asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// htpasswd (bcrypt) Basic auth.
    Basic {
        user: String,
        pass: String,
    },
    /// Bearer tokens from the harness's token issuer, which checks this
    /// user and password (Basic) on its token endpoint.
    Token {
        user: String,
        pass: String,
    },
}

/// A running registry.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub auth: Auth,
    /// The CA certificate (PEM) when behind TLS.
    pub ca: Option<PathBuf>,
    /// A directory with `ca.crt`, for `skopeo --cert-dir` / docker certs.d.
    pub cert_dir: Option<PathBuf>,
    pub log: PathBuf,
    token: Option<TokenIssuer>,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, false)
    }

    pub fn start_tls(auth: Auth) -> Registry {
        Registry::start_with(auth, true)
    }

    pub fn start_with(auth: Auth, tls: bool) -> Registry {
        let bin = util::require_tool("docker-registry", "apt-get install -y docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("dp-registry-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut http = format!("  addr: {host}\n  secret: test-secret\n");
        let (mut ca, mut cert_dir) = (None, None);
        if tls {
            util::require_tool("openssl", "apt-get install -y openssl");
            let (ca_crt, crt, key) = make_tls_certs(dir.path());
            http.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
            let cd = dir.path().join("certs.d");
            std::fs::create_dir_all(&cd).unwrap();
            std::fs::copy(&ca_crt, cd.join("ca.crt")).unwrap();
            ca = Some(ca_crt);
            cert_dir = Some(cd);
        }
        let mut token = None;
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, pass } => {
                util::require_tool("htpasswd", "apt-get install -y apache2-utils");
                let htpasswd = dir.path().join("htpasswd");
                util::run_ok(
                    Command::new("htpasswd")
                        .arg("-Bbc")
                        .arg(&htpasswd)
                        .arg(user)
                        .arg(pass),
                );
                format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Auth::Token { user, pass } => {
                util::require_tool("openssl", "apt-get install -y openssl");
                let issuer = TokenIssuer::start(dir.path(), user, pass);
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    issuer.addr,
                    issuer.cert.display()
                );
                token = Some(issuer);
                yaml
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n{http}{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            dir,
            host,
            auth,
            ca,
            cert_dir,
            log,
            token,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log_text());
            }
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "docker-registry did not listen on {} in 20 s:\n{}",
                    self.host,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        settled(&self.log)
    }

    /// `127.0.0.1:PORT/REPO`
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    /// Token requests the issuer answered.
    pub fn tokens_issued(&self) -> usize {
        self.token
            .as_ref()
            .map(|t| t.issued.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// Of those, the ones that exchanged a refresh token (OAuth2 POST).
    pub fn tokens_refreshed(&self) -> usize {
        self.token
            .as_ref()
            .map(|t| t.refreshed.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// The TLS/credential arguments skopeo needs for this registry
    /// (`prefix` is `src` or `dest` for `copy`, empty for `inspect`).
    pub fn skopeo_args(&self, prefix: &str) -> Vec<String> {
        let dash = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}-")
        };
        let mut a = Vec::new();
        match &self.cert_dir {
            Some(d) => a.push(format!("--{dash}cert-dir={}", d.display())),
            None => a.push(format!("--{dash}tls-verify=false")),
        }
        match &self.auth {
            Auth::None => a.push(format!("--{dash}no-creds")),
            Auth::Basic { user, pass } | Auth::Token { user, pass } => {
                a.push(format!("--{dash}creds={user}:{pass}"))
            }
        }
        a
    }

    /// `skopeo inspect --raw docker://REF`: the manifest bytes as stored.
    pub fn raw_manifest(&self, reference: &str) -> Vec<u8> {
        util::require_tool("skopeo", "apt-get install -y skopeo");
        let out = util::run(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .args(self.skopeo_args(""))
                .arg(format!("docker://{reference}")),
        );
        assert!(
            out.status.success(),
            "skopeo inspect --raw {reference}: {}",
            util::both(&out)
        );
        out.stdout
    }

    /// `skopeo inspect docker://REF` as JSON.
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        util::require_tool("skopeo", "apt-get install -y skopeo");
        let out = util::run(
            Command::new("skopeo")
                .arg("inspect")
                .args(self.skopeo_args(""))
                .arg(format!("docker://{reference}")),
        );
        assert!(
            out.status.success(),
            "skopeo inspect {reference}: {}",
            util::both(&out)
        );
        serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON")
    }

    /// How many blob uploads the registry finished (PUT .../blobs/uploads/...
    /// answered 201), from its access log.
    pub fn uploads_in_log(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| {
                l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/") && l.contains("\" 201 ")
            })
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = &self.token {
            t.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(&t.addr);
        }
    }
}

/// A registry that serves the OCI 1.1 referrers API: `ferro-oci-server`
/// 1.0.0 (crates.io; an axum registry that passes the distribution-spec
/// 1.1 conformance suite, Content Discovery included), which
/// scripts/install-deps.sh builds with `cargo install --locked`. On
/// 127.0.0.1 with a random free port, blobs in a temp dir, no auth; killed
/// on drop. Debian's `docker-registry` (distribution 2.8) has no
/// referrers API, so [`Registry`] tests the tag schema and this one the API.
pub struct ReferrersRegistry {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub log: PathBuf,
}

impl ReferrersRegistry {
    pub fn start() -> ReferrersRegistry {
        let bin = util::require_tool(
            "ferro-oci-server",
            "cargo install --locked --version 1.0.0 ferro-oci-server",
        );
        let dir = tempfile::Builder::new()
            .prefix("dp-ferro-")
            .tempdir()
            .expect("temp dir");
        let host = format!("127.0.0.1:{}", free_port());
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .env("FERRO_OCI_LISTEN", &host)
            .env("FERRO_OCI_STORAGE_DIR", dir.path().join("blobs"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start ferro-oci-server");
        let mut reg = ReferrersRegistry {
            child,
            _dir: dir,
            host,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("ferro-oci-server exited with {status}:\n{}", reg.log_text());
            }
            if matches!(get_once(&reg.host, "/v2/", None), Ok((200, _))) {
                return reg;
            }
            if Instant::now() > deadline {
                panic!(
                    "ferro-oci-server did not answer GET /v2/ on {} in 20 s:\n{}",
                    reg.host,
                    reg.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        settled(&self.log)
    }

    /// `127.0.0.1:PORT/REPO`
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    /// `GET path` on the registry's API (not through distroless-pack),
    /// accepting OCI manifests and indexes: the status and the body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        get_once(
            &self.host,
            path,
            Some("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"),
        )
        .unwrap_or_else(|e| panic!("GET {path} on {}: {e}\n{}", self.host, self.log_text()))
    }

    /// [`ReferrersRegistry::get`], for an answer that must be 200 and JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body:?}"))
    }

    /// The tags of `repo`, as the registry lists them.
    pub fn tags(&self, repo: &str) -> serde_json::Value {
        self.get_json(&format!("/v2/{repo}/tags/list"))["tags"].clone()
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request as the [`FaultProxy`] got it from the client.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: String,
    /// Path and query, as sent by the client (a rule may forward another).
    pub target: String,
    /// `(name, value)` in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked if it came with `Transfer-Encoding: chunked`).
    pub body: Vec<u8>,
}

impl ProxyRequest {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query (after `?`), empty if none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    /// A header's value (first of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the [`FaultProxy`] does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it to the registry and pass the answer back unchanged.
    Forward,
    /// Forward it to the registry, with `target` instead of the client's.
    ForwardAs { target: String },
    /// Forward it (as `target` if given); if the registry answers `from`,
    /// give the client `to` instead (same headers and body).
    Restatus {
        target: Option<String>,
        from: u16,
        to: u16,
    },
    /// Answer it without forwarding (the body, if any, was read in full).
    /// `Answer { status: 200, body: "" }` for a `HEAD` is a lying HEAD: a
    /// registry claiming a blob it does not have.
    Answer { status: u16, body: String },
    /// As `Answer`, with this `Content-Type` (e.g. an image index).
    AnswerTyped {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Answer `status` (307 or 308) with `Location: location`, without
    /// forwarding: an upload handed to another host or path.
    Redirect { status: u16, location: String },
    /// Forward it and add the header `name: value` to the answer (what a
    /// registry with the referrers API adds: `OCI-Subject`).
    ForwardWithHeader { name: String, value: String },
    /// Forward it without its `Authorization` header and without its body
    /// (read in full here): the registry refuses it as it refuses a token
    /// that expired during the upload, and no half body reaches it.
    ForwardWithoutAuth,
    /// Read the request, then answer nothing and keep the connection open
    /// until the client gives up (or a minute passes): a stalled request.
    Stall,
}

/// One exchange in the [`FaultProxy`]'s log.
#[derive(Clone, Debug)]
pub struct ProxyExchange {
    pub method: String,
    /// As the client sent it.
    pub target: String,
    pub body_len: usize,
    /// Whether the request carried an `Authorization` header.
    pub authorized: bool,
    /// What the rule decided.
    pub fault: Fault,
    /// The status the client got (0 if the registry could not be reached).
    pub status: u16,
}

impl std::fmt::Display for ProxyExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({} bytes{}) -> {} [{:?}]",
            self.method,
            self.target,
            self.body_len,
            if self.authorized { ", authorized" } else { "" },
            self.status,
            self.fault
        )
    }
}

type Rule = dyn Fn(&ProxyRequest) -> Fault + Send + Sync;

/// A plain HTTP/1.1 proxy on 127.0.0.1 in front of a registry (`upstream`,
/// `HOST:PORT`), one request per connection (every answer says
/// `Connection: close`). For each request `rule` decides: forward, forward
/// with another status, or answer it here. The `Host` header is passed on,
/// so the `Location`s the registry builds point back at the proxy. Every
/// exchange is logged. Stopped on drop.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`: use it as the registry host in references.
    pub host: String,
    log: Arc<Mutex<Vec<ProxyExchange>>>,
    stop: Arc<AtomicBool>,
    /// Request bodies larger than this are not read at all (see
    /// [`FaultProxy::stall_bodies_over`]).
    stall_over: Arc<AtomicUsize>,
    stalled_bodies: Arc<AtomicUsize>,
    /// Connections accepted whose exchange is not logged yet: the client
    /// has its answer a moment before the exchange is in `log`.
    in_flight: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// From now on, a request whose `Content-Length` is over `bytes` has
    /// its head read and then nothing more: the body is never taken, so the
    /// client's sends stop being acknowledged once the socket buffers are
    /// full (a connection stalled mid-upload). Dropped after a minute.
    pub fn stall_bodies_over(&self, bytes: usize) {
        self.stall_over.store(bytes, Ordering::SeqCst);
    }

    /// How many request bodies were stalled that way.
    pub fn bodies_stalled(&self) -> usize {
        self.stalled_bodies.load(Ordering::SeqCst)
    }

    pub fn start(
        upstream: &str,
        rule: impl Fn(&ProxyRequest) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rule: Arc<Rule> = Arc::new(rule);
        let stall_over = Arc::new(AtomicUsize::new(usize::MAX));
        let stalled_bodies = Arc::new(AtomicUsize::new(0));
        let (log2, stop2, upstream) = (log.clone(), stop.clone(), upstream.to_string());
        let (over2, stalled2) = (stall_over.clone(), stalled_bodies.clone());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight2 = in_flight.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rule, log, upstream) = (rule.clone(), log2.clone(), upstream.clone());
                let (over, stalled) = (over2.clone(), stalled2.clone());
                let in_flight = in_flight2.clone();
                in_flight.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    if let Some(x) = proxy_one(conn, &upstream, &*rule, &over, &stalled) {
                        log.lock().unwrap().push(x);
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultProxy {
            host,
            log,
            stop,
            stall_over,
            stalled_bodies,
            in_flight,
        }
    }

    /// `127.0.0.1:PORT/REPO` through the proxy.
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    /// Every exchange so far, in the order they finished: once the
    /// connections in flight are logged (waiting at most 5 s, for a
    /// connection that is held open on purpose).
    pub fn exchanges(&self) -> Vec<ProxyExchange> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.in_flight.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.log.lock().unwrap().clone()
    }

    /// The log, one exchange a line, for assertion messages.
    pub fn log_text(&self) -> String {
        self.exchanges().iter().map(|x| format!("{x}\n")).collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

const PROXY_IO_TIMEOUT: Duration = Duration::from_secs(30);

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// Reads a request (head and body) from `r`; `None` on EOF or garbage.
fn read_proxy_request(
    r: &mut impl BufRead,
    stall_over: &AtomicUsize,
    stalled: &AtomicUsize,
) -> Option<ProxyRequest> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = ProxyRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let declared: usize = req
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if declared > stall_over.load(Ordering::SeqCst) {
        stalled.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(60));
        return None;
    }
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2]; // data and CRLF
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break; // no trailers from our clients
            }
            req.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = req.header("content-length") {
        let mut body = vec![0; len.parse().ok()?];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    }
    Some(req)
}

/// Serves one connection: one request, one answer, close.
fn proxy_one(
    conn: TcpStream,
    upstream: &str,
    rule: &Rule,
    stall_over: &AtomicUsize,
    stalled: &AtomicUsize,
) -> Option<ProxyExchange> {
    conn.set_read_timeout(Some(PROXY_IO_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(PROXY_IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let req = read_proxy_request(&mut reader, stall_over, stalled)?;
    let fault = rule(&req);
    let mut out = conn;
    let status = match &fault {
        Fault::Redirect { status, location } => {
            let _ = write!(
                out,
                "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            *status
        }
        Fault::Stall => {
            // wait for the client to close (read gives 0 or an error)
            let _ = out.set_read_timeout(Some(Duration::from_secs(60)));
            let mut buf = [0u8; 1];
            let _ = out.read(&mut buf);
            0
        }
        Fault::Answer { status, body } => {
            answer(&mut out, *status, "application/json; charset=utf-8", body)
        }
        Fault::AnswerTyped {
            status,
            content_type,
            body,
        } => answer(&mut out, *status, content_type, body),
        Fault::Forward
        | Fault::ForwardAs { .. }
        | Fault::Restatus { .. }
        | Fault::ForwardWithHeader { .. }
        | Fault::ForwardWithoutAuth => {
            let (target, restatus) = match &fault {
                Fault::ForwardAs { target } => (target.as_str(), None),
                Fault::Restatus { target, from, to } => {
                    (target.as_deref().unwrap_or(&req.target), Some((*from, *to)))
                }
                _ => (req.target.as_str(), None),
            };
            let stripped;
            let sent = if let Fault::ForwardWithoutAuth = &fault {
                stripped = ProxyRequest {
                    headers: req
                        .headers
                        .iter()
                        .filter(|(k, _)| {
                            !["authorization", "content-length", "transfer-encoding"]
                                .iter()
                                .any(|h| k.eq_ignore_ascii_case(h))
                        })
                        .cloned()
                        .collect(),
                    body: Vec::new(),
                    ..req.clone()
                };
                &stripped
            } else {
                &req
            };
            match forward(sent, target, upstream) {
                Some((mut status, head, body)) => {
                    if let Some((from, to)) = restatus {
                        if status == from {
                            status = to;
                        }
                    }
                    let mut resp = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                    for (k, v) in head {
                        if !k.eq_ignore_ascii_case("connection") {
                            resp.push_str(&format!("{k}: {v}\r\n"));
                        }
                    }
                    if let Fault::ForwardWithHeader { name, value } = &fault {
                        resp.push_str(&format!("{name}: {value}\r\n"));
                    }
                    resp.push_str("Connection: close\r\n\r\n");
                    let _ = out.write_all(resp.as_bytes());
                    let _ = out.write_all(&body);
                    status
                }
                None => 0, // dropped: the client sees a closed connection
            }
        }
    };
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
    Some(ProxyExchange {
        authorized: req.header("authorization").is_some(),
        method: req.method,
        target: req.target,
        body_len: req.body.len(),
        fault,
        status,
    })
}

/// Writes an answer made here (not forwarded); gives its status.
fn answer(out: &mut TcpStream, status: u16, content_type: &str, body: &str) -> u16 {
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    status
}

/// A registry's answer: status, headers, raw body (still chunked if it was).
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Sends `req` (as `target`) to `upstream` on a new connection and reads the
/// whole answer.
fn forward(req: &ProxyRequest, target: &str, upstream: &str) -> Option<Answer> {
    let mut up = TcpStream::connect(upstream).ok()?;
    up.set_read_timeout(Some(PROXY_IO_TIMEOUT)).ok()?;
    up.set_write_timeout(Some(PROXY_IO_TIMEOUT)).ok()?;
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method);
    for (k, v) in &req.headers {
        let skip = [
            "connection",
            "content-length",
            "transfer-encoding",
            "keep-alive",
        ];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let has_body = req.header("content-length").is_some()
        || req.header("transfer-encoding").is_some()
        || !req.body.is_empty();
    if has_body {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some((status, headers, raw[end + 4..].to_vec()))
}

fn openssl(args: &[&str], dir: &Path) {
    util::run_ok(Command::new("openssl").args(args).current_dir(dir));
}

/// A CA and a server certificate for 127.0.0.1/localhost signed by it.
/// Returns (ca.crt, server.crt, server.key).
pub fn make_tls_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir.join("tls");
    std::fs::create_dir_all(&d).unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=dp-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        &d,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &d,
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
        &d,
    );
    (d.join("ca.crt"), d.join("server.crt"), d.join("server.key"))
}

/// A token endpoint: `GET /token?service=..&scope=..` with Basic auth,
/// answering `{"token": JWT}` where the JWT (RS256, `x5c` header) grants
/// every requested action. Wrong or missing credentials get 401.
struct TokenIssuer {
    addr: String,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    refreshed: Arc<AtomicUsize>,
}

/// The OAuth2 refresh token (a docker config `identitytoken`) the token
/// issuer of `Auth::Token { pass, .. }` takes in place of the password.
pub fn refresh_token_for(pass: &str) -> String {
    format!("{pass}-refresh-token")
}

impl TokenIssuer {
    fn start(dir: &Path, user: &str, pass: &str) -> TokenIssuer {
        let d = dir.join("token");
        std::fs::create_dir_all(&d).unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=test-issuer",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ],
            &d,
        );
        let der = util::run(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(d.join("cert.pem")),
        );
        assert!(der.status.success());
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let key = d.join("key.pem");
        let refreshed = Arc::new(AtomicUsize::new(0));
        let refresh_token = refresh_token_for(pass);
        let (stop2, issued2, refreshed2) = (stop.clone(), issued.clone(), refreshed.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&mut conn) else {
                    continue;
                };
                // The OAuth2 form (distribution's token spec, "oauth"): POST
                // grant_type=refresh_token with the refresh token, the scopes
                // space-separated in one `scope`.
                let target = if request.method == "POST" {
                    let form: Vec<(String, String)> = request
                        .body
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), url_decode(v)))
                        .collect();
                    let field = |name: &str| {
                        form.iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.as_str())
                    };
                    if field("grant_type") != Some("refresh_token")
                        || field("refresh_token") != Some(refresh_token.as_str())
                        || field("client_id").is_none()
                    {
                        let body = r#"{"error":"invalid_grant"}"#;
                        let _ = write!(
                            conn,
                            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        continue;
                    }
                    refreshed2.fetch_add(1, Ordering::SeqCst);
                    format!("/token?{}", request.body)
                } else if request.authorization.as_deref() != Some(expected.as_str()) {
                    let body =
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Basic realm=\"token\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                } else {
                    request.target
                };
                let jwt = sign_jwt(&key, &x5c, &target);
                issued2.fetch_add(1, Ordering::SeqCst);
                let body =
                    serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300})
                        .to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenIssuer {
            addr,
            cert: d.join("cert.pem"),
            stop,
            issued,
            refreshed,
        }
    }
}

/// One request to the token issuer.
struct TokenRequest {
    method: String,
    target: String,
    authorization: Option<String>,
    body: String,
}

/// A registry's log once it stops growing: the registry writes a request's
/// access-log line after the answer has gone out, so a client can be done
/// a moment before its last line is there. Waits until the size holds for
/// 30 ms (at most 2 s).
fn settled(log: &Path) -> String {
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut last = size();
    loop {
        std::thread::sleep(Duration::from_millis(30));
        let now = size();
        if now == last || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Reads one request: its method, target, Authorization header and body.
fn read_request(conn: &mut TcpStream) -> Option<TokenRequest> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut words = first.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut authz = None;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authz = Some(v.trim().to_string());
            }
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    Some(TokenRequest {
        method,
        target,
        authorization: authz,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RS256 JWT granting every `scope=type:name:actions` in `target`.
fn sign_jwt(key: &Path, x5c: &str, target: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut access = Vec::new();
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if k != "scope" {
            continue;
        }
        for scope in url_decode(v).split(' ') {
            let parts: Vec<&str> = scope.splitn(3, ':').collect();
            if parts.len() == 3 {
                let actions: Vec<&str> = parts[2].split(',').collect();
                access.push(
                    serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                );
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": "tester", "aud": "test-registry",
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    format!("{input}.{}", b64(&out.stdout))
}
