//! Registry authentication: the `WWW-Authenticate` challenge, Basic
//! credentials, and the Bearer token flow (realm, service, scope) with the
//! token cached per registry and fetched again once on a 401.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::Client;

use super::credentials::{self, Credential, CredentialOptions, Lookup, Secret};
use super::reference::Reference;
use super::RegistryError;

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="..",service="..",scope=".."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `k="v", k2=v2` with quoted values that may contain commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

#[derive(Default)]
struct State {
    challenge: Option<Challenge>,
    lookup: Option<Lookup>,
    token: Option<Secret>,
}

/// The auth state of one registry session, shared by its worker threads.
pub struct Auth {
    reference: Reference,
    options: CredentialOptions,
    /// `repository:NAME:pull,push` for every repository pushed in this run.
    scopes: Vec<String>,
    state: Mutex<State>,
}

impl Auth {
    pub fn new(reference: Reference, options: CredentialOptions, scopes: Vec<String>) -> Auth {
        Auth {
            reference,
            options,
            scopes,
            state: Mutex::new(State::default()),
        }
    }

    fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// The Authorization header value the registry wants, if known (marked
    /// sensitive, so reqwest never shows it).
    pub fn header(&self) -> Option<reqwest::header::HeaderValue> {
        let st = self.state.lock().expect("auth state");
        let value = match &st.challenge {
            Some(Challenge::Basic) => match st.lookup.as_ref().and_then(|l| l.found.as_ref()) {
                Some(credentials::Found {
                    credential: Credential::Basic { username, password },
                    ..
                }) => {
                    use base64::Engine;
                    let pair = format!("{username}:{}", password.expose());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )
                }
                _ => return None,
            },
            Some(Challenge::Bearer { .. }) => format!("Bearer {}", st.token.as_ref()?.expose()),
            None => return None,
        };
        let mut h = reqwest::header::HeaderValue::from_str(&value).ok()?;
        h.set_sensitive(true);
        Some(h)
    }

    fn ensure_lookup(&self, st: &mut State) -> Result<(), RegistryError> {
        if st.lookup.is_none() {
            st.lookup = Some(credentials::lookup(&self.reference, &self.options)?);
        }
        Ok(())
    }

    /// Handles a 401: learns the challenge and gets (new) credentials or a
    /// token. `applied` tells whether the failed request carried auth.
    pub fn on_unauthorized(
        &self,
        client: &Client,
        www_authenticate: Option<&str>,
        what: &str,
    ) -> Result<(), RegistryError> {
        let challenge =
            www_authenticate
                .and_then(parse_challenge)
                .ok_or_else(|| RegistryError::Auth {
                    registry: self.registry().to_string(),
                    message: format!(
                        "HTTP 401 on {what} without a usable WWW-Authenticate challenge ({:?})",
                        www_authenticate.unwrap_or("")
                    ),
                })?;
        let mut st = self.state.lock().expect("auth state");
        self.ensure_lookup(&mut st)?;
        let had_basic = st.challenge == Some(Challenge::Basic);
        match &challenge {
            Challenge::Basic => {
                let has = st.lookup.as_ref().is_some_and(|l| {
                    matches!(
                        l.found,
                        Some(credentials::Found {
                            credential: Credential::Basic { .. },
                            ..
                        })
                    )
                });
                if !has || had_basic {
                    return Err(self.denied(&st, 401, what));
                }
                st.challenge = Some(challenge);
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = self.scopes.clone();
                if let Some(s) = scope {
                    for part in s.split(' ') {
                        if !part.is_empty() && !scopes.iter().any(|x| x == part) {
                            scopes.push(part.to_string());
                        }
                    }
                }
                let token =
                    self.fetch_token(client, &st, realm, service.as_deref(), &scopes, what)?;
                st.token = Some(token);
                st.challenge = Some(challenge);
                Ok(())
            }
        }
    }

    /// The error for a refused request (401 after auth, or 403).
    pub fn denied_error(&self, status: u16, what: &str) -> RegistryError {
        let mut st = self.state.lock().expect("auth state");
        if let Err(e) = self.ensure_lookup(&mut st) {
            return e;
        }
        self.denied(&st, status, what)
    }

    fn denied(&self, st: &State, status: u16, what: &str) -> RegistryError {
        let registry = self.registry().to_string();
        let login = format!(
            "log in with `distroless-pack login {registry} -u USER --password-stdin` (or docker/podman login), pass --username with --password-stdin, or set {}/{}",
            credentials::ENV_USERNAME,
            credentials::ENV_PASSWORD
        );
        let lookup = st.lookup.clone().unwrap_or_default();
        let tried = lookup.tried.join(", ");
        let message = match (&lookup.found, status) {
            (Some(f), 403) => format!(
                "access denied (HTTP 403 on {what}) with the credentials from {}: the account may not be allowed to push to {}; {login}",
                f.source, self.reference.repository
            ),
            (Some(f), _) if matches!(f.credential, Credential::IdentityToken(_)) => format!(
                "authentication failed (HTTP {status} on {what}): the token server refused the identity token (an OAuth2 refresh token) from {}; it may have expired or been revoked: log in again (docker login, az acr login, ...); {login}",
                f.source
            ),
            (Some(f), _) => format!(
                "authentication failed (HTTP {status} on {what}): the registry refused the credentials from {}; check the user name and password or token; {login}",
                f.source
            ),
            (None, _) => format!(
                "authentication required (HTTP {status} on {what}) and no credentials were found for {registry} (looked in: {tried}); {login}"
            ),
        };
        RegistryError::Auth { registry, message }
    }

    fn fetch_token(
        &self,
        client: &Client,
        st: &State,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        what: &str,
    ) -> Result<Secret, RegistryError> {
        let registry = self.registry().to_string();
        let found = st.lookup.as_ref().and_then(|l| l.found.as_ref());
        let mut last_err = None;
        for attempt in 0..4u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            let rb = match found.map(|f| &f.credential) {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("refresh_token", refresh.expose().to_string()),
                        ("client_id", "distroless-pack".to_string()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_string()));
                    }
                    client.post(realm).form(&form)
                }
                cred => {
                    let mut q: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = service {
                        q.push(("service", s));
                    }
                    for s in scopes {
                        q.push(("scope", s));
                    }
                    let rb = client.get(realm).query(&q);
                    match cred {
                        Some(Credential::Basic { username, password }) => {
                            rb.basic_auth(username, Some(password.expose()))
                        }
                        _ => rb,
                    }
                }
            };
            let resp = match rb.timeout(Duration::from_secs(60)).send() {
                Ok(r) => r,
                Err(e) => {
                    last_err = Some(RegistryError::Network {
                        registry: registry.clone(),
                        what: format!("token request to {}", strip_query(realm)),
                        message: super::transport::error_chain(&e),
                    });
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 401 || status == 403 {
                return Err(self.denied(st, status, &format!("token request for {what}")));
            }
            if status == 408 || status == 429 || status >= 500 {
                last_err = Some(RegistryError::Http {
                    registry: registry.clone(),
                    what: format!("token request to {}", strip_query(realm)),
                    status,
                    detail: String::new(),
                });
                continue;
            }
            if !resp.status().is_success() {
                return Err(RegistryError::Http {
                    registry,
                    what: format!("token request to {}", strip_query(realm)),
                    status,
                    detail: String::new(),
                });
            }
            #[derive(serde::Deserialize)]
            struct TokenReply {
                token: Option<String>,
                access_token: Option<String>,
            }
            let reply: TokenReply = resp.json().map_err(|_| RegistryError::Http {
                registry: registry.clone(),
                what: format!("token request to {}", strip_query(realm)),
                status,
                detail: ": the answer is not a JSON token".into(),
            })?;
            let token = reply
                .token
                .filter(|t| !t.is_empty())
                .or(reply.access_token)
                .ok_or_else(|| RegistryError::Http {
                    registry: registry.clone(),
                    what: format!("token request to {}", strip_query(realm)),
                    status,
                    detail: ": the answer has no token".into(),
                })?;
            return Ok(Secret::new(token));
        }
        Err(last_err.expect("at least one attempt"))
    }
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:a/b:pull,push\""
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=https://x/t"),
            Some(Challenge::Bearer {
                realm: "https://x/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
