//! `distroless-pack push`, `login` and `pack --push` against a real
//! registry (`docker-registry`, tests/support/registry.rs): without auth,
//! with htpasswd Basic auth, with Bearer tokens, and behind TLS with a
//! self-signed CA; results checked with skopeo and by pulling and running
//! the image. A fault-injecting HTTP proxy in front of the registry
//! (`FaultProxy`) shows what other registries do: a 404 for a repository
//! that was not created (ECR, Harbor), a refused single-PUT upload, and 201
//! where distribution answers 202 (ECR).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use distroless_pack_image::{Artifact, Blob, Image, Index, MEDIA_TYPE_LAYER_GZIP};

use crate::support::corpus;
use crate::support::registry::{
    refresh_token_for, Auth, Fault, FaultProxy, ProxyExchange, ProxyRequest, Registry,
};
use crate::util::{both, dp, require_tool, run, run_ok, tmp};

/// `distroless-pack` with an empty docker config and no podman auth file,
/// so the machine's own credentials never leak into a test.
fn dpc(home: &Path) -> Command {
    let mut c = dp();
    c.env("DOCKER_CONFIG", home.join("docker"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("HOME", home)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DISTROLESS_PACK_REGISTRY_USERNAME")
        .env_remove("DISTROLESS_PACK_REGISTRY_PASSWORD");
    c
}

/// Runs `cmd` with `stdin` as standard input.
fn run_stdin(cmd: &mut Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// An image packed into an OCI layout by [`packed_layout`].
struct Packed {
    /// The layout directory.
    layout: PathBuf,
    /// The image in it, `oci:LAYOUT:TAG`, as a push source.
    src: String,
    /// The image digest pack printed.
    digest: String,
}

/// Packs the corpus's static hello into `oci:DIR/layout:TAG` with the CLI.
fn packed_layout(dir: &Path, tag: &str) -> Packed {
    let hello = corpus::musl_static_hello();
    let layout = dir.join("layout");
    let src = format!("oci:{}:{tag}", layout.display());
    // without the SBOM and provenance `pack` attaches by default: these
    // tests count the image's own blobs and requests (tests/referrers.rs
    // pushes images with their documents)
    let out = run_ok(
        dp().arg("pack")
            .arg(&hello)
            .args(["--sbom=false", "--provenance=false"])
            .args(["--tag", &format!("hello:{tag}")])
            .arg("--output")
            .arg(&src),
    );
    let digest = out.trim().lines().last().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "pack printed {out:?}");
    Packed {
        layout,
        src,
        digest,
    }
}

/// `distroless-pack push ARGS...` with the private credentials of `home`
/// (see [`dpc`]).
fn push(home: &Path, args: &[&str]) -> Output {
    run(dpc(home).arg("push").args(args))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(out)))
}

fn count(report: &serde_json::Value, target: usize, key: &str) -> u64 {
    report["targets"][target][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {report:#}"))
}

#[test]
fn push_mount_repush_and_multi_tag_on_a_plain_registry() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed {
        src,
        digest,
        layout,
    } = packed_layout(t.path(), "v1");

    // first push: everything uploaded; plain output is NAME@sha256:...
    let out = push(t.path(), &[&src, &reg.reference("app:v1")]);
    assert!(out.status.success(), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), format!("{}@{digest}", reg.reference("app")));
    let inspected = reg.inspect(&reg.reference("app:v1"));
    assert_eq!(inspected["Digest"], digest.as_str());
    let uploads_after_first = reg.uploads_in_log();
    assert!(
        uploads_after_first >= 2,
        "config and layer uploaded:\n{}",
        reg.log_text()
    );

    // re-push and a second repository in one run: zero uploads, mounts
    let out = push(
        t.path(),
        &[
            "--json",
            &src,
            &reg.reference("app:v1"),
            &reg.reference("other/app:v1"),
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let r = json(&out);
    assert_eq!(r["digest"], digest.as_str());
    assert_eq!(count(&r, 0, "uploaded"), 0, "{r:#}");
    assert!(count(&r, 0, "skipped") >= 2, "{r:#}");
    assert_eq!(count(&r, 1, "uploaded"), 0, "{r:#}");
    assert_eq!(count(&r, 1, "mounted"), count(&r, 0, "skipped"), "{r:#}");
    assert_eq!(r["targets"][1]["blobs"][0]["from"], "app");
    assert_eq!(
        r["targets"][1]["pushed"],
        format!("{}@{digest}", reg.reference("other/app"))
    );
    assert_eq!(
        reg.uploads_in_log(),
        uploads_after_first,
        "re-push uploaded something"
    );
    assert!(
        reg.log_text().contains("mount="),
        "no mount request in the registry log"
    );
    assert_eq!(
        reg.inspect(&reg.reference("other/app:v1"))["Digest"],
        digest.as_str()
    );

    // several tags of one repository: one line on stdout, both tags there,
    // each blob uploaded once for both
    let out = push(
        t.path(),
        &[&src, &reg.reference("multi:a"), &reg.reference("multi:b")],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}@{digest}", reg.reference("multi"))
    );
    let tags = reg.inspect(&reg.reference("multi:a"))["RepoTags"].clone();
    let tags: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(tags.contains(&"a") && tags.contains(&"b"), "{tags:?}");
    assert_eq!(
        reg.uploads_in_log(),
        2 * uploads_after_first,
        "{}",
        reg.log_text()
    );

    // a bare path to the layout is the same source (as for `inspect`)
    let out = push(
        t.path(),
        &[layout.to_str().unwrap(), &reg.reference("bare:v1")],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}@{digest}", reg.reference("bare"))
    );
}

#[test]
fn push_is_byte_identical_to_skopeo_copy_and_chunked_works() {
    require_tool("skopeo", "apt-get install -y skopeo");
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(&src)
            .arg(format!("docker://{}", reg.reference("by-skopeo:v1"))),
    );
    run_ok(
        dpc(t.path())
            .arg("push")
            .arg(&src)
            .arg(reg.reference("by-dp:v1")),
    );
    let ours = reg.raw_manifest(&reg.reference("by-dp:v1"));
    let theirs = reg.raw_manifest(&reg.reference("by-skopeo:v1"));
    assert_eq!(ours, theirs, "manifests differ");
    assert_eq!(
        reg.inspect(&reg.reference("by-dp:v1"))["Digest"],
        digest.as_str()
    );
    assert_eq!(
        reg.inspect(&reg.reference("by-skopeo:v1"))["Digest"],
        digest.as_str()
    );

    // forced chunked upload into a fresh registry gives the same digest
    let reg2 = Registry::start(Auth::None);
    let out = push(
        t.path(),
        &["--chunked", "--json", &src, &reg2.reference("chunked:v1")],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(count(&json(&out), 0, "uploaded") >= 2);
    assert!(
        reg2.log_text()
            .contains("\"PATCH /v2/chunked/blobs/uploads/"),
        "no PATCH:\n{}",
        reg2.log_text()
    );
    assert_eq!(reg2.raw_manifest(&reg2.reference("chunked:v1")), ours);

    // an OCI archive of the same image pushes the same digest
    let archive = t.path().join("img.tar");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(&src)
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let out = push(
        t.path(),
        &[
            &format!("oci-archive:{}", archive.display()),
            &reg2.reference("from-archive:v1"),
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}@{digest}", reg2.reference("from-archive"))
    );
}

#[test]
fn basic_auth_credentials_login_and_wrong_password() {
    let t = tmp();
    let reg = Registry::start(Auth::Basic {
        user: "alice".into(),
        pass: "s3cret-pw".into(),
    });
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");

    // no credentials anywhere: exit 5, says where it looked and how to log in
    let out = push(t.path(), &[&src, &reg.reference("app:v1")]);
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no credentials were found"), "{err}");
    assert!(
        err.contains("DISTROLESS_PACK_REGISTRY_USERNAME") && err.contains("login"),
        "{err}"
    );
    assert!(err.contains("config.json"), "{err}");

    // wrong password on stdin: exit 5, the source named, the password never shown
    let wrong = "Wr0ng-PaSsWoRd-123";
    let out = run_stdin(
        dpc(t.path())
            .args(["push", "--username", "alice", "--password-stdin"])
            .arg(&src)
            .arg(reg.reference("app:v1")),
        &format!("{wrong}\n"),
    );
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    let all = both(&out);
    assert!(!all.contains(wrong), "password printed: {all}");
    assert!(all.contains("--username/--password-stdin"), "{all}");
    assert!(all.contains("authentication failed"), "{all}");

    // right password from the environment
    let out = run(dpc(t.path())
        .env("DISTROLESS_PACK_REGISTRY_USERNAME", "alice")
        .env("DISTROLESS_PACK_REGISTRY_PASSWORD", "s3cret-pw")
        .arg("push")
        .arg(&src)
        .arg(reg.reference("app:v1")));
    assert!(out.status.success(), "{}", both(&out));
    assert!(!both(&out).contains("s3cret-pw"));

    // login: a wrong password is refused and nothing is stored
    let out = run_stdin(
        dpc(t.path()).args(["login", &reg.host, "-u", "alice", "--password-stdin"]),
        wrong,
    );
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    assert!(!both(&out).contains(wrong));
    let config = t.path().join("docker/config.json");
    assert!(!config.exists());
    // login keeps other entries, then push uses the stored credentials
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        r#"{"auths":{"ghcr.io":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"}}"#,
    )
    .unwrap();
    let out = run_stdin(
        dpc(t.path()).args(["login", &reg.host, "-u", "alice", "--password-stdin"]),
        "s3cret-pw\n",
    );
    assert!(out.status.success(), "{}", both(&out));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(stored["auths"]["ghcr.io"]["auth"], "eDp5");
    assert_eq!(stored["credHelpers"]["gcr.io"], "gcloud");
    assert!(stored["auths"][&reg.host]["auth"].is_string(), "{stored:#}");
    let out = push(t.path(), &[&src, &reg.reference("via-config:v1")]);
    assert!(out.status.success(), "{}", both(&out));
    let mut skopeo = Command::new("skopeo");
    skopeo.args(["inspect", "--tls-verify=false", "--creds=alice:s3cret-pw"]);
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        skopeo.arg(format!("docker://{}", reg.reference("via-config:v1"))),
    ))
    .unwrap();
    assert_eq!(v["Digest"], digest.as_str());

    // logout takes the entry out again (every spelling of the registry),
    // keeps the others and the file's mode, and push is anonymous again
    let mut stored = stored;
    stored["auths"][format!("http://{}/v1/", reg.host)] = stored["auths"][&reg.host].clone();
    std::fs::write(&config, stored.to_string()).unwrap();
    let out = run(dpc(t.path()).args(["logout", &reg.host]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Removed the credentials"),
        "{}",
        both(&out)
    );
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(
        after["auths"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["ghcr.io"],
        "{after:#}"
    );
    assert_eq!(after["credHelpers"]["gcr.io"], "gcloud");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let out = push(t.path(), &[&src, &reg.reference("via-config:v2")]);
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    // not logged in: said, not an error, the file untouched
    let before = std::fs::read(&config).unwrap();
    let out = run(dpc(t.path()).args(["logout", &reg.host]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Not logged in"),
        "{}",
        both(&out)
    );
    assert_eq!(std::fs::read(&config).unwrap(), before);
    // a helper that keeps its own copy is named
    let out = run(dpc(t.path()).args(["logout", "gcr.io"]));
    assert!(
        out.status.success() && both(&out).contains("docker-credential-gcloud"),
        "{}",
        both(&out)
    );
    // a config that is not JSON is named and left as it was
    std::fs::write(&config, "{not json").unwrap();
    let out = run(dpc(t.path()).args(["logout", "ghcr.io"]));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    assert!(both(&out).contains("is not valid JSON"), "{}", both(&out));
    assert_eq!(std::fs::read(&config).unwrap(), b"{not json");
    let out = run(dpc(t.path()).args(["logout", "ghcr.io/acme"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));

    // podman's auth.json is read too
    let t2 = tmp();
    let auth = base64_encode("alice:s3cret-pw");
    std::fs::write(
        t2.path().join("auth.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let out = push(t2.path(), &[&src, &reg.reference("via-podman:v1")]);
    assert!(out.status.success(), "{}", both(&out));
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn bearer_token_auth() {
    let t = tmp();
    let reg = Registry::start(Auth::Token {
        user: "bob".into(),
        pass: "tok-pass".into(),
    });
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    let out = run_stdin(
        dpc(t.path())
            .args(["push", "--json", "-u", "bob", "--password-stdin"])
            .arg(&src)
            .arg(reg.reference("team/app:v1"))
            .arg(reg.reference("team/mirror:v1")),
        "tok-pass",
    );
    assert!(
        out.status.success(),
        "{}\nregistry log:\n{}",
        both(&out),
        reg.log_text()
    );
    let r = json(&out);
    assert!(count(&r, 0, "uploaded") >= 2, "{r:#}");
    assert_eq!(
        count(&r, 1, "mounted"),
        count(&r, 0, "uploaded"),
        "mount across repos with a token: {r:#}"
    );
    assert!(reg.tokens_issued() >= 1);
    assert_eq!(
        reg.inspect(&reg.reference("team/app:v1"))["Digest"],
        digest.as_str()
    );
    assert_eq!(
        reg.inspect(&reg.reference("team/mirror:v1"))["Digest"],
        digest.as_str()
    );

    let out = run_stdin(
        dpc(t.path())
            .args(["push", "-u", "bob", "--password-stdin"])
            .arg(&src)
            .arg(reg.reference("team/app:v2")),
        "not-the-password",
    );
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    assert!(!both(&out).contains("not-the-password"));
    assert!(both(&out).contains("token request"), "{}", both(&out));

    // login checks the password at the token endpoint
    let out = run_stdin(
        dpc(t.path()).args(["login", &reg.host, "-u", "bob", "--password-stdin"]),
        "nope",
    );
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    let out = run_stdin(
        dpc(t.path()).args(["login", &reg.host, "-u", "bob", "--password-stdin"]),
        "tok-pass",
    );
    assert!(out.status.success(), "{}", both(&out));
    let out = push(t.path(), &[&src, &reg.reference("team/app:v3")]);
    assert!(
        out.status.success(),
        "push with the stored login: {}",
        both(&out)
    );
}

/// A token the registry stops taking in the middle of a push (one that
/// expired during the upload): the streamed upload's 401 gets a new token
/// and the whole body is sent again, to the same upload.
/// A docker config `identitytoken` (what `az acr login` and docker's own
/// OAuth logins store) or a credential helper's `<token>` user is an OAuth2
/// refresh token: it is exchanged at the token realm by a POST with
/// grant_type=refresh_token, never sent as a password, and never shown.
#[test]
fn an_identity_token_is_exchanged_by_the_oauth2_refresh_grant_and_never_shown() {
    let t = tmp();
    let reg = Registry::start(Auth::Token {
        user: "bob".into(),
        pass: "tok-pass".into(),
    });
    let refresh = refresh_token_for("tok-pass");
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    let config = t.path().join("docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let write_config = |json: serde_json::Value| {
        std::fs::write(&config, json.to_string()).unwrap();
    };

    // from the config file's auths
    write_config(serde_json::json!({"auths": {reg.host.as_str(): {"identitytoken": refresh}}}));
    let out = push(t.path(), &[&src, &reg.reference("acr/app:v1")]);
    assert!(
        out.status.success(),
        "{}\nregistry log:\n{}",
        both(&out),
        reg.log_text()
    );
    assert!(reg.tokens_refreshed() >= 1, "no refresh-token exchange");
    assert_eq!(reg.tokens_refreshed(), reg.tokens_issued());
    assert_eq!(
        reg.inspect(&reg.reference("acr/app:v1"))["Digest"],
        digest.as_str()
    );
    assert!(!both(&out).contains(&refresh), "{}", both(&out));

    // from a credential helper that answers the `<token>` user
    let helpers = t.path().join("bin");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-oauth");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread host\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"{refresh}\"}}' \"$host\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    write_config(serde_json::json!({"credHelpers": {reg.host.as_str(): "oauth"}}));
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    let before = reg.tokens_refreshed();
    let out = run(dpc(t.path())
        .env("PATH", &path)
        .arg("push")
        .arg(&src)
        .arg(reg.reference("acr/app:v2")));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        reg.tokens_refreshed() > before,
        "the helper's token was not exchanged"
    );
    assert!(!both(&out).contains(&refresh), "{}", both(&out));

    // a refresh token the issuer refuses: exit 5, naming where it came from,
    // not what it is
    write_config(
        serde_json::json!({"auths": {reg.host.as_str(): {"identitytoken": "revoked-refresh-token"}}}),
    );
    let out = push(t.path(), &[&src, &reg.reference("acr/app:v3")]);
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    let shown = both(&out);
    assert!(!shown.contains("revoked-refresh-token"), "{shown}");
    assert!(
        shown.contains("identitytoken") && shown.contains("may have expired or been revoked"),
        "{shown}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1,
        "{shown}"
    );
}

#[test]
fn a_token_refused_during_a_blob_upload_is_renewed_and_the_whole_body_sent_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let t = tmp();
    let reg = Registry::start(Auth::Token {
        user: "bob".into(),
        pass: "tok-pass".into(),
    });
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    let refused = Arc::new(AtomicBool::new(false));
    let once = refused.clone();
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        let upload = r.method == "PUT" && r.path().contains("/blobs/uploads/");
        if upload && r.body.len() > 1024 && !once.swap(true, Ordering::SeqCst) {
            Fault::ForwardWithoutAuth
        } else {
            Fault::Forward
        }
    });
    let out = run_stdin(
        dpc(t.path())
            .args(["push", "-u", "bob", "--password-stdin"])
            .arg(&src)
            .arg(proxy.reference("team/app:v1")),
        "tok-pass",
    );
    assert!(
        out.status.success(),
        "{}\nproxy:\n{}",
        both(&out),
        proxy.log_text()
    );
    assert!(!both(&out).contains("tok-pass"));
    let log = proxy.exchanges();
    let first = log
        .iter()
        .find(|x| matches!(x.fault, Fault::ForwardWithoutAuth))
        .unwrap_or_else(|| panic!("no upload was refused:\n{}", proxy.log_text()));
    assert_eq!(first.status, 401, "{}", proxy.log_text());
    let again: Vec<&ProxyExchange> = log
        .iter()
        .filter(|x| x.method == "PUT" && x.target == first.target && x.status == 201)
        .collect();
    assert_eq!(again.len(), 1, "{}", proxy.log_text());
    assert!(again[0].authorized, "{}", proxy.log_text());
    assert_eq!(
        again[0].body_len,
        first.body_len,
        "the whole body again:\n{}",
        proxy.log_text()
    );
    assert!(reg.tokens_issued() >= 2, "a new token was asked for");
    assert_eq!(
        reg.inspect(&reg.reference("team/app:v1"))["Digest"],
        digest.as_str()
    );
}

#[test]
fn tls_with_a_private_ca() {
    let t = tmp();
    let reg = Registry::start_tls(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // without the CA: a certificate error, exit 4, no fallback to plain HTTP
    let out = push(t.path(), &[&src, &reg.reference("app:v1")]);
    assert_eq!(out.status.code(), Some(4), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        both(&out)
    );
    // with --ca-file
    let out = run(dpc(t.path())
        .arg("push")
        .arg("--ca-file")
        .arg(reg.ca.as_ref().unwrap())
        .arg(&src)
        .arg(reg.reference("app:v1")));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        reg.inspect(&reg.reference("app:v1"))["Digest"],
        digest.as_str()
    );
}

#[test]
fn pack_push_and_digest_file() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let hello = corpus::musl_static_hello();
    let digest_file = t.path().join("out/digest");
    std::fs::create_dir_all(digest_file.parent().unwrap()).unwrap();
    let out = run(dpc(t.path())
        .arg("pack")
        .arg(&hello)
        .args(["--tag", "hello:v1", "--push"])
        .arg(reg.reference("packed:v1"))
        .arg("--push")
        .arg(reg.reference("packed:latest"))
        .arg("--digest-file")
        .arg(&digest_file));
    assert!(out.status.success(), "{}", both(&out));
    let digest = std::fs::read_to_string(&digest_file).unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest:?}"
    );
    assert_eq!(
        reg.inspect(&reg.reference("packed:v1"))["Digest"],
        digest.as_str()
    );
    assert_eq!(
        reg.inspect(&reg.reference("packed:latest"))["Digest"],
        digest.as_str()
    );
}

/// A tiny image for `arch` holding one file, built with crates/image.
pub(crate) fn tiny_image(dir: &Path, arch: &str) -> Image {
    let root = dir.join(format!("root-{arch}"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("arch.txt"), arch).unwrap();
    let tgz = dir.join(format!("layer-{arch}.tar.gz"));
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "tar --sort=name --mtime=@0 --owner=0 --group=0 -C {} -c arch.txt | gzip -n > {}",
        root.display(),
        tgz.display()
    )));
    let layer = Blob::from_bytes(MEDIA_TYPE_LAYER_GZIP, std::fs::read(&tgz).unwrap());
    let diff_id = {
        use sha2::Digest as _;
        let tar = run(Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc {}", tgz.display())))
        .stdout;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)))
    };
    let config: distroless_pack_image::spec::ImageConfiguration =
        serde_json::from_value(serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Entrypoint": ["/arch.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
    Image::new(&config, vec![layer], &Default::default()).unwrap()
}

#[test]
fn multi_platform_index_push() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let index = Index::new(
        vec![tiny_image(t.path(), "amd64"), tiny_image(t.path(), "arm64")],
        &Default::default(),
    )
    .unwrap();
    let layout = t.path().join("multi");
    let sink: distroless_pack_ship::Sink = format!("oci:{}:v1", layout.display()).parse().unwrap();
    let artifact = Artifact::Index(index.clone());
    distroless_pack_ship::write_sink(&artifact, &sink, &Default::default()).unwrap();
    let out = push(
        t.path(),
        &["--json", &sink.to_string(), &reg.reference("multi:v1")],
    );
    assert!(out.status.success(), "{}", both(&out));
    let r = json(&out);
    assert_eq!(r["digest"], index.digest().as_str());
    assert_eq!(r["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        count(&r, 0, "uploaded"),
        4,
        "two configs and two layers: {r:#}"
    );
    let raw = reg.raw_manifest(&reg.reference("multi:v1"));
    assert_eq!(raw, index.index.read_all().unwrap());
    for (arch, img) in [("amd64", &index.images[0]), ("arm64", &index.images[1])] {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--override-os=linux"])
            .arg(format!("--override-arch={arch}"))
            .arg(format!("docker://{}", reg.reference("multi:v1"))));
        assert!(out.status.success(), "{}", both(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], index.digest().as_str(), "{arch}");
        assert_eq!(v["Architecture"], arch);
        assert_eq!(v["Layers"][0], img.layers[0].digest.as_str(), "{arch}");
        // the per-platform manifest is stored by digest
        assert_eq!(
            reg.raw_manifest(&format!("{}@{}", reg.reference("multi"), img.digest())),
            img.manifest.read_all().unwrap()
        );
    }
}

#[test]
fn pushed_image_pulls_and_runs_in_docker_and_podman() {
    use crate::support::engines;
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    let out = push(t.path(), &[&src, &reg.reference("runme:v1")]);
    assert!(out.status.success(), "{}", both(&out));
    let pushed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(pushed, format!("{}@{digest}", reg.reference("runme")));

    // podman: pull by digest over plain HTTP, run
    let podman = engines::podman();
    podman.run_ok(&["pull", "--quiet", "--tls-verify=false", &pushed]);
    let ran = podman.run_ok(&["run", "--rm", "--network=none", "--pull=never", &pushed]);
    assert!(ran.contains(corpus::HELLO), "podman run printed {ran:?}");
    podman.remove_image(&pushed);

    // docker: 127.0.0.1 registries are insecure by default; pull by tag
    let docker = engines::docker();
    let tagged = reg.reference("runme:v1");
    docker.run_ok(&["pull", "--quiet", &tagged]);
    let ran = docker.run_ok(&["run", "--rm", "--network=none", &tagged]);
    assert!(ran.contains(corpus::HELLO), "docker run printed {ran:?}");
    let repo_digests = docker.run_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &tagged,
    ]);
    assert!(repo_digests.contains(&digest), "{repo_digests}");
    docker.remove_image(&tagged);
}

/// A TCP proxy in front of `target` that closes the connections numbered in
/// `drop` (1-based) after reading the start of their first request, and
/// pipes every other connection through. Returns its address and the count
/// of connections it dropped.
fn dropping_proxy(
    target: String,
    drop: Vec<usize>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Read;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dropped = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            if drop.contains(&(n + 1)) {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 16];
                let _ = conn.read(&mut buf);
                let _ = conn.shutdown(Shutdown::Both);
                counter.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let Ok(up) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut c2, mut u2) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut c1, mut u1) = (conn, up);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut u1);
                let _ = u1.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, dropped)
}

#[test]
fn dropped_connections_are_retried() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // connection 1 is the /v2/ probe; the next new connections (opened by
    // parallel blob requests, and by their retries) are dropped mid-request
    let (proxy, dropped) = dropping_proxy(reg.host.clone(), vec![2, 3, 4]);
    let out = push(t.path(), &["--json", &src, &format!("{proxy}/flaky:v1")]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(count(&json(&out), 0, "uploaded") >= 2);
    let n = dropped.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n >= 1, "nothing was dropped");
    assert_eq!(
        reg.inspect(&reg.reference("flaky:v1"))["Digest"],
        digest.as_str()
    );
}

/// `POST /v2/REPO/blobs/uploads/` (an upload start, or a mount with
/// `?mount=&from=`).
fn is_upload_start(method: &str, target: &str) -> bool {
    method == "POST"
        && target
            .split('?')
            .next()
            .unwrap_or("")
            .ends_with("/blobs/uploads/")
}

fn is_mount(target: &str) -> bool {
    target.contains("mount=")
}

/// The digest of every blob in a `--json` report's first target.
fn blob_digests(report: &serde_json::Value) -> Vec<String> {
    report["targets"][0]["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no blobs in {report:#}"))
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Whether `x` is a `PUT` finishing an upload of `digest` (`?digest=` is
/// URL-encoded, so only the hex part is compared).
fn is_put_of(x: &ProxyExchange, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    x.method == "PUT"
        && x.target.contains("/blobs/uploads/")
        && x.target.contains("digest=")
        && x.target.contains(hex)
}

#[test]
fn missing_repository_404_on_upload_start_is_one_line_and_names_it() {
    let t = tmp();
    let (user, pass) = ("alice", "s3cret-pw");
    let reg = Registry::start(Auth::Basic {
        user: user.into(),
        pass: pass.into(),
    });
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // like ECR or Harbor for a repository nobody created: uploads into
    // `missing/app` are refused with 404 NAME_UNKNOWN; the rest passes
    let proxy = FaultProxy::start(&reg.host, |r: &ProxyRequest| {
        if is_upload_start(&r.method, &r.target) && r.path().starts_with("/v2/missing/app/") {
            Fault::Answer {
                status: 404,
                body: r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.into(),
            }
        } else {
            Fault::Forward
        }
    });
    let with_creds = |c: &mut Command| {
        c.env("DISTROLESS_PACK_REGISTRY_USERNAME", user)
            .env("DISTROLESS_PACK_REGISTRY_PASSWORD", pass);
    };

    // the proxy itself is transparent (and passes auth on)
    let mut ok = dpc(t.path());
    with_creds(&mut ok);
    let out = run(ok
        .arg("push")
        .arg(&src)
        .arg(proxy.reference("present/app:v1")));
    assert!(
        out.status.success(),
        "{}\nproxy:\n{}",
        both(&out),
        proxy.log_text()
    );
    assert_eq!(
        reg.inspect(&reg.reference("present/app:v1"))["Digest"],
        digest.as_str()
    );

    for json_flag in [false, true] {
        let mut cmd = dpc(t.path());
        with_creds(&mut cmd);
        cmd.arg("push");
        if json_flag {
            cmd.arg("--json");
        }
        let out = run(cmd.arg(&src).arg(proxy.reference("missing/app:v1")));
        let all = both(&out);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{all}\nproxy:\n{}",
            proxy.log_text()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("distroless-pack: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "one error line: {all}");
        let err = errors[0];
        if json_flag {
            // no progress with --json: the error is all there is
            assert_eq!(stderr.trim_end(), err, "{all}");
            assert!(out.stdout.is_empty(), "{all}");
        }
        assert!(
            err.contains("repository missing/app not found"),
            "says the repository does not exist and names it: {err}"
        );
        assert!(err.contains("HTTP 404"), "{err}");
        assert!(err.contains("create the repository"), "{err}");
        assert!(err.contains(&proxy.host), "names the registry: {err}");
        assert!(!all.contains(pass), "password printed: {all}");
        assert!(
            !all.contains(&base64_encode(&format!("{user}:{pass}"))),
            "Basic credentials printed: {all}"
        );
    }

    let log = proxy.exchanges();
    let starts: Vec<&ProxyExchange> = log
        .iter()
        .filter(|x| {
            x.target.starts_with("/v2/missing/app/") && is_upload_start(&x.method, &x.target)
        })
        .collect();
    assert!(!starts.is_empty(), "no upload start:\n{}", proxy.log_text());
    // credentials were really in play, and a 404 is not retried: at most
    // one POST per blob (2) in each of the 2 runs
    assert!(starts.iter().all(|x| x.authorized && x.status == 404));
    assert!(starts.len() <= 4, "404 retried:\n{}", proxy.log_text());
    // nothing else was sent to the missing repository: no upload, no manifest
    assert!(
        !log.iter().any(|x| x.target.starts_with("/v2/missing/app/")
            && (x.method == "PUT" || x.method == "PATCH")),
        "{}",
        proxy.log_text()
    );
    assert!(!reg.log_text().contains("/v2/missing/app/manifests/"));
}

#[test]
fn refused_single_put_falls_back_to_chunked_patches() {
    require_tool("skopeo", "apt-get install -y skopeo");
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed {
        layout,
        src,
        digest,
    } = packed_layout(t.path(), "v1");
    // a gateway with a small body limit (413), and registries refusing a
    // PUT with a body that no PATCH started (400, 416): every monolithic
    // upload is answered here, never reaching the registry
    for (status, body) in [
        (413, ""),
        (
            416,
            r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"requested range not satisfiable"}]}"#,
        ),
        (
            400,
            r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"monolithic upload not supported"}]}"#,
        ),
    ] {
        let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
            if r.method == "PUT"
                && r.path().contains("/blobs/uploads/")
                && r.query().contains("digest=")
                && !r.body.is_empty()
            {
                Fault::Answer {
                    status,
                    body: body.into(),
                }
            } else {
                Fault::Forward
            }
        });
        let repo = format!("refused-{status}/app");
        let out = push(
            t.path(),
            &["--json", &src, &proxy.reference(&format!("{repo}:v1"))],
        );
        assert!(
            out.status.success(),
            "HTTP {status}: {}\nproxy:\n{}",
            both(&out),
            proxy.log_text()
        );
        let r = json(&out);
        assert_eq!(r["digest"], digest.as_str());
        let blobs = blob_digests(&r);
        assert!(blobs.len() >= 2, "{r:#}");
        assert_eq!(count(&r, 0, "uploaded"), blobs.len() as u64, "{r:#}");

        // the report has no upload-mode field: the proxy's log shows the
        // path taken. Per blob: one refused single PUT (not retried as
        // such), then PATCHes and a closing PUT with no body.
        let log = proxy.exchanges();
        let ctx = format!("HTTP {status}, proxy log:\n{}", proxy.log_text());
        for b in &blobs {
            let puts: Vec<&ProxyExchange> = log.iter().filter(|x| is_put_of(x, b)).collect();
            let refused = puts.iter().filter(|x| x.body_len > 0).count();
            assert_eq!(refused, 1, "{b}: {ctx}");
            assert!(
                puts.iter()
                    .filter(|x| x.body_len > 0)
                    .all(|x| x.status == status),
                "{ctx}"
            );
            let closing: Vec<_> = puts.iter().filter(|x| x.body_len == 0).collect();
            assert_eq!(closing.len(), 1, "{b}: {ctx}");
            assert_eq!(closing[0].status, 201, "{ctx}");
        }
        let patches: Vec<&ProxyExchange> = log
            .iter()
            .filter(|x| {
                x.method == "PATCH" && x.target.starts_with(&format!("/v2/{repo}/blobs/uploads/"))
            })
            .collect();
        assert!(patches.len() >= blobs.len(), "{ctx}");
        assert!(
            patches.iter().all(|x| x.status == 202 && x.body_len > 0),
            "{ctx}"
        );
        let sent: usize = patches.iter().map(|x| x.body_len).sum();
        assert_eq!(
            sent as u64,
            r["targets"][0]["bytesUploaded"].as_u64().unwrap(),
            "every byte went in a PATCH: {ctx}"
        );
        assert!(
            reg.log_text()
                .contains(&format!("\"PATCH /v2/{repo}/blobs/uploads/")),
            "no PATCH reached the registry:\n{}",
            reg.log_text()
        );

        // the image is right: the digest pack printed, and every blob reads
        // back with its digest (skopeo copy verifies them)
        assert_eq!(
            reg.inspect(&reg.reference(&format!("{repo}:v1")))["Digest"],
            digest.as_str()
        );
        let pulled = t.path().join(format!("pulled-{status}"));
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--src-tls-verify=false"])
                .arg(format!("docker://{}", reg.reference(&format!("{repo}:v1"))))
                .arg(format!("oci:{}:v1", pulled.display())),
        );
        for b in &blobs {
            let hex = b.trim_start_matches("sha256:");
            let theirs = std::fs::read(pulled.join("blobs/sha256").join(hex)).unwrap();
            let ours = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
            assert!(theirs == ours, "blob {b} differs after the chunked upload");
        }
    }
}

#[test]
fn upload_start_answered_201_instead_of_202() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // `push --json` to PREFIX/app:v1 and PREFIX/mirror:v1 through `proxy`,
    // asserting success; returns the report
    let push_app_and_mirror = |proxy: &FaultProxy, prefix: &str| {
        let out = push(
            t.path(),
            &[
                "--json",
                &src,
                &proxy.reference(&format!("{prefix}/app:v1")),
                &proxy.reference(&format!("{prefix}/mirror:v1")),
            ],
        );
        assert!(
            out.status.success(),
            "{}\nproxy:\n{}",
            both(&out),
            proxy.log_text()
        );
        json(&out)
    };

    // ECR answers 201 Created where distribution answers 202 Accepted to an
    // upload start; a real mount (201 from the registry) stays a mount
    let proxy = FaultProxy::start(&reg.host, |r: &ProxyRequest| {
        if is_upload_start(&r.method, &r.target) {
            Fault::Restatus {
                target: None,
                from: 202,
                to: 201,
            }
        } else {
            Fault::Forward
        }
    });
    let r = push_app_and_mirror(&proxy, "ecr");
    let n = blob_digests(&r).len() as u64;
    assert!(n >= 2, "{r:#}");
    assert_eq!(count(&r, 0, "uploaded"), n, "{r:#}");
    assert_eq!(count(&r, 1, "mounted"), n, "{r:#}");
    let starts: Vec<ProxyExchange> = proxy
        .exchanges()
        .into_iter()
        .filter(|x| is_upload_start(&x.method, &x.target) && !is_mount(&x.target))
        .collect();
    assert_eq!(starts.len() as u64, n, "{}", proxy.log_text());
    assert!(
        starts.iter().all(|x| x.status == 201),
        "every upload start answered 201:\n{}",
        proxy.log_text()
    );
    for repo in ["ecr/app:v1", "ecr/mirror:v1"] {
        assert_eq!(reg.inspect(&reg.reference(repo))["Digest"], digest.as_str());
    }

    // a registry that ignores `mount` and opens an upload with 201 (and an
    // upload Location): the blob must be uploaded, not taken as mounted
    let proxy = FaultProxy::start(&reg.host, |r: &ProxyRequest| {
        if is_upload_start(&r.method, &r.target) {
            Fault::Restatus {
                target: Some(r.path().to_string()),
                from: 202,
                to: 201,
            }
        } else {
            Fault::Forward
        }
    });
    let r = push_app_and_mirror(&proxy, "nomount");
    assert_eq!(count(&r, 0, "uploaded"), n, "{r:#}");
    assert_eq!(count(&r, 1, "mounted"), 0, "{r:#}");
    assert_eq!(count(&r, 1, "uploaded"), n, "{r:#}");
    let log = proxy.exchanges();
    let mounts = log
        .iter()
        .filter(|x| is_upload_start(&x.method, &x.target) && is_mount(&x.target))
        .count() as u64;
    assert_eq!(
        mounts,
        n,
        "a mount was asked for each blob:\n{}",
        proxy.log_text()
    );
    assert!(
        log.iter()
            .filter(|x| is_upload_start(&x.method, &x.target))
            .all(|x| x.status == 201),
        "{}",
        proxy.log_text()
    );
    for repo in ["nomount/app:v1", "nomount/mirror:v1"] {
        assert_eq!(reg.inspect(&reg.reference(repo))["Digest"], digest.as_str());
    }
}

/// Flips one byte in the middle of `file` (same size).
pub(crate) fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x55;
    std::fs::write(file, bytes).unwrap();
}

/// The first layer's digest of the image in `layout`, from its only manifest.
pub(crate) fn first_layer(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(m)).unwrap()).unwrap();
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The status the registry at `host` answers to `HEAD path` (its API, not
/// through distroless-pack).
fn head_status(host: &str, path: &str) -> u16 {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(host).unwrap();
    write!(
        c,
        "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_layer_with_one_flipped_byte_is_never_uploaded() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { layout, src, .. } = packed_layout(t.path(), "v1");
    let layer = first_layer(&layout);
    let file = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    flip_a_byte(&file);
    let out = push(t.path(), &[&src, &reg.reference("corrupt/app:v1")]);
    let all = both(&out);
    assert_eq!(out.status.code(), Some(2), "bad input: {all}");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("distroless-pack: error:"))
        .unwrap_or_else(|| panic!("no error line: {all}"));
    assert!(
        line.contains(file.to_str().unwrap()),
        "names the file: {line}"
    );
    assert!(line.contains(&layer), "names the expected digest: {line}");
    assert!(line.contains("does not match its digest"), "{line}");
    assert_eq!(
        line.matches("sha256:").count(),
        2,
        "expected and actual: {line}"
    );
    assert!(!line.contains("DIGEST_INVALID"), "{line}");
    // the registry's API: the blob is not there, no upload finished, no manifest
    assert_eq!(
        head_status(&reg.host, &format!("/v2/corrupt/app/blobs/{layer}")),
        404
    );
    let hex = layer.trim_start_matches("sha256:");
    assert!(
        !reg.log_text()
            .lines()
            .any(|l| (l.contains("\"PUT ") || l.contains("\"PATCH ")) && l.contains(hex)),
        "the layer was sent: {}",
        reg.log_text()
    );
    assert!(!reg.log_text().contains("/v2/corrupt/app/manifests/"));
}

#[test]
fn a_head_that_lies_about_a_blob_is_healed_by_uploading_it_and_retrying_the_manifest() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // the registry answers HEAD 200 for every blob of liar/app, having none
    let proxy = FaultProxy::start(&reg.host, |r: &ProxyRequest| {
        if r.method == "HEAD" && r.path().starts_with("/v2/liar/app/blobs/") {
            Fault::Answer {
                status: 200,
                body: String::new(),
            }
        } else {
            Fault::Forward
        }
    });
    let out = push(t.path(), &["--json", &src, &proxy.reference("liar/app:v1")]);
    let ctx = format!("{}\nproxy:\n{}", both(&out), proxy.log_text());
    assert!(out.status.success(), "{ctx}");
    let r = json(&out);
    let n = blob_digests(&r).len() as u64;
    assert!(n >= 2, "{r:#}");
    assert_eq!(
        count(&r, 0, "uploaded"),
        n,
        "the report says what went up: {r:#}"
    );
    let log = proxy.exchanges();
    let manifests: Vec<&ProxyExchange> = log
        .iter()
        .filter(|x| x.method == "PUT" && x.target.starts_with("/v2/liar/app/manifests/"))
        .collect();
    assert_eq!(manifests.len(), 2, "one refused, one retried: {ctx}");
    assert_eq!(manifests[0].status, 400, "{ctx}");
    assert_eq!(manifests[1].status, 201, "{ctx}");
    for b in blob_digests(&r) {
        assert!(
            log.iter().any(|x| is_put_of(x, &b) && x.status == 201),
            "{b}: {ctx}"
        );
    }
    // skopeo copy reads every blob back and checks its digest
    assert_eq!(
        reg.inspect(&reg.reference("liar/app:v1"))["Digest"],
        digest.as_str()
    );
    run_ok(
        Command::new(require_tool("skopeo", "apt-get install -y skopeo"))
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("docker://{}", reg.reference("liar/app:v1")))
            .arg(format!("oci:{}:v1", t.path().join("pulled").display())),
    );
}

#[test]
fn a_redirected_upload_is_followed_and_the_body_sent_again() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    for status in [307u16, 308] {
        // the upload is handed to another host (a storage backend): a
        // second proxy that forwards to the registry
        let storage = FaultProxy::start(&reg.host, |_: &ProxyRequest| Fault::Forward);
        let storage_host = storage.host.clone();
        let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
            if r.method == "PUT" && r.path().contains("/blobs/uploads/") && !r.body.is_empty() {
                Fault::Redirect {
                    status,
                    location: format!("http://{storage_host}{}", r.target),
                }
            } else {
                Fault::Forward
            }
        });
        let repo = format!("redirect-{status}/app");
        let out = push(
            t.path(),
            &["--json", &src, &proxy.reference(&format!("{repo}:v1"))],
        );
        let ctx = format!(
            "{}\nproxy:\n{}\nstorage:\n{}",
            both(&out),
            proxy.log_text(),
            storage.log_text()
        );
        assert!(out.status.success(), "HTTP {status}: {ctx}");
        let r = json(&out);
        for b in blob_digests(&r) {
            assert!(
                proxy
                    .exchanges()
                    .iter()
                    .any(|x| is_put_of(x, &b) && x.status == status),
                "{b} was redirected: {ctx}"
            );
            let at_storage: Vec<ProxyExchange> = storage
                .exchanges()
                .into_iter()
                .filter(|x| is_put_of(x, &b))
                .collect();
            assert_eq!(at_storage.len(), 1, "{b}: {ctx}");
            assert_eq!(at_storage[0].status, 201, "{ctx}");
            assert!(at_storage[0].body_len > 0, "the body went again: {ctx}");
        }
        assert_eq!(
            reg.inspect(&reg.reference(&format!("{repo}:v1")))["Digest"],
            digest.as_str()
        );
    }
}

#[test]
fn a_stalled_request_is_given_up_after_the_stall_timeout_and_retried() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let Packed { src, digest, .. } = packed_layout(t.path(), "v1");
    // the first two blob HEADs, and the first upload PUT (whose body is
    // read in full), get no answer at all; later ones pass
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stalled_put = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s2, p2) = (stalled.clone(), stalled_put.clone());
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        use std::sync::atomic::Ordering::SeqCst;
        let head = r.method == "HEAD" && r.path().contains("/blobs/");
        let upload =
            r.method == "PUT" && r.path().contains("/blobs/uploads/") && !r.body.is_empty();
        if (head && s2.fetch_add(1, SeqCst) < 2) || (upload && p2.fetch_add(1, SeqCst) < 1) {
            Fault::Stall
        } else {
            Fault::Forward
        }
    });
    let started = std::time::Instant::now();
    let out = push(
        t.path(),
        &[
            "--stall-timeout",
            "2s",
            &src,
            &proxy.reference("stall/app:v1"),
        ],
    );
    let took = started.elapsed();
    let ctx = format!("{}\nproxy:\n{}", both(&out), proxy.log_text());
    assert!(out.status.success(), "{ctx}");
    // not the old fixed 60 s per request: 2 s, then a retry
    assert!(took.as_secs() < 45, "took {took:?}: {ctx}");
    let log = proxy.exchanges();
    let given_up = |m: &str| {
        log.iter()
            .filter(|x| x.method == m && matches!(x.fault, Fault::Stall))
            .count()
    };
    assert_eq!(given_up("HEAD"), 2, "{ctx}");
    assert_eq!(given_up("PUT"), 1, "the stalled upload was retried: {ctx}");
    assert_eq!(
        reg.inspect(&reg.reference("stall/app:v1"))["Digest"],
        digest.as_str()
    );

    // a connection that stops taking an upload's bytes half-way (the
    // receiver never reads them: zero window) is dropped after the stall
    // timeout, not after the upload's size-scaled total (30 MB: ~2 minutes),
    // and the upload is retried
    let big = crate::sinks::big_static_binary(t.path(), 30);
    let big_src = format!("oci:{}:big", t.path().join("big-layout").display());
    run_ok(
        dp().arg("pack")
            .arg(&big)
            .args(["--tag", "big:v1", "--output", &big_src]),
    );
    let proxy = FaultProxy::start(&reg.host, |_: &ProxyRequest| Fault::Forward);
    proxy.stall_bodies_over(1 << 20);
    let started = std::time::Instant::now();
    let out = push(
        t.path(),
        &[
            "--stall-timeout",
            "2s",
            &big_src,
            &proxy.reference("stall/big:v1"),
        ],
    );
    let took = started.elapsed();
    let all = both(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(proxy.bodies_stalled() >= 2, "the upload was retried: {all}");
    assert!(took.as_secs() < 90, "took {took:?}: {all}");
    assert!(all.contains("stall timeout 2s"), "{all}");

    // a registry that never answers: exit 4, the message names the timeout
    // (set through the environment this time)
    let proxy = FaultProxy::start(&reg.host, |r: &ProxyRequest| {
        if r.path() == "/v2/" {
            Fault::Forward
        } else {
            Fault::Stall
        }
    });
    let out = run(dpc(t.path())
        .env("DISTROLESS_PACK_STALL_TIMEOUT", "1")
        .arg("push")
        .arg(&src)
        .arg(proxy.reference("dead/app:v1")));
    let all = both(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("stall timeout 1s"), "{all}");
    // a bad value is a usage error
    let out = push(
        t.path(),
        &["--stall-timeout", "soon", &src, &proxy.reference("x:v1")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

/// A two-platform index (amd64 and arm64 images of one small layer each,
/// built with crates/image) written to `oci:DIR/two:v1`; returns it and
/// the push source.
fn two_platform_layout(dir: &Path) -> (Index, String) {
    let index = Index::new(
        vec![tiny_image(dir, "amd64"), tiny_image(dir, "arm64")],
        &Default::default(),
    )
    .unwrap();
    let sink: distroless_pack_ship::Sink = format!("oci:{}:v1", dir.join("two").display())
        .parse()
        .unwrap();
    distroless_pack_ship::write_sink(&Artifact::Index(index.clone()), &sink, &Default::default())
        .unwrap();
    (index, sink.to_string())
}

/// Every config and layer of `index`.
fn index_blobs(index: &Index) -> Vec<String> {
    index
        .images
        .iter()
        .flat_map(|i| i.blobs())
        .map(|b| b.digest.to_string())
        .collect()
}

/// Whether `r` finishes a blob upload (`PUT .../blobs/uploads/...?digest=`).
fn is_upload_put(r: &ProxyRequest) -> bool {
    r.method == "PUT" && r.path().contains("/blobs/uploads/") && r.query().contains("digest=")
}

/// For [`FaultProxy`] rules: [`Gate::hold`] keeps a request until `want`
/// requests are held at the same time (then they all go, and so does
/// every later one), or until a minute passes. A sequential client never
/// has two requests held, so it is released only by the time limit and
/// [`Gate::most`] stays 1.
struct Gate {
    want: usize,
    /// (held now, most held at once, open)
    state: std::sync::Mutex<(usize, usize, bool)>,
    changed: std::sync::Condvar,
}

impl Gate {
    fn new(want: usize) -> std::sync::Arc<Gate> {
        std::sync::Arc::new(Gate {
            want,
            state: std::sync::Mutex::new((0, 0, false)),
            changed: std::sync::Condvar::new(),
        })
    }

    fn hold(&self) {
        let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        s.1 = s.1.max(s.0);
        if s.0 >= self.want {
            s.2 = true;
            self.changed.notify_all();
        }
        while !s.2 {
            let now = std::time::Instant::now();
            if now >= limit {
                break;
            }
            s = self.changed.wait_timeout(s, limit - now).unwrap().0;
        }
        s.0 -= 1;
    }

    fn most(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

#[test]
fn an_index_uploads_the_blobs_of_both_platforms_at_the_same_time() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let (index, src) = two_platform_layout(t.path());
    let blobs = index_blobs(&index);
    assert_eq!(blobs.len(), 4, "two configs, two layers");
    // every upload PUT is held until all four are in flight at once: a push
    // that sends one platform (or one blob) after the other never gets
    // there, and is only let go after a minute, with `most` below 4
    let gate = Gate::new(4);
    let g = gate.clone();
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        if is_upload_put(r) {
            g.hold();
        }
        Fault::Forward
    });
    let out = push(t.path(), &["--json", &src, &proxy.reference("par/app:v1")]);
    let ctx = format!("{}\nproxy:\n{}", both(&out), proxy.log_text());
    assert!(out.status.success(), "{ctx}");
    assert_eq!(
        gate.most(),
        4,
        "the four blobs of both platforms were not uploading at the same time: {ctx}"
    );
    let r = json(&out);
    assert_eq!(count(&r, 0, "uploaded"), 4, "{r:#}");
    // all of it is in the registry (its own API, not through the proxy)
    for b in &blobs {
        assert_eq!(
            head_status(&reg.host, &format!("/v2/par/app/blobs/{b}")),
            200,
            "{b}"
        );
    }
    assert_eq!(
        reg.raw_manifest(&reg.reference("par/app:v1")),
        index.index.read_all().unwrap()
    );
    for img in &index.images {
        assert_eq!(
            reg.raw_manifest(&format!("{}@{}", reg.reference("par/app"), img.digest())),
            img.manifest.read_all().unwrap()
        );
    }
    // manifests only after every blob, and the index last
    let log = proxy.exchanges();
    let last_blob = log.iter().rposition(|x| x.target.contains("/blobs/"));
    let first_manifest = log.iter().position(|x| x.target.contains("/manifests/"));
    assert!(last_blob < first_manifest, "{ctx}");
    let manifests: Vec<&ProxyExchange> = log
        .iter()
        .filter(|x| x.method == "PUT" && x.target.contains("/manifests/"))
        .collect();
    assert_eq!(manifests.len(), 3, "{ctx}");
    assert!(manifests[2].target.ends_with("/manifests/v1"), "{ctx}");
}

#[test]
fn with_jobs_1_blobs_go_up_one_at_a_time() {
    use std::sync::{Arc, Condvar, Mutex};
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let (index, src) = two_platform_layout(t.path());
    // the first upload PUT is held until another blob request comes (a
    // parallel push sends the other blobs' HEADs meanwhile) or 3 s pass;
    // with --jobs 1 nothing may come
    struct Held {
        /// (holding now, requests that came while holding, held once)
        state: Mutex<(bool, usize, bool)>,
        changed: Condvar,
    }
    let held = Arc::new(Held {
        state: Mutex::new((false, 0, false)),
        changed: Condvar::new(),
    });
    let h = held.clone();
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        if !r.path().contains("/blobs/") {
            return Fault::Forward;
        }
        let mut s = h.state.lock().unwrap();
        if s.0 {
            s.1 += 1;
            h.changed.notify_all();
        } else if is_upload_put(r) && !s.2 {
            (s.0, s.2) = (true, true);
            let limit = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while s.1 == 0 && std::time::Instant::now() < limit {
                s = h
                    .changed
                    .wait_timeout(s, std::time::Duration::from_millis(100))
                    .unwrap()
                    .0;
            }
            s.0 = false;
        }
        Fault::Forward
    });
    for flag in [["--jobs", "1"], ["-j", "1"]] {
        let repo = if flag[0] == "-j" {
            "seq/short"
        } else {
            "seq/app"
        };
        *held.state.lock().unwrap() = (false, 0, false);
        let n = proxy.exchanges().len();
        let out = push(
            t.path(),
            &[
                "--json",
                flag[0],
                flag[1],
                &src,
                &proxy.reference(&format!("{repo}:v1")),
            ],
        );
        let ctx = format!("{}\nproxy:\n{}", both(&out), proxy.log_text());
        assert!(out.status.success(), "{ctx}");
        assert_eq!(count(&json(&out), 0, "uploaded"), 4, "{ctx}");
        let s = held.state.lock().unwrap();
        assert!(s.2, "no upload was held: {ctx}");
        assert_eq!(s.1, 0, "blob requests while one upload ran: {ctx}");
        drop(s);
        // one blob after the other: its HEAD, upload start and PUT together
        let blob_requests: Vec<ProxyExchange> = proxy.exchanges()[n..]
            .iter()
            .filter(|x| x.target.contains("/blobs/"))
            .cloned()
            .collect();
        assert_eq!(blob_requests.len(), 12, "{ctx}");
        for three in blob_requests.chunks(3) {
            let d = three[0].target.rsplit('/').next().unwrap().to_string();
            assert_eq!(three[0].method, "HEAD", "{ctx}");
            assert!(is_upload_start(&three[1].method, &three[1].target), "{ctx}");
            assert!(is_put_of(&three[2], &d), "{d} not next: {ctx}");
        }
        assert_eq!(
            reg.raw_manifest(&reg.reference(&format!("{repo}:v1"))),
            index.index.read_all().unwrap()
        );
    }
}

#[test]
fn one_failed_blob_upload_fails_the_push_in_one_line_and_puts_no_manifest() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let (index, src) = two_platform_layout(t.path());
    let bad = index.images[1].layers[0].digest.to_string();
    let hex = bad.trim_start_matches("sha256:").to_string();
    // the registry refuses the arm64 layer as if it arrived damaged (not
    // retried); everything else goes through
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        if is_upload_put(r) && r.query().contains(&hex) {
            Fault::Answer {
                status: 400,
                body: r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#.into(),
            }
        } else {
            Fault::Forward
        }
    });
    for json_flag in [false, true] {
        let mut args = vec![];
        if json_flag {
            args.push("--json");
        }
        let target = proxy.reference("broken/app:v1");
        args.extend([src.as_str(), target.as_str()]);
        let out = push(t.path(), &args);
        let all = format!("{}\nproxy:\n{}", both(&out), proxy.log_text());
        assert_eq!(out.status.code(), Some(4), "a registry failure: {all}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("distroless-pack: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "one error line: {all}");
        if json_flag {
            assert_eq!(stderr.trim_end(), errors[0], "{all}");
            assert!(out.stdout.is_empty(), "{all}");
        }
        assert!(errors[0].contains(&bad[..19]), "names the blob: {all}");
        assert!(errors[0].contains("DIGEST_INVALID"), "{all}");
        assert!(!errors[0].contains("cancelled"), "{all}");
    }
    // no manifest was sent, and the registry has none
    assert!(
        !proxy
            .exchanges()
            .iter()
            .any(|x| x.target.contains("/manifests/")),
        "{}",
        proxy.log_text()
    );
    assert!(
        !reg.log_text().contains("/manifests/"),
        "{}",
        reg.log_text()
    );
    assert_eq!(head_status(&reg.host, "/v2/broken/app/manifests/v1"), 404);
    for img in &index.images {
        assert_eq!(
            head_status(
                &reg.host,
                &format!("/v2/broken/app/manifests/{}", img.digest())
            ),
            404
        );
    }
}

#[test]
fn extra_blobs_join_the_parallel_batch_and_after_top_puts_a_manifest_with_its_headers() {
    use distroless_pack_ship::registry::{self, Extra, ManifestPut, Repo};
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let img = tiny_image(t.path(), "amd64");
    // an attachment as the referrers code makes one: an empty config, one
    // layer, and a manifest naming the image as its subject
    let sbom = Blob::from_bytes(
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3","name":"extra"}"#.to_vec(),
    );
    let empty = Blob::from_bytes("application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let referrer = Blob::from_bytes(
        distroless_pack_image::MEDIA_TYPE_MANIFEST,
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": distroless_pack_image::MEDIA_TYPE_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty.descriptor_json(),
            "layers": [sbom.descriptor_json()],
            "subject": img.manifest.descriptor_json(),
        }))
        .unwrap(),
    );
    // the image's config and layer and the two extra blobs: every upload
    // PUT is held until all four are in flight together
    let gate = Gate::new(4);
    let g = gate.clone();
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        if is_upload_put(r) {
            g.hold();
        }
        Fault::Forward
    });
    let answers: std::sync::Mutex<Vec<(String, ManifestPut)>> = Default::default();
    let after = |repo: &Repo<'_>| -> Result<(), registry::RegistryError> {
        let put = repo.put_manifest(referrer.digest.as_str(), &referrer)?;
        answers
            .lock()
            .unwrap()
            .push((repo.repository().to_string(), put));
        Ok(())
    };
    let extra = Extra {
        blobs: vec![sbom.clone(), empty.clone()],
        after_top: Some(&after),
    };
    let target = registry::RegistryTarget::parse(&proxy.reference("att/app:v1")).unwrap();
    let report = registry::push_with(
        &Artifact::Image(img.clone()),
        &extra,
        &[target],
        &registry::PushOptions::default(),
        &|_| {},
    )
    .unwrap_or_else(|e| panic!("{e}\nproxy:\n{}", proxy.log_text()));
    assert_eq!(
        gate.most(),
        4,
        "the extra blobs were not in the image's batch:\n{}",
        proxy.log_text()
    );
    let t0 = &report.targets[0];
    assert_eq!(t0.uploaded, 4, "{report:#?}");
    for b in [&sbom, &empty] {
        assert!(t0.blobs.iter().any(|r| r.digest == b.digest.as_str()));
        assert_eq!(
            head_status(&reg.host, &format!("/v2/att/app/blobs/{}", b.digest)),
            200
        );
    }
    // after the image's manifest, the referrer's, with the answer's headers
    let answers = answers.into_inner().unwrap();
    assert_eq!(answers.len(), 1);
    let (repo, put) = &answers[0];
    assert_eq!(repo, "att/app");
    assert_eq!(put.status, 201);
    assert_eq!(put.digest.as_deref(), Some(referrer.digest.as_str()));
    assert_eq!(
        put.header("docker-content-digest"),
        Some(referrer.digest.as_str())
    );
    // distribution 2.8 has no referrers API, so it names no subject
    assert_eq!(put.subject, None);
    let log = proxy.exchanges();
    let puts: Vec<&ProxyExchange> = log
        .iter()
        .filter(|x| x.method == "PUT" && x.target.contains("/manifests/"))
        .collect();
    assert_eq!(puts.len(), 2, "{}", proxy.log_text());
    assert!(puts[0].target.ends_with("/manifests/v1"));
    assert!(puts[1].target.ends_with(referrer.digest.as_str()));
    assert_eq!(
        reg.raw_manifest(&format!("{}@{}", reg.reference("att/app"), referrer.digest)),
        referrer.read_all().unwrap()
    );
}
