//! `distroless-pack push`, `login` and `pack --push` against a real
//! registry (`docker-registry`, tests/support/registry.rs): without auth,
//! with htpasswd Basic auth, with Bearer tokens, and behind TLS with a
//! self-signed CA; results checked with skopeo and by pulling and running
//! the image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use distroless_pack_image::{Artifact, Blob, Image, Index, MEDIA_TYPE_LAYER_GZIP};

use crate::support::corpus;
use crate::support::registry::{Auth, Registry};
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

/// Packs the corpus's static hello into `oci:DIR:TAG` with the CLI and
/// returns the layout directory and the image digest.
fn packed_layout(dir: &Path, tag: &str) -> (PathBuf, String) {
    let hello = corpus::musl_static_hello();
    let layout = dir.join("layout");
    let out = run_ok(
        dp().arg("pack")
            .arg(&hello)
            .args(["--tag", &format!("hello:{tag}")])
            .arg("--output")
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    let digest = out.trim().lines().last().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "pack printed {out:?}");
    (layout, digest)
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
    let (layout, digest) = packed_layout(t.path(), "v1");
    let src = format!("oci:{}:v1", layout.display());

    // first push: everything uploaded; plain output is NAME@sha256:...
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("app:v1")));
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
    let out = run(dpc(t.path())
        .args(["push", "--json"])
        .arg(&src)
        .arg(reg.reference("app:v1"))
        .arg(reg.reference("other/app:v1")));
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
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("multi:a"))
        .arg(reg.reference("multi:b")));
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
}

#[test]
fn push_is_byte_identical_to_skopeo_copy_and_chunked_works() {
    require_tool("skopeo", "apt-get install -y skopeo");
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let (layout, digest) = packed_layout(t.path(), "v1");
    let src = format!("oci:{}:v1", layout.display());
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
    let out = run(dpc(t.path())
        .args(["push", "--chunked", "--json"])
        .arg(&src)
        .arg(reg2.reference("chunked:v1")));
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
    let out = run(dpc(t.path())
        .arg("push")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(reg2.reference("from-archive:v1")));
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
    let (layout, digest) = packed_layout(t.path(), "v1");
    let src = format!("oci:{}:v1", layout.display());

    // no credentials anywhere: exit 5, says where it looked and how to log in
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("app:v1")));
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
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("via-config:v1")));
    assert!(out.status.success(), "{}", both(&out));
    let mut skopeo = Command::new("skopeo");
    skopeo.args(["inspect", "--tls-verify=false", "--creds=alice:s3cret-pw"]);
    let v: serde_json::Value = serde_json::from_str(&run_ok(
        skopeo.arg(format!("docker://{}", reg.reference("via-config:v1"))),
    ))
    .unwrap();
    assert_eq!(v["Digest"], digest.as_str());

    // podman's auth.json is read too
    let t2 = tmp();
    let auth = base64_encode("alice:s3cret-pw");
    std::fs::write(
        t2.path().join("auth.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let out = run(dpc(t2.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("via-podman:v1")));
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
    let (layout, digest) = packed_layout(t.path(), "v1");
    let src = format!("oci:{}:v1", layout.display());
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
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("team/app:v3")));
    assert!(
        out.status.success(),
        "push with the stored login: {}",
        both(&out)
    );
}

#[test]
fn tls_with_a_private_ca() {
    let t = tmp();
    let reg = Registry::start_tls(Auth::None);
    let (layout, digest) = packed_layout(t.path(), "v1");
    let src = format!("oci:{}:v1", layout.display());
    // without the CA: a certificate error, exit 4, no fallback to plain HTTP
    let out = run(dpc(t.path())
        .arg("push")
        .arg(&src)
        .arg(reg.reference("app:v1")));
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
fn tiny_image(dir: &Path, arch: &str) -> Image {
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
    distroless_pack_ship::write(&artifact, &sink, &Default::default()).unwrap();
    let out = run(dpc(t.path())
        .args(["push", "--json"])
        .arg(sink.to_string())
        .arg(reg.reference("multi:v1")));
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
    let (layout, digest) = packed_layout(t.path(), "v1");
    let out = run(dpc(t.path())
        .arg("push")
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(reg.reference("runme:v1")));
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
    let (layout, digest) = packed_layout(t.path(), "v1");
    // connection 1 is the /v2/ probe; the next new connections (opened by
    // parallel blob requests, and by their retries) are dropped mid-request
    let (proxy, dropped) = dropping_proxy(reg.host.clone(), vec![2, 3, 4]);
    let out = run(dpc(t.path())
        .args(["push", "--json"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("{proxy}/flaky:v1")));
    assert!(out.status.success(), "{}", both(&out));
    assert!(count(&json(&out), 0, "uploaded") >= 2);
    let n = dropped.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n >= 1, "nothing was dropped");
    assert_eq!(
        reg.inspect(&reg.reference("flaky:v1"))["Digest"],
        digest.as_str()
    );
}
