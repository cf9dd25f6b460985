//! Where registry credentials come from, in this order (the first that has
//! an entry for the registry wins):
//!
//! 1. explicit `--username` / `--password-stdin` ([`CredentialOptions::explicit`]);
//! 2. the environment: `DISTROLESS_PACK_REGISTRY_USERNAME` and
//!    `DISTROLESS_PACK_REGISTRY_PASSWORD`;
//! 3. docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): `credHelpers[host]`, then `auths[host]`
//!    (`auth`, `username`/`password` or `identitytoken`), then `credsStore`;
//!    helpers run as `docker-credential-NAME get`;
//! 4. podman's `auth.json` (`$REGISTRY_AUTH_FILE`, else
//!    `$XDG_RUNTIME_DIR/containers/auth.json`, else
//!    `~/.config/containers/auth.json`), whose keys may also name a
//!    repository (`host/org/repo`), matched most specific first.
//!
//! Keys are compared after normalisation (scheme and `/v1/` stripped, Docker
//! Hub aliases folded into `docker.io`) so `https://index.docker.io/v1/`,
//! `index.docker.io` and `docker.io` all match a `docker.io/...` reference.
//! Secrets are held in [`Secret`], whose `Debug` and `Display` never show
//! the value.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

use super::reference::{Reference, DOCKER_HUB, DOCKER_HUB_AUTH_KEY};
use super::RegistryError;

/// Environment variable holding the registry user name.
pub const ENV_USERNAME: &str = "DISTROLESS_PACK_REGISTRY_USERNAME";
/// Environment variable holding the registry password or token.
pub const ENV_PASSWORD: &str = "DISTROLESS_PACK_REGISTRY_PASSWORD";

/// A secret string: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for building a request header. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A credential for one registry.
#[derive(Clone, Debug)]
pub enum Credential {
    /// User name and password (or personal access token).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (docker config `identitytoken`), exchanged at
    /// the token endpoint.
    IdentityToken(Secret),
}

/// A credential and a description of where it came from (never its value).
#[derive(Clone, Debug)]
pub struct Found {
    pub credential: Credential,
    pub source: String,
}

/// The result of a lookup: the credential used, if any, and every source
/// that was consulted, for error messages.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    pub found: Option<Found>,
    pub tried: Vec<String>,
}

/// How to look credentials up.
#[derive(Clone, Debug, Default)]
pub struct CredentialOptions {
    /// `--username` with the password read from stdin.
    pub explicit: Option<(String, Secret)>,
    /// Skip the environment and config files (tests, `--no-config-auth`).
    pub only_explicit: bool,
}

/// The docker config file path: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The podman auth file path.
pub fn podman_auth_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let p = PathBuf::from(d).join("containers").join("auth.json");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/containers/auth.json"))
}

/// Normalises a config key or registry name for comparison.
pub fn normalise_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    let k = k.to_lowercase();
    let (host, rest) = match k.split_once('/') {
        Some((h, r)) => (h.to_string(), format!("/{r}")),
        None => (k.clone(), String::new()),
    };
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.into(),
        _ => host,
    };
    format!("{host}{rest}")
}

/// Keys to look for, most specific first: `host/a/b`, `host/a`, `host`.
fn candidates(r: &Reference) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = r.repository.split('/').collect();
    for n in (1..=parts.len()).rev() {
        out.push(format!("{}/{}", r.registry, parts[..n].join("/")));
    }
    out.push(r.registry.clone());
    out
}

/// The server name to hand a credential helper.
fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Finds credentials for `reference`'s registry.
pub fn lookup(reference: &Reference, opts: &CredentialOptions) -> Result<Lookup, RegistryError> {
    let mut l = Lookup::default();
    l.tried.push("--username/--password-stdin".into());
    if let Some((u, p)) = &opts.explicit {
        l.found = Some(Found {
            credential: Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            },
            source: "--username/--password-stdin".into(),
        });
        return Ok(l);
    }
    if opts.only_explicit {
        return Ok(l);
    }
    l.tried
        .push(format!("environment {ENV_USERNAME}/{ENV_PASSWORD}"));
    let env_user = std::env::var(ENV_USERNAME).ok().filter(|s| !s.is_empty());
    let env_pass = std::env::var(ENV_PASSWORD).ok().filter(|s| !s.is_empty());
    match (env_user, env_pass) {
        (Some(u), Some(p)) => {
            l.found = Some(Found {
                credential: Credential::Basic {
                    username: u,
                    password: Secret(p),
                },
                source: format!("environment {ENV_USERNAME}/{ENV_PASSWORD}"),
            });
            return Ok(l);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(RegistryError::Credentials {
                message: format!("set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither"),
            })
        }
        (None, None) => {}
    }
    if let Some(path) = docker_config_path() {
        if let Some(found) = from_config_file(&path, reference, true, &mut l.tried)? {
            l.found = Some(found);
            return Ok(l);
        }
    }
    if let Some(path) = podman_auth_path() {
        if let Some(found) = from_config_file(&path, reference, false, &mut l.tried)? {
            l.found = Some(found);
            return Ok(l);
        }
    }
    Ok(l)
}

/// The parts of config.json / auth.json we read.
#[derive(serde::Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

fn from_config_file(
    path: &Path,
    reference: &Reference,
    docker: bool,
    tried: &mut Vec<String>,
) -> Result<Option<Found>, RegistryError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tried.push(format!("{shown} (absent)"));
            return Ok(None);
        }
        Err(e) => {
            return Err(RegistryError::Credentials {
                message: format!("reading {shown}: {e}"),
            })
        }
    };
    let conf: ConfigFile = serde_json::from_str(&text).map_err(|e| RegistryError::Credentials {
        message: format!(
            "{shown} is not valid JSON: line {} column {}",
            e.line(),
            e.column()
        ),
    })?;
    tried.push(shown.clone());
    let wanted = candidates(reference);
    let registry_key = normalise_key(&reference.registry);

    if docker {
        for (k, helper) in &conf.cred_helpers {
            if normalise_key(k) == registry_key {
                return run_helper(helper, &reference.registry, tried);
            }
        }
    }
    // most specific key first
    for want in &wanted {
        for (k, entry) in &conf.auths {
            if normalise_key(k) != *want {
                continue;
            }
            if let Some(tok) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
                return Ok(Some(Found {
                    credential: Credential::IdentityToken(Secret(tok.clone())),
                    source: format!("{shown} (auths.{k}.identitytoken)"),
                }));
            }
            if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
                let (u, p) = decode_auth(auth).ok_or_else(|| RegistryError::Credentials {
                    message: format!("{shown}: auths.{k}.auth is not base64 of USER:PASSWORD"),
                })?;
                return Ok(Some(Found {
                    credential: Credential::Basic {
                        username: u,
                        password: Secret(p),
                    },
                    source: format!("{shown} (auths.{k})"),
                }));
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
                return Ok(Some(Found {
                    credential: Credential::Basic {
                        username: u.clone(),
                        password: Secret(p.clone()),
                    },
                    source: format!("{shown} (auths.{k})"),
                }));
            }
        }
    }
    if docker {
        if let Some(store) = conf.creds_store.as_ref().filter(|s| !s.is_empty()) {
            return run_helper(store, &reference.registry, tried);
        }
    }
    Ok(None)
}

fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim()))
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[derive(serde::Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME get`. A helper that is missing or has no
/// entry is noted in `tried` and gives `None`; its output is never shown.
fn run_helper(
    name: &str,
    registry: &str,
    tried: &mut Vec<String>,
) -> Result<Option<Found>, RegistryError> {
    let program = format!("docker-credential-{name}");
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => {
            tried.push(format!("{program} (not installed)"));
            return Ok(None);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(helper_server(registry).as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials {
            message: format!("running {program}: {e}"),
        })?;
    if !out.status.success() {
        tried.push(format!("{program} (no entry for {registry})"));
        return Ok(None);
    }
    let reply: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|_| RegistryError::Credentials {
            message: format!("{program} get answered something other than JSON"),
        })?;
    tried.push(program.clone());
    let credential = if reply.username == "<token>" {
        Credential::IdentityToken(Secret(reply.secret))
    } else {
        Credential::Basic {
            username: reply.username,
            password: Secret(reply.secret),
        }
    };
    Ok(Some(Found {
        credential,
        source: program,
    }))
}

/// Adds or replaces the entry for `registry` in the docker config at `path`,
/// keeping every other key, and writes it atomically (temp file + rename,
/// mode 0600).
pub fn store_in_docker_config(
    path: &Path,
    registry: &str,
    username: &str,
    password: &Secret,
) -> Result<(), RegistryError> {
    let mut doc = read_docker_config(path)?.unwrap_or_else(|| serde_json::json!({}));
    let key = helper_server(&normalise_key(registry));
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let auths = doc
        .as_object_mut()
        .expect("checked")
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let auths = auths.as_object_mut().expect("object");
    // drop other spellings of the same registry so the new entry wins
    let norm = normalise_key(registry);
    auths.retain(|k, _| normalise_key(k) != norm);
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_docker_config(path, &doc)
}

/// What [`remove_from_docker_config`] found for a registry.
#[derive(Debug, Default)]
pub struct Removed {
    /// The `auths` keys removed (every spelling of the registry).
    pub keys: Vec<String>,
    /// The credential helper `credHelpers` (or `credsStore`) names for it,
    /// which keeps its own copy: `docker logout` erases that one.
    pub helper: Option<String>,
}

/// Removes every `auths` entry for `registry` (all its spellings) from the
/// docker config at `path`, keeping every other key, as `docker logout`
/// does; the file is rewritten atomically only when something was removed.
/// A missing file removes nothing.
pub fn remove_from_docker_config(path: &Path, registry: &str) -> Result<Removed, RegistryError> {
    let Some(mut doc) = read_docker_config(path)? else {
        return Ok(Removed::default());
    };
    let norm = normalise_key(registry);
    let object = doc.as_object_mut().expect("checked");
    let helper = object
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| normalise_key(k) == norm))
        .or_else(|| object.get_key_value("credsStore"))
        .and_then(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let mut keys = Vec::new();
    if let Some(auths) = object.get_mut("auths").and_then(|a| a.as_object_mut()) {
        keys = auths
            .keys()
            .filter(|k| normalise_key(k) == norm)
            .cloned()
            .collect();
        auths.retain(|k, _| normalise_key(k) != norm);
    }
    if !keys.is_empty() {
        write_docker_config(path, &doc)?;
    }
    Ok(Removed { keys, helper })
}

/// The docker config at `path` as a JSON object, or `None` when there is
/// no file.
fn read_docker_config(path: &Path) -> Result<Option<serde_json::Value>, RegistryError> {
    let shown = path.display();
    let doc: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| RegistryError::Credentials {
            message: format!(
                "{shown} is not valid JSON: line {} column {}",
                e.line(),
                e.column()
            ),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::Credentials {
                message: format!("reading {shown}: {e}"),
            })
        }
    };
    if !doc.is_object() {
        return Err(RegistryError::Credentials {
            message: format!("{shown} is not a JSON object"),
        });
    }
    Ok(Some(doc))
}

/// Writes `doc` to `path` through a temp file beside it (mode 0600, synced,
/// renamed over the old file).
fn write_docker_config(path: &Path, doc: &serde_json::Value) -> Result<(), RegistryError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| RegistryError::Credentials {
        message: format!("writing {shown}: {e}"),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .map_err(io)?;
    let bytes = serde_json::to_vec_pretty(doc).expect("JSON value serialises");
    tmp.write_all(&bytes).map_err(io)?;
    tmp.write_all(b"\n").map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let c = Credential::Basic {
            username: "u".into(),
            password: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn keys_normalise() {
        assert_eq!(normalise_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_key("registry-1.docker.io"), "docker.io");
        assert_eq!(normalise_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalise_key("quay.io/org/repo"), "quay.io/org/repo");
    }

    #[test]
    fn config_lookup_most_specific_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &p,
            serde_json::json!({"auths": {
                "quay.io": {"auth": b64("host:pw1")},
                "quay.io/org/app": {"auth": b64("repo:pw2")},
                "https://index.docker.io/v1/": {"auth": b64("hub:pw3")},
            }})
            .to_string(),
        )
        .unwrap();
        let mut tried = vec![];
        let r = Reference::parse("quay.io/org/app:1").unwrap();
        let f = from_config_file(&p, &r, false, &mut tried)
            .unwrap()
            .unwrap();
        assert!(
            matches!(f.credential, Credential::Basic { ref username, .. } if username == "repo")
        );
        let r = Reference::parse("quay.io/other/app").unwrap();
        let f = from_config_file(&p, &r, false, &mut tried)
            .unwrap()
            .unwrap();
        assert!(
            matches!(f.credential, Credential::Basic { ref username, .. } if username == "host")
        );
        let r = Reference::parse("me/app").unwrap();
        let f = from_config_file(&p, &r, true, &mut tried).unwrap().unwrap();
        assert!(
            matches!(f.credential, Credential::Basic { ref username, .. } if username == "hub")
        );
        let r = Reference::parse("ghcr.io/me/app").unwrap();
        assert!(from_config_file(&p, &r, true, &mut tried)
            .unwrap()
            .is_none());
    }

    #[test]
    fn store_keeps_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"ghcr.io":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"}}"#,
        )
        .unwrap();
        store_in_docker_config(&p, "docker.io", "me", &Secret::new("pw")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(v["auths"]["ghcr.io"].is_object());
        assert!(v["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
    }
}
