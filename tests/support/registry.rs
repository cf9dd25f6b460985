//! A real CNCF distribution registry (`docker-registry serve`, Debian's
//! package) on 127.0.0.1 with a random free port, killed on drop:
//! without auth, with htpasswd Basic auth, with Bearer token auth (a small
//! token issuer in a thread here signs RS256 JWTs with an `x5c` header the
//! registry trusts through `rootcertbundle`), and optionally behind TLS with
//! a self-signed CA.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

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
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let (stop2, issued2) = (stop.clone(), issued.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let (target, authz) = match read_request(&mut conn) {
                    Some(x) => x,
                    None => continue,
                };
                if authz.as_deref() != Some(expected.as_str()) {
                    let body =
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Basic realm=\"token\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
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
        }
    }
}

/// Reads one request's target and Authorization header.
fn read_request(conn: &mut TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let target = first.split_whitespace().nth(1)?.to_string();
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
    Some((target, authz))
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
