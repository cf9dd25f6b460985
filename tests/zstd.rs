//! `--compression zstd`: the layers' media type, the readers (`run`,
//! `inspect`, `push`), podman loading and running a zstd image from an OCI
//! archive and from a registry, and the outputs whose consumer cannot read
//! zstd (the test dockerd is docker 20.10; `docker-archive:` files) refusing
//! it before anything is written.

use std::path::Path;

use serde_json::Value;

use crate::support::registry::{Auth, Registry};
use crate::support::{corpus, engines};
use crate::util::{both, dp, run, run_ok, tmp};

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pack hello --compression zstd --json ARGS...`, asserting success;
/// returns the JSON summary.
#[track_caller]
fn pack_zstd(tag: &str, args: &[&str]) -> Value {
    let out = run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", tag, "--compression", "zstd", "--json"])
            .args(args),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("pack --json: {e}: {out}"))
}

/// The layer media types of the (one) image of the summary `pack --json`
/// printed.
fn layer_types(summary: &Value) -> Vec<String> {
    summary["images"][0]["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {summary}"))
        .iter()
        .map(|l| l["media_type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn zstd_layers_have_the_zstd_media_type_and_magic() {
    let t = tmp();
    let z = t.path().join("z");
    let summary = pack_zstd("zstd-type:v1", &["--output", &format!("oci:{}", s(&z))]);
    assert_eq!(layer_types(&summary), [ZSTD]);
    // The blob in the layout starts with the zstd magic.
    let layer = &summary["images"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap()["sha256:".len()..];
    let bytes = std::fs::read(z.join("blobs/sha256").join(layer)).unwrap();
    assert_eq!(bytes[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    // skopeo (containers/image) reads the layout and sees the media type.
    let skopeo = crate::util::require_tool("skopeo", "apt-get install -y skopeo");
    let raw = run_ok(std::process::Command::new(skopeo).args([
        "inspect",
        "--raw",
        &format!("oci:{}:v1", s(&z)),
    ]));
    let m: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], ZSTD);
    // An unknown kind is a usage error naming the value.
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--compression", "xz"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"xz\""), "{err}");
    // zstd:19 is accepted; gzip:9 gives a gzip layer.
    run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--compression", "zstd:19"]),
    );
    let g = t.path().join("g");
    let gz: Value = serde_json::from_str(&run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", "zstd-type:v1", "--json", "--compression", "gzip:9"])
            .args(["--output", &format!("oci:{}", s(&g))]),
    ))
    .unwrap();
    assert_eq!(
        layer_types(&gz),
        ["application/vnd.oci.image.layer.v1.tar+gzip"]
    );
}

#[test]
fn zstd_image_is_read_by_run_inspect_and_push() {
    let t = tmp();
    let dir = t.path().join("lay");
    let src = format!("oci:{}:v1", s(&dir));
    let summary = pack_zstd(
        "zstd-readers:v1",
        &["--output", &format!("oci:{}", s(&dir))],
    );
    let digest = summary["digest"].as_str().unwrap().to_string();

    // run: unpacked without an engine.
    let out = run(dp().args(["run", &src]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);

    // inspect: the layer's files are listed through zstd.
    let out = run_ok(dp().args(["inspect", "--json", &src]));
    let v: Value = serde_json::from_str(&out).unwrap();
    let text = v.to_string();
    assert!(text.contains(ZSTD), "{text}");
    assert!(
        text.contains("\"path\":\"/app/musl-static-hello\""),
        "{text}"
    );

    // push: the bytes go up unchanged (same digest), and the registry's
    // manifest names the zstd layer.
    let reg = Registry::start(Auth::None);
    let out = run(dp().args(["push", &src, &reg.reference("zr:v1")]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}@{digest}", reg.reference("zr"))
    );
    let m: Value = serde_json::from_slice(&reg.raw_manifest(&reg.reference("zr:v1"))).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], ZSTD);

    // An OCI archive of it is read too.
    let arch = t.path().join("z.tar");
    pack_zstd(
        "zstd-readers:v1",
        &["--output", &format!("oci-archive:{}", s(&arch))],
    );
    let out = run(dp().args(["run", &format!("oci-archive:{}", s(&arch))]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

#[test]
fn podman_loads_and_runs_a_zstd_image_from_an_oci_archive() {
    let podman = engines::podman();
    let t = tmp();
    let arch = t.path().join("z.tar");
    pack_zstd(
        "localhost/zstd-archive:v1",
        &["--output", &format!("oci-archive:{}", s(&arch))],
    );
    let out = podman.run_ok(&["load", "-i", s(&arch)]);
    assert!(out.contains("zstd-archive:v1"), "{out}");
    let ran = podman.run_ok(&[
        "run",
        "--rm",
        "--network=none",
        "--pull=never",
        "localhost/zstd-archive:v1",
    ]);
    assert_eq!(ran.trim(), corpus::HELLO);
    podman.remove_image("localhost/zstd-archive:v1");
}

#[test]
fn podman_pulls_and_runs_a_zstd_image_pushed_to_the_registry() {
    let podman = engines::podman();
    let reg = Registry::start(Auth::None);
    let reference = reg.reference("zstd-pushed:v1");
    let summary = pack_zstd("zstd-pushed:v1", &["--push", &reference]);
    let digest = summary["digest"].as_str().unwrap();
    let pinned = format!("{}@{digest}", reg.reference("zstd-pushed"));
    podman.run_ok(&["pull", "--quiet", "--tls-verify=false", &pinned]);
    let ran = podman.run_ok(&["run", "--rm", "--network=none", "--pull=never", &pinned]);
    assert_eq!(ran.trim(), corpus::HELLO);
    podman.remove_image(&pinned);
}

#[test]
fn load_podman_takes_a_zstd_image() {
    let podman = engines::podman();
    let mut c = dp();
    podman.apply(&mut c);
    let out = run(c.arg("pack").arg(corpus::musl_static_hello()).args([
        "--tag",
        "zstd-load:v1",
        "--compression",
        "zstd",
        "--load=podman",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    let ran = podman.run_ok(&[
        "run",
        "--rm",
        "--network=none",
        "--pull=never",
        "zstd-load:v1",
    ]);
    assert_eq!(ran.trim(), corpus::HELLO);
    podman.remove_image("zstd-load:v1");
}

/// Asserts `out` is the one-line zstd refusal, exit 2, naming `what`.
#[track_caller]
fn assert_refused(out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", both(out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("distroless-pack: error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(what) && line.contains("zstd"),
        "{what}: {line}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
}

#[test]
fn zstd_to_docker_20_10_is_refused_before_anything_is_written() {
    let docker = engines::docker();
    let version = docker.run_ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        version.trim().starts_with("20.10."),
        "this test is about docker 20.10, the test dockerd is {version}"
    );
    let t = tmp();
    let lay = t.path().join("lay");
    for load in ["--load=docker", "--load"] {
        let mut c = dp();
        docker.apply(&mut c);
        let out = run(c
            .arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", "zstd-refused:v1", "--compression", "zstd:3"])
            .args(["--output", &format!("oci:{}", s(&lay)), load]));
        assert_refused(&out, "docker 20.10");
        assert!(!lay.exists(), "{load}: the layout was written");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--load=podman"), "{err}");
    }
    let images = docker.run_ok(&["images", "-q", "zstd-refused:v1"]);
    assert!(images.trim().is_empty(), "docker got {images}");

    // A docker archive is refused whatever engine is around.
    let file = t.path().join("d.tar");
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--compression", "zstd"])
        .args(["--output", &format!("docker-archive:{}", s(&file))]));
    assert_refused(&out, "docker-archive:");
    assert!(!file.exists());
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);

    // The same image in gzip goes to docker as before.
    let mut c = dp();
    docker.apply(&mut c);
    let out = run(c.arg("pack").arg(corpus::musl_static_hello()).args([
        "--tag",
        "zstd-refused:gz",
        "--load=docker",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    docker.remove_image("zstd-refused:gz");
}

#[test]
fn run_engine_docker_20_10_refuses_a_zstd_image() {
    let docker = engines::docker();
    let t = tmp();
    let dir = t.path().join("lay");
    pack_zstd(
        "zstd-run-engine:v1",
        &["--output", &format!("oci:{}", s(&dir))],
    );
    let mut c = dp();
    docker.apply(&mut c);
    let out = run(c.args(["run", "--engine", "docker", &format!("oci:{}:v1", s(&dir))]));
    assert_refused(&out, "docker 20.10");
}

#[test]
fn build_takes_compression_from_distroless_pack_toml_and_the_flag_over_it() {
    crate::util::require_tool("musl-gcc", "apt-get install -y musl-tools");
    crate::util::require_tool("make", "apt-get install -y make");
    let t = tmp();
    let proj = t.path().join("c-hello");
    std::fs::create_dir(&proj).unwrap();
    for f in ["Makefile", "hello.c"] {
        std::fs::copy(
            crate::util::repo_root().join("images/c-hello").join(f),
            proj.join(f),
        )
        .unwrap();
    }
    std::fs::write(
        proj.join("distroless-pack.toml"),
        "kind = \"c\"\ncompression = \"zstd:5\"\n",
    )
    .unwrap();
    // Builds into a new layout; returns the layer compression of the image,
    // as inspect reads it.
    let build = |name: &str, extra: &[&str]| -> &'static str {
        let lay = t.path().join(name);
        let out = run(dp()
            .arg("build")
            .arg(&proj)
            .args(["--runner", "host", "--output", &format!("oci:{}", s(&lay))])
            .args(extra));
        assert!(out.status.success(), "{}", both(&out));
        let out = run_ok(dp().args(["inspect", "--json", &format!("oci:{}", s(&lay))]));
        match (out.contains(ZSTD), out.contains(".tar+gzip")) {
            (true, false) => "zstd",
            (false, true) => "gzip",
            _ => panic!("{out}"),
        }
    };
    assert_eq!(build("from-file", &[]), "zstd");
    assert_eq!(build("flag", &["--compression", "gzip"]), "gzip");
    // A bad value in the file names the file.
    std::fs::write(proj.join("distroless-pack.toml"), "compression = \"lz4\"\n").unwrap();
    let out = run(dp().arg("build").arg(&proj).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("distroless-pack.toml") && err.contains("\"lz4\""),
        "{err}"
    );
}
