//! `distroless-pack pack`: images checked by real consumers (oci-image-tool,
//! umoci, tar), reproducibility across input metadata, verify gating and
//! input errors. (docker/podman loading and the skopeo sink tests live in
//! sinks.rs.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{both, dp, require_tool, run, run_ok, tmp, write_file};

/// A musl-static hello and a dynamic (glibc) one, built once per test run.
struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    fn hello(&self) -> PathBuf {
        self.dir.join("hello")
    }
    fn dynamic(&self) -> PathBuf {
        self.dir.join("hello-dyn")
    }
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        require_tool("musl-gcc", "apt-get install -y musl-tools");
        require_tool("gcc", "apt-get install -y gcc");
                // Under target/tmp (kept between runs, rebuilt by each run), not a
        // temp dir that a static would never remove.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pack-fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let src = write_file(&dir, "hello.c", b"#include <stdio.h>\nint main(int c, char **v){printf(\"hello from scratch\\n\");for(int i=1;i<c;i++)printf(\"arg %s\\n\",v[i]);return 0;}\n");
        run_ok(Command::new("musl-gcc").args(["-static", "-O2", "-o"]).arg(dir.join("hello")).arg(&src));
        run_ok(Command::new("gcc").args(["-O2", "-o"]).arg(dir.join("hello-dyn")).arg(&src));
        Fixtures { dir }
    })
}

/// Runs `pack` with `args`, asserting success; returns stdout (trimmed).
#[track_caller]
fn pack_ok(args: &[&str]) -> String {
    run_ok(dp().arg("pack").args(args)).trim().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The manifest digest tagged `tag` in an OCI layout.
fn layout_digest(layout: &Path, tag: &str) -> String {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no ref {tag} in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn manifest_and_config(layout: &Path, tag: &str) -> (serde_json::Value, serde_json::Value) {
    let manifest = read_json(&blob_path(layout, &layout_digest(layout, tag)));
    let config = read_json(&blob_path(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    (manifest, config)
}

/// Every path under `root` (relative, sorted) with its mode bits and uid.
fn tree(root: &Path) -> Vec<(String, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            out.push((rel, m.permissions().mode() & 0o7777, m.uid()));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    require_tool("umoci", "apt-get install -y umoci");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", s(layout)))
            .arg(bundle),
    );
}

#[test]
fn oci_layout_passes_oci_image_tool_and_umoci_gives_exactly_the_binary() {
    let f = fixtures();
    require_tool("oci-image-tool", "apt-get install -y oci-image-tool");
    let t = tmp();
    let layout = t.path().join("layout");
    let digest = pack_ok(&[
        s(&f.hello()),
        "--tag",
        "hello:1.0",
        "--output",
        &format!("oci:{}:1.0", s(&layout)),
    ]);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "stdout is the digest: {digest}"
    );
    assert_eq!(layout_digest(&layout, "1.0"), digest);

    run_ok(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(&layout)
            .args(["--ref", "name=1.0"]),
    );

    let bundle = t.path().join("bundle");
    umoci_unpack(&layout, "1.0", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        tree(&rootfs),
        vec![("app".into(), 0o755, 0), ("app/hello".into(), 0o755, 0)]
    );
    assert_eq!(
        std::fs::read(rootfs.join("app/hello")).unwrap(),
        std::fs::read(f.hello()).unwrap()
    );
    // The unpacked binary runs (static: no loader needed).
    let out = run_ok(&mut Command::new(rootfs.join("app/hello")));
    assert_eq!(out, "hello from scratch\n");

    let (manifest, config) = manifest_and_config(&layout, "1.0");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        1,
        "one layer: only the binary"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let c = &config["config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/app/hello"]),
        "exec form, never a shell"
    );
    assert!(c.get("Cmd").is_none() || c["Cmd"].is_null());
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["WorkingDir"], "/app", "the binary's directory, never /");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "hello");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "1.0");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");

    // The gzip header carries no time, no name, a fixed OS byte.
    let layer = std::fs::read(blob_path(
        &layout,
        manifest["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(&layer[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
}

#[test]
fn extras_env_ports_args_and_path_land_in_the_image() {
    let f = fixtures();
    assert!(
        Path::new("/usr/share/zoneinfo/Etc/UTC").is_file()
            && Path::new("/etc/ssl/certs/ca-certificates.crt").is_file(),
        "host tzdata and CA bundle needed: run `apt-get install -y tzdata ca-certificates`"
    );
    let t = tmp();
    let layout = t.path().join("layout");
    let dat = write_file(t.path(), "icudt72l.dat", b"fake ICU data");
    let digest = pack_ok(&[
        s(&f.hello()),
        "--tag",
        "registry.example:5000/acme/hello:2",
        "--path",
        "/usr/local/bin/hi",
        "--passwd",
        "--ca-certs",
        "--tzdata",
        "--icu-data",
        s(&dat),
        "--env",
        "GREETING=hi there",
        "--env",
        "SSL_CERT_FILE=/override.pem",
        "--port",
        "8080",
        "--workdir",
        "/home/nonroot",
        "--label",
        "org.opencontainers.image.source=https://example.com/acme/hello",
        "--annotation",
        "com.example.note=yes",
        "--output",
        &format!("oci:{}", s(&layout)),
        "--",
        "--flag",
        "two words",
    ]);
    assert_eq!(
        layout_digest(&layout, "2"),
        digest,
        "the tag of --tag is the default ref name"
    );

    let (manifest, config) = manifest_and_config(&layout, "2");
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "extras layer, then the binary layer"
    );
    assert_eq!(manifest["annotations"]["com.example.note"], "yes");
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/hi"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--flag", "two words"]));
    assert_eq!(c["WorkingDir"], "/home/nonroot");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "SSL_CERT_FILE=/override.pem",
            "ICU_DATA=/usr/share/icu",
            "GREETING=hi there"
        ])
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "hello");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.source"],
        "https://example.com/acme/hello"
    );

    let bundle = t.path().join("bundle");
    umoci_unpack(&layout, "2", &bundle);
    let rootfs = bundle.join("rootfs");
    let got = tree(&rootfs);
    let find = |p: &str| {
        got.iter()
            .find(|e| e.0 == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} missing from {got:?}"))
    };
    assert_eq!(find("usr/local/bin/hi").1, 0o755);
    assert_eq!(find("etc/passwd").1, 0o644);
    assert_eq!(find("etc/group").1, 0o644);
    assert_eq!(find("tmp").1, 0o1777);
    assert_eq!(find("home/nonroot"), ("home/nonroot".into(), 0o700, 65532));
    assert_eq!(find("root").1, 0o700);
    assert_eq!(find("etc/ssl/certs/ca-certificates.crt").1, 0o644);
    assert_eq!(find("usr/share/icu/icudt72l.dat").1, 0o644);
    assert_eq!(find("usr/share/zoneinfo/Etc/UTC").1, 0o644);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"),
        "{passwd}"
    );
    assert!(passwd.contains("root:x:0:0:"));
    assert!(passwd.contains("nobody:x:65534:65534:"));
    assert_eq!(
        std::fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap()
    );
    // Symlinks of the zoneinfo tree stay links, with their targets.
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/share/zoneinfo/UTC")).unwrap(),
        std::fs::read_link("/usr/share/zoneinfo/UTC").unwrap()
    );
    // Nothing but what was asked for.
    let mut top: Vec<_> = got
        .iter()
        .filter(|e| !e.0.contains('/'))
        .map(|e| e.0.as_str())
        .collect();
    top.sort();
    assert_eq!(top, ["etc", "home", "root", "tmp", "usr"]);
}

#[test]
fn same_inputs_give_the_same_digest_whatever_mtime_owner_mode_or_umask() {
    let f = fixtures();
    let t = tmp();
    let a = t.path().join("a/hello");
    let b = t.path().join("b/hello");
    std::fs::create_dir_all(a.parent().unwrap()).unwrap();
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    std::fs::copy(f.hello(), &a).unwrap();
    std::fs::copy(f.hello(), &b).unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o775)).unwrap();
    run_ok(
        Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .arg(&a),
    );
    run_ok(Command::new("chown").arg("1234:5678").arg(&b));

    let out_a = t.path().join("out-a");
    let out_b = t.path().join("out-b");
    let da = pack_ok(&[
        s(&a),
        "--tag",
        "hello:1",
        "--passwd",
        "--output",
        &format!("oci:{}:1", s(&out_a)),
    ]);
    let db = run_ok(
        Command::new("sh")
            .args(["-c", "umask 077 && exec \"$@\"", "sh"])
            .arg(crate::util::bin())
            .args([
                "pack",
                s(&b),
                "--tag",
                "hello:1",
                "--passwd",
                "--output",
                &format!("oci:{}:1", s(&out_b)),
            ])
            .env_remove("SOURCE_DATE_EPOCH"),
    )
    .trim()
    .to_string();
    assert_eq!(da, db);
    assert_eq!(layout_digest(&out_a, "1"), layout_digest(&out_b, "1"));
    // And a third run without output gives the same digest again.
    assert_eq!(pack_ok(&[s(&a), "--tag", "hello:1", "--passwd"]), da);
}

#[test]
fn source_date_epoch_sets_created_and_tar_mtimes() {
    let f = fixtures();
    let t = tmp();
    let layout = t.path().join("layout");
    let plain = pack_ok(&[s(&f.hello()), "--tag", "hello:1"]);
    let dated = |tag: &str| {
        run_ok(
            dp().env("SOURCE_DATE_EPOCH", "1700000000")
                .args([
                    "pack",
                    s(&f.hello()),
                    "--tag",
                    &format!("hello:{tag}"),
                    "--passwd",
                    "--output",
                ])
                .arg(format!("oci:{}:{tag}", s(&layout))),
        )
        .trim()
        .to_string()
    };
    let d1 = dated("1");
    assert_ne!(d1, plain);
    let (manifest, config) = manifest_and_config(&layout, "1");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert!(config["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["created"] == "2023-11-14T22:13:20Z"));
    for l in manifest["layers"].as_array().unwrap() {
        let listing = run_ok(
            Command::new("tar")
                .args(["--numeric-owner", "--full-time", "-tvzf"])
                .arg(blob_path(&layout, l["digest"].as_str().unwrap()))
                .env("TZ", "UTC"),
        );
        assert!(!listing.is_empty());
        for line in listing.lines() {
            assert!(line.contains("2023-11-14 22:13:20"), "{line}");
        }
    }
    // The same epoch twice: the same digest.
    let d2 = dated("1");
    assert_eq!(d1, d2);

    let bad = run(dp()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["pack", s(&f.hello())]));
    assert_eq!(bad.status.code(), Some(2), "{}", both(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("SOURCE_DATE_EPOCH"),
        "{}",
        both(&bad)
    );
}

#[test]
fn dynamic_binary_is_refused_and_no_verify_packs_it_with_a_warning() {
    let f = fixtures();
    let t = tmp();
    let layout = t.path().join("layout");
    let out = run(dp()
        .args(["pack", s(&f.dynamic()), "--tag", "dyn:1", "--output"])
        .arg(format!("oci:{}:1", s(&layout))));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such file or directory"),
        "the finding says what the user would see: {err}"
    );
    assert!(err.contains("--no-verify"), "{err}");
    assert!(out.stdout.is_empty(), "{}", both(&out));
    assert!(!layout.exists(), "a refused pack writes nothing");

    let out = run(dp()
        .args([
            "pack",
            s(&f.dynamic()),
            "--no-verify",
            "--tag",
            "dyn:1",
            "--output",
        ])
        .arg(format!("oci:{}:1", s(&layout))));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: --no-verify"),
        "{}",
        both(&out)
    );
    assert_eq!(
        layout_digest(&layout, "1"),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

#[test]
fn json_summary() {
    let f = fixtures();
    let t = tmp();
    let archive = t.path().join("img.tar");
    let out = run_ok(
        dp().args([
            "pack",
            s(&f.hello()),
            "--json",
            "--tag",
            "hello:j",
            "--output",
        ])
        .arg(format!("oci-archive:{}", s(&archive))),
    );
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["packed"], true);
    assert!(doc["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(doc["platform"], "linux/amd64");
    assert_eq!(doc["name"], "hello:j");
    assert!(doc["size"].as_u64().unwrap() > 1000);
    assert_eq!(doc["outputs"][0]["kind"], "oci-archive");
    assert_eq!(doc["outputs"][0]["digest"], doc["digest"]);
    assert!(doc["images"][0]["findings"].is_object() || doc["images"][0]["findings"].is_array());
    assert!(archive.is_file());
}

#[test]
fn bad_inputs_exit_2_with_one_line_naming_the_file() {
    let t = tmp();
    let script = write_file(t.path(), "script.sh", b"#!/bin/sh\necho hi\n");
    let empty = write_file(t.path(), "empty", b"");
    let missing = t.path().join("missing-binary");
    let dir = t.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    for (p, no_verify) in [
        (&missing, false),
        (&dir, false),
        (&script, false),
        (&empty, false),
        (&missing, true),
        (&script, true),
        (&dir, true),
    ] {
        let mut cmd = dp();
        cmd.args(["pack", s(p), "--output"])
            .arg(format!("oci:{}", s(&t.path().join("out"))));
        if no_verify {
            cmd.arg("--no-verify");
        }
        let out = run(&mut cmd);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            p.display(),
            both(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = err
            .lines()
            .filter(|l| !l.starts_with("warning:") && !l.starts_with('['))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].contains(s(p)), "names the file: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !t.path().join("out").exists(),
            "nothing written for {}",
            p.display()
        );
    }
    // Bad option values are usage errors too.
    let f = fixtures();
    for bad in [
        ["--env", "NOEQUALS"],
        ["--port", "http"],
        ["--tag", "UPPER:1"],
        ["--path", "relative/x"],
    ] {
        let out = run(dp().args(["pack", s(&f.hello())]).args(bad));
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", both(&out));
    }
    let out = run(dp().args(["pack", s(&f.hello()), "--ca-certs=/nonexistent/ca.pem"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"));
}

#[test]
fn os_and_architecture_come_from_the_elf() {
    let go = require_tool("go", "apt-get install -y golang-go");
    let t = tmp();
    let src = write_file(
        t.path(),
        "main.go",
        b"package main\n\nfunc main() { println(\"hi\") }\n",
    );
    let bin = t.path().join("hello-arm64");
    run_ok(
        Command::new(go)
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(&bin)
            .arg(&src)
            .current_dir(t.path())
            .env("CGO_ENABLED", "0")
            .env("GOARCH", "arm64")
            .env("GOOS", "linux")
            .env("GOCACHE", t.path().join("gocache"))
            .env("GO111MODULE", "off"),
    );
    let layout = t.path().join("layout");

    // Verified against the platform asked for: arm64 config.
    pack_ok(&[
        s(&bin),
        "--platform",
        "linux/arm64",
        "--tag",
        "hi:arm",
        "--output",
        &format!("oci:{}:arm", s(&layout)),
    ]);
    let (_, config) = manifest_and_config(&layout, "arm");
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("arm64"))
    );

    // Against the host's platform (amd64): refused, nothing written.
    if distroless_pack_image::Platform::host().architecture == "amd64" {
        let out = run(dp()
            .args(["pack", s(&bin), "--tag", "hi:x", "--output"])
            .arg(format!("oci:{}:x", s(&layout))));
        assert_eq!(out.status.code(), Some(1), "{}", both(&out));
        // --no-verify takes the architecture from the ELF header, not the host.
        pack_ok(&[
            s(&bin),
            "--no-verify",
            "--tag",
            "hi:nv",
            "--output",
            &format!("oci:{}:nv", s(&layout)),
        ]);
        let (_, config) = manifest_and_config(&layout, "nv");
        assert_eq!(config["architecture"], "arm64");
    }
}

#[test]
fn no_temp_files_are_left_behind_on_success_or_failure() {
    let f = fixtures();
    let t = tmp();
    let tmpdir = t.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();
    let ok = run(dp()
        .env("TMPDIR", &tmpdir)
        .args(["pack", s(&f.hello()), "--passwd", "--output"])
        .arg(format!("oci-archive:{}", s(&t.path().join("a.tar")))));
    assert!(ok.status.success(), "{}", both(&ok));
    // An output that cannot be written: the run fails after packing.
    let bad = run(dp()
        .env("TMPDIR", &tmpdir)
        .args(["pack", s(&f.hello()), "--output"])
        .arg(format!(
            "oci-archive:{}",
            s(&t.path().join("no/such/dir/a.tar"))
        )));
    assert!(!bad.status.success(), "{}", both(&bad));
    assert!(!t.path().join("no").exists());
    let left: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

/// Unmounts a test mount when dropped (also when the test fails).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_one_line_and_exit_8() {
    let t = tmp();
    let small = t.path().join("small");
    std::fs::create_dir(&small).unwrap();
    // A 1 MiB tmpfs for the layer temp files (the tests run as root, as CI does).
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&small),
    );
    let _guard = Mount(small.clone());
    // An ELF header then 4 MB that do not compress.
    let mut bytes = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..(4 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    let bin = write_file(t.path(), "big", &bytes);
    let out = run(dp()
        .env("TMPDIR", &small)
        // The layer goes to TMPDIR only without the cache (cache.rs tests a full cache disk).
        .args(["pack", s(&bin), "--no-verify", "--no-cache", "--output"])
        .arg(format!("oci:{}", s(&t.path().join("out")))));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<_> = err
        .lines()
        .filter(|l| l.starts_with("distroless-pack: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("No space left on device") && errors[0].contains(s(&small)),
        "{err}"
    );
    assert!(!t.path().join("out").exists());
    assert_eq!(
        std::fs::read_dir(&small).unwrap().count(),
        0,
        "no temp file left"
    );
}
