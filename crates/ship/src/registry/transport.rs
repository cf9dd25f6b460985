//! HTTP transport: the rustls clients (system roots plus `--ca-file`):
//! reqwest's blocking client for requests and a [`Streamer`] for upload
//! bodies; the scheme choice (HTTPS; HTTP only for loopback hosts or
//! `--insecure`); one `send` that adds auth, retries with backoff on
//! 408/429/5xx and dropped connections, and turns 401/403 into auth
//! errors; and `put_stream`, the same auth for one streamed `PUT`.

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};

use super::auth::Auth;
use super::reference::Reference;
use super::{PushOptions, RegistryError};

/// The total timeout for sending `size` bytes: the stall timeout plus the
/// time at 256 KiB/s, so a 500 MB layer gets ~33 minutes in all, while a
/// stall is noticed after `stall` (no byte acknowledged: TCP_USER_TIMEOUT).
pub fn timeout_for(stall: Duration, size: u64) -> Duration {
    stall + Duration::from_secs(size / (256 * 1024))
}

/// The error and its causes on one line (reqwest hides the useful part,
/// e.g. the certificate problem, in its sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// The HTTP clients of a push, made once and shared by its sessions:
/// reqwest's blocking client for every request, and a [`Streamer`] for the
/// large request bodies (blob uploads).
#[derive(Clone)]
pub struct Clients {
    pub blocking: Client,
    pub streamer: Streamer,
}

/// What both clients are built with: the extra roots of `--ca-file` and
/// the timeouts.
#[derive(Clone)]
struct ClientSettings {
    roots: Vec<reqwest::Certificate>,
    insecure: bool,
    stall: Duration,
}

/// Both builders take the same settings (they are distinct types with the
/// same methods).
macro_rules! configure {
    ($builder:expr, $settings:expr) => {{
        let s: &ClientSettings = $settings;
        let mut b = $builder
            .use_rustls_tls()
            .connect_timeout(s.stall)
            .tcp_user_timeout(s.stall)
            .user_agent(concat!("distroless-pack/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8);
        for c in &s.roots {
            b = b.add_root_certificate(c.clone());
        }
        if s.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        b
    }};
}

/// Builds the HTTP clients (the streaming one on first use).
pub fn clients(opts: &PushOptions) -> Result<Clients, RegistryError> {
    let mut roots = Vec::new();
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| RegistryError::Invalid(format!("--ca-file {}: {e}", ca.display())))?;
        roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            RegistryError::Invalid(format!(
                "--ca-file {}: not PEM certificates: {e}",
                ca.display()
            ))
        })?;
        if roots.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "--ca-file {}: no PEM certificate in it",
                ca.display()
            )));
        }
    }
    let settings = ClientSettings {
        roots,
        insecure: opts.insecure,
        stall: opts.stall_timeout,
    };
    let blocking = configure!(Client::builder(), &settings)
        .timeout(None::<Duration>)
        .build()
        .map_err(|e| RegistryError::Invalid(format!("cannot set up HTTPS: {}", error_chain(&e))))?;
    Ok(Clients {
        blocking,
        streamer: Streamer {
            settings: Arc::new(settings),
            made: Arc::new(OnceLock::new()),
        },
    })
}

/// Sends request bodies read from a file in large pieces. reqwest's
/// blocking client reads a body 8 KiB at a time and hands each piece to
/// its runtime thread, two thread switches per 8 KiB, which cost a 32 MB
/// upload more CPU than hashing it; this async client, on a runtime of its
/// own, takes the body in [`STREAM_PIECE`] pieces from the thread that
/// reads the file.
#[derive(Clone)]
pub struct Streamer {
    settings: Arc<ClientSettings>,
    made: Arc<OnceLock<Result<Streaming, String>>>,
}

struct Streaming {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// The pieces an upload body is sent in; two wait in the channel at most.
pub const STREAM_PIECE: usize = 256 * 1024;

impl Streamer {
    fn get(&self) -> Result<&Streaming, RegistryError> {
        let made = self.made.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("distroless-pack-upload")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the upload runtime: {e}"))?;
            let client = configure!(reqwest::Client::builder(), &self.settings)
                .build()
                .map_err(|e| format!("cannot set up HTTPS: {}", error_chain(&e)))?;
            Ok(Streaming { runtime, client })
        });
        made.as_ref().map_err(|e| RegistryError::Invalid(e.clone()))
    }
}

/// A registry's answer, read whole: what the upload code looks at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// Reads a blocking response's status, headers and body.
    pub fn read(resp: Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A connection to one registry: base URL, client, auth state, retry policy.
pub struct Session {
    pub registry: String,
    pub base: String,
    pub client: Client,
    streamer: Streamer,
    pub auth: Auth,
    /// Attempts for the `GET /v2/` probe.
    attempts: u32,
    /// The stall timeout: the whole timeout of a request without a large body.
    pub stall: Duration,
}

/// The `{"errors":[{"code":..,"message":..}]}` body of a failed request, as
/// `: CODE: message` (empty if the body is something else).
pub fn error_detail(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => {
            let t: String = body.trim().chars().take(200).collect();
            if t.is_empty() || t.starts_with('<') {
                String::new()
            } else {
                format!(": {}", t.replace('\n', " "))
            }
        }
    }
}

impl Session {
    /// Connects to the registry of `reference` with `GET /v2/`: picks the
    /// scheme and learns whether (and how) it wants auth.
    pub fn open(
        reference: &Reference,
        opts: &PushOptions,
        clients: Clients,
        scopes: Vec<String>,
    ) -> Result<Session, RegistryError> {
        let host = reference.api_host().to_string();
        let auth = Auth::new(reference.clone(), opts.credentials.clone(), scopes);
        let mut s = Session {
            registry: reference.registry.clone(),
            base: format!("https://{host}"),
            client: clients.blocking,
            streamer: clients.streamer,
            auth,
            attempts: opts.attempts.max(1),
            stall: opts.stall_timeout,
        };
        let https = format!("https://{host}");
        let http = format!("http://{host}");
        if reference.is_loopback() {
            // Loopback: plain HTTP first (what a local test or CI registry
            // speaks; nothing leaves the machine and the probe carries no
            // credentials), then HTTPS. Probing HTTPS first costs a failed
            // handshake on every push to an HTTP registry.
            s.base = http;
            match s.ping() {
                Ok(()) => return Ok(s),
                Err(RegistryError::Network { .. }) => {}
                Err(e) => return Err(e),
            }
            s.base = https;
            return match s.ping() {
                Ok(()) => Ok(s),
                // neither answered: the HTTPS error (it names a certificate
                // problem), saying plain HTTP was tried first
                Err(e @ RegistryError::Network { .. }) => Err(both_tried(e, "plain HTTP")),
                Err(e) => Err(e),
            };
        }
        let https_err = match s.ping() {
            Ok(()) => return Ok(s),
            Err(e @ RegistryError::Network { .. }) => e,
            Err(e) => return Err(e),
        };
        if !opts.insecure {
            return Err(https_err);
        }
        // --insecure: plain HTTP, but only if something speaks registry there
        s.base = http;
        match s.ping() {
            Ok(()) => Ok(s),
            // nothing speaks HTTP there either: the HTTPS error says more
            Err(RegistryError::Network { .. }) => Err(both_tried(https_err, "plain HTTP")),
            // a registry answered over HTTP (e.g. refused the credentials)
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/`. Retries dropped connections, timeouts and 408/429/5xx
    /// (not refused connections or TLS failures: those decide the scheme).
    fn ping(&mut self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let mut attempt = 0u32;
        let resp = loop {
            attempt += 1;
            let last = attempt >= self.attempts;
            match self.client.get(&url).timeout(self.stall).send() {
                Err(e) if !last && (e.is_timeout() || !e.is_connect()) => {}
                Err(e) => {
                    return Err(RegistryError::Network {
                        registry: self.registry.clone(),
                        what: format!("connecting to {url}"),
                        message: error_chain(&e),
                    })
                }
                Ok(r) => {
                    let st = r.status().as_u16();
                    if last || !(st == 408 || st == 429 || st >= 500) {
                        break r;
                    }
                }
            }
            std::thread::sleep(backoff(attempt, None));
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            401 => self
                .auth
                .on_unauthorized(&self.client, challenge(&resp), "GET /v2/"),
            _ => Err(RegistryError::Network {
                registry: self.registry.clone(),
                what: format!("connecting to {url}"),
                message: format!("HTTP {status}: not an OCI distribution registry API"),
            }),
        }
    }

    /// The total timeout for a request sending `size` bytes.
    pub fn timeout_for(&self, size: u64) -> Duration {
        timeout_for(self.stall, size)
    }

    /// Whether `url` is on the registry's own scheme, host and port.
    fn is_registry_url(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.base).is_ok_and(|base| {
            base.scheme() == url.scheme()
                && base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
        })
    }

    /// An absolute URL for `path_or_url` (a path under the base, or the
    /// `Location` a registry returned, possibly relative).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else if path_or_url.starts_with('/') {
            format!("{}{}", self.base, path_or_url)
        } else {
            format!("{}/{}", self.base, path_or_url)
        }
    }

    /// Sends the request `mk` builds (called again for each attempt), with
    /// auth. Retries 408/429/5xx and transport errors `attempts` times with
    /// exponential backoff (honouring `Retry-After`); on a 401 gets new
    /// credentials or a token once. Returns any other response as is.
    pub fn send(
        &self,
        what: &str,
        attempts: u32,
        mk: &dyn Fn(&Client) -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            let mut req = mk(&self.client)?
                .build()
                .map_err(|e| RegistryError::Network {
                    registry: self.registry.clone(),
                    what: what.to_string(),
                    message: error_chain(&e),
                })?;
            // credentials only go to the registry itself, never to another
            // host a Location header points at (a storage backend, a CDN)
            if self.is_registry_url(req.url()) {
                if let Some(h) = self.auth.header() {
                    req.headers_mut().insert(reqwest::header::AUTHORIZATION, h);
                }
            }
            match self.client.execute(req) {
                Err(e) => {
                    attempt += 1;
                    if attempt < attempts && !e.is_builder() {
                        std::thread::sleep(backoff(attempt, None));
                        continue;
                    }
                    return Err(self.network_error(what, &e, attempt));
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && !reauthed {
                        reauthed = true;
                        self.auth
                            .on_unauthorized(&self.client, challenge(&resp), what)?;
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(self.auth.denied_error(status, what));
                    }
                    if status == 408 || status == 429 || status >= 500 {
                        attempt += 1;
                        if attempt < attempts {
                            let retry_after = resp
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<u64>().ok());
                            std::thread::sleep(backoff(attempt, retry_after));
                            continue;
                        }
                    }
                    return Ok(resp);
                }
            }
        }
    }

    /// A request that got no answer, after `attempts` tries.
    fn network_error(&self, what: &str, e: &reqwest::Error, attempts: u32) -> RegistryError {
        let message = if e.is_timeout() {
            format!(
                "no answer in time (stall timeout {:?}; raise it with --stall-timeout or DISTROLESS_PACK_STALL_TIMEOUT), {attempts} attempt(s)",
                self.stall
            )
        } else {
            error_chain(e)
        };
        RegistryError::Network {
            registry: self.registry.clone(),
            what: what.to_string(),
            message,
        }
    }

    /// PUTs the `size` bytes `open` reads as the body, with auth, through
    /// the [`Streamer`]: once, except that a 401 gets new credentials or a
    /// token and one more try (the body is opened again). The body is read
    /// on this thread, [`STREAM_PIECE`] bytes at a time; a read error ends
    /// the request unfinished, so the registry never gets a whole body.
    pub fn put_stream(
        &self,
        what: &str,
        url: &reqwest::Url,
        size: u64,
        open: &dyn Fn() -> Result<Box<dyn Read + Send>, RegistryError>,
    ) -> Result<Answer, RegistryError> {
        use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
        let streaming = self.streamer.get()?;
        let mut reauthed = false;
        loop {
            let mut body = open()?;
            let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(2);
            let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|piece| (piece, rx))
            });
            let mut req = streaming
                .client
                .put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .timeout(self.timeout_for(size))
                .body(reqwest::Body::wrap_stream(pieces));
            // as in `send`: credentials only go to the registry itself
            if self.is_registry_url(url) {
                if let Some(h) = self.auth.header() {
                    req = req.header(AUTHORIZATION, h);
                }
            }
            let answer = streaming.runtime.spawn(async move {
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.text().await.unwrap_or_default();
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    headers,
                    body,
                })
            });
            feed(&mut *body, size, &tx);
            drop(tx);
            let answer = match streaming.runtime.block_on(answer) {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return Err(self.network_error(what, &e, 1)),
                Err(e) => {
                    return Err(RegistryError::Network {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        message: format!("the upload task failed: {e}"),
                    })
                }
            };
            if answer.status == 401 && !reauthed {
                reauthed = true;
                let challenge = answer.header(reqwest::header::WWW_AUTHENTICATE);
                self.auth.on_unauthorized(&self.client, challenge, what)?;
                continue;
            }
            if answer.status == 401 || answer.status == 403 {
                return Err(self.auth.denied_error(answer.status, what));
            }
            return Ok(answer);
        }
    }

    /// The error for an unexpected response.
    pub fn http_error(&self, what: &str, resp: Response) -> RegistryError {
        self.answer_error(what, &Answer::read(resp))
    }

    /// The error for an unexpected answer.
    pub fn answer_error(&self, what: &str, answer: &Answer) -> RegistryError {
        RegistryError::Http {
            registry: self.registry.clone(),
            what: what.to_string(),
            status: answer.status,
            detail: error_detail(&answer.body),
        }
    }
}

/// Sends `body` into `tx` in [`STREAM_PIECE`] pieces, `size` bytes in all
/// (a shorter input ends in an error, a longer one is cut: the request
/// says `size`). A read error is sent on, so the request fails with it;
/// feeding stops early when the request is over (the receiver is gone).
fn feed(
    body: &mut dyn Read,
    size: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) {
    let mut left = size;
    while left > 0 {
        let mut piece = vec![0u8; (STREAM_PIECE as u64).min(left) as usize];
        let item = match read_full(body, &mut piece) {
            Ok(n) if n == piece.len() => {
                left -= n as u64;
                Ok(bytes::Bytes::from(piece))
            }
            Ok(n) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the blob ended {} bytes short of its size", left - n as u64),
            )),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

/// Reads until `buf` is full or the input ends.
pub(super) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A connection error that also says the other scheme was tried.
fn both_tried(e: RegistryError, other: &str) -> RegistryError {
    match e {
        RegistryError::Network {
            registry,
            what,
            message,
        } => RegistryError::Network {
            registry,
            what,
            message: format!("{message} ({other} was tried too and failed as well)"),
        },
        e => e,
    }
}

/// 0.5 s, 1 s, 2 s, ... capped at 8 s; `Retry-After` seconds (capped at 60)
/// when the registry gives one.
pub fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    if let Some(s) = retry_after {
        return Duration::from_secs(s.min(60));
    }
    let ms = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(4));
    Duration::from_millis(ms.min(8000))
}

/// The `WWW-Authenticate` challenge of a 401 answer, if it has one.
fn challenge(resp: &reqwest::blocking::Response) -> Option<&str> {
    resp.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `feed` sent, until the channel closed.
    fn fed(input: &[u8], size: u64) -> Vec<std::io::Result<bytes::Bytes>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        feed(&mut &input[..], size, &tx);
        drop(tx);
        let mut out = Vec::new();
        while let Some(piece) = rx.blocking_recv() {
            out.push(piece);
        }
        out
    }

    #[test]
    fn a_body_is_fed_in_whole_pieces_and_nothing_past_its_size() {
        let input: Vec<u8> = (0..STREAM_PIECE * 2 + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        let pieces = fed(&input, input.len() as u64);
        let lens: Vec<usize> = pieces.iter().map(|p| p.as_ref().unwrap().len()).collect();
        assert_eq!(lens, [STREAM_PIECE, STREAM_PIECE, 100]);
        let joined: Vec<u8> = pieces
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        assert_eq!(joined, input);
        // a longer input is cut at the size the request says
        let cut = fed(&input, 10);
        assert_eq!(cut.len(), 1);
        assert_eq!(&cut[0].as_ref().unwrap()[..], &input[..10]);
    }

    #[test]
    fn a_short_or_failing_body_ends_in_an_error_piece() {
        let short = fed(&[7u8; 100], 150);
        assert_eq!(short.len(), 1);
        let e = short[0].as_ref().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("50 bytes short"), "{e}");

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("cancelled"))
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        feed(&mut Failing, 10, &tx);
        drop(tx);
        assert_eq!(
            rx.blocking_recv().unwrap().unwrap_err().to_string(),
            "cancelled"
        );
        assert!(rx.blocking_recv().is_none(), "nothing after the error");
    }

    #[test]
    fn feeding_stops_when_the_request_is_over() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let input = vec![0u8; STREAM_PIECE * 4];
        let mut reader = &input[..];
        feed(&mut reader, input.len() as u64, &tx);
        // one piece was read, its send failed, and no more was read
        assert_eq!(reader.len(), STREAM_PIECE * 3);
    }
}
