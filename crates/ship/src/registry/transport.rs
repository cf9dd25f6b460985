//! HTTP transport: a rustls client (system roots plus `--ca-file`), the
//! scheme choice (HTTPS; HTTP only for loopback hosts or `--insecure`), and
//! one `send` that adds auth, retries with backoff on 408/429/5xx and
//! dropped connections, and turns 401/403 into auth errors.

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

/// Builds the HTTP client.
pub fn client(opts: &PushOptions) -> Result<Client, RegistryError> {
    let mut b = Client::builder()
        .use_rustls_tls()
        .connect_timeout(opts.stall_timeout)
        .tcp_user_timeout(opts.stall_timeout)
        .timeout(None::<Duration>)
        .user_agent(concat!("distroless-pack/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(8);
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| RegistryError::Invalid(format!("--ca-file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            RegistryError::Invalid(format!(
                "--ca-file {}: not PEM certificates: {e}",
                ca.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "--ca-file {}: no PEM certificate in it",
                ca.display()
            )));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if opts.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| RegistryError::Invalid(format!("cannot set up HTTPS: {}", error_chain(&e))))
}

/// A connection to one registry: base URL, client, auth state, retry policy.
pub struct Session {
    pub registry: String,
    pub base: String,
    pub client: Client,
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
        client: Client,
        scopes: Vec<String>,
    ) -> Result<Session, RegistryError> {
        let host = reference.api_host().to_string();
        let auth = Auth::new(reference.clone(), opts.credentials.clone(), scopes);
        let mut s = Session {
            registry: reference.registry.clone(),
            base: format!("https://{host}"),
            client,
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
                    let message = if e.is_timeout() {
                        format!(
                            "no answer in time (stall timeout {:?}; raise it with --stall-timeout or DISTROLESS_PACK_STALL_TIMEOUT), {attempt} attempt(s)",
                            self.stall
                        )
                    } else {
                        error_chain(&e)
                    };
                    return Err(RegistryError::Network {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        message,
                    });
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

    /// The error for an unexpected response.
    pub fn http_error(&self, what: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        RegistryError::Http {
            registry: self.registry.clone(),
            what: what.to_string(),
            status,
            detail: error_detail(&body),
        }
    }
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
