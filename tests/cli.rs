//! Regression tests for the CLI over the pipeline crate: output pre-checks,
//! settings, exit codes, skopeo-style references, stdout behaviour. Each is
//! named after the problem it guards.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::sinks::{pack, s};
use crate::support::{
    corpus,
    registry::{Auth, Registry},
};
use crate::util::{both, dp, run, run_ok, tmp};

/// The `manifest.json` of a docker archive, read with `tar`.
fn docker_manifest(archive: &std::path::Path) -> serde_json::Value {
    let out = run_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg("manifest.json"),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("manifest.json: {e}: {out}"))
}

#[test]
fn docker_archive_reference_names_the_image_not_the_file() {
    let t = tmp();
    let archive = t.path().join("app.tar");
    pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &[
            "--output",
            &format!("docker-archive:{}:myapp:v2", s(&archive)),
        ],
    );
    assert!(
        archive.is_file(),
        "no app.tar in {:?}",
        std::fs::read_dir(t.path()).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    assert_eq!(
        docker_manifest(&archive)[0]["RepoTags"],
        serde_json::json!(["myapp:v2"])
    );
}

#[test]
fn oci_archive_reference_is_the_ref_name_not_part_of_the_file() {
    let t = tmp();
    let archive = t.path().join("app.tar");
    pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &format!("oci-archive:{}:v3", s(&archive))],
    );
    let out = run_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg("index.json"),
    );
    let index: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v3",
        "{index}"
    );
    // And it reads back by that tag.
    run_ok(
        dp().arg("inspect")
            .arg(format!("oci-archive:{}:v3", s(&archive))),
    );
}

#[test]
fn docker_archive_lists_every_tag_in_repo_tags_as_docker_save_does() {
    let t = tmp();
    let archive = t.path().join("d.tar");
    pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &[
            "--tag",
            "hello:latest",
            "--tag",
            "example.com/x/hello:2",
            "--output",
            &format!("docker-archive:{}", s(&archive)),
        ],
    );
    assert_eq!(
        docker_manifest(&archive)[0]["RepoTags"],
        serde_json::json!(["hello:v1", "hello:latest", "example.com/x/hello:2"])
    );
}

#[test]
fn docker_archive_dash_streams_to_stdout_and_no_file_named_dash() {
    let t = tmp();
    let out = Command::new(crate::util::bin())
        .current_dir(t.path())
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--tag", "hello:v1", "--output", "docker-archive:-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert!(!t.path().join("-").exists());
    let archive = t.path().join("from-stdout.tar");
    std::fs::write(&archive, &out.stdout).unwrap();
    assert_eq!(
        docker_manifest(&archive)[0]["RepoTags"],
        serde_json::json!(["hello:v1"])
    );
    // --json would share stdout with the archive: refused before any work.
    let out = run(dp().arg("pack").arg(corpus::musl_static_hello()).args([
        "--json",
        "--output",
        "oci-archive:-",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

#[test]
fn pack_needs_no_file_when_every_platform_has_its_binary() {
    let t = tmp();
    let layout = t.path().join("multi");
    let amd = corpus::musl_static_hello();
    let arm = corpus::zig_arm64_c_hello();
    let out = run_ok(dp().arg("pack").args([
        "--platform",
        "linux/amd64,linux/arm64",
        "--binary",
        &format!("linux/amd64={}", s(&amd)),
        "--binary",
        &format!("linux/arm64={}", s(&arm)),
        "--tag",
        "multi:1",
        "--output",
        &format!("oci:{}", s(&layout)),
    ]));
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    // A platform without a binary still needs FILE, and says so.
    let out = run(dp().arg("pack").args([
        "--platform",
        "linux/amd64,linux/arm64",
        "--binary",
        &format!("linux/arm64={}", s(&arm)),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no binary for linux/amd64"),
        "{}",
        both(&out)
    );
}

#[test]
fn output_precheck_index_to_docker_archive_writes_nothing_and_runs_nothing() {
    let t = tmp();
    let layout = t.path().join("lay");
    let archive = t.path().join("d.tar");
    let out = run(dp().arg("pack").arg(corpus::musl_static_hello()).args([
        "--platform",
        "linux/amd64,linux/arm64",
        "--binary",
        &format!("linux/arm64={}", s(&corpus::zig_arm64_c_hello())),
        "--smoke",
        "--output",
        &format!("oci:{}", s(&layout)),
        "--output",
        &format!("docker-archive:{}", s(&archive)),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("single platform"), "{stderr}");
    assert!(
        !stderr.contains("[ smoke]"),
        "the smoke run ran before the check: {stderr}"
    );
    assert!(
        !layout.exists() && !archive.exists(),
        "an output was written"
    );
}

#[test]
fn exit_code_bad_push_reference_is_2_before_any_work() {
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--push", "Not A/Ref"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("[verify]") && !stderr.contains("[  pack]"),
        "work was done first: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn exit_code_half_set_registry_credentials_is_5() {
    let t = tmp();
    let reg = Registry::start(Auth::Basic {
        user: "me".into(),
        pass: "secret".into(),
    });
    let out = run(dp()
        .env("HOME", t.path())
        .env("DOCKER_CONFIG", t.path().join("docker"))
        .env("DISTROLESS_PACK_REGISTRY_USERNAME", "me")
        .env_remove("DISTROLESS_PACK_REGISTRY_PASSWORD")
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--push", &reg.reference("half:v1")]));
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set both"),
        "{}",
        both(&out)
    );
}

#[test]
fn pack_push_prints_the_pushed_reference_like_push() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let reference = reg.reference("printed:v1");
    let out = run_ok(
        dp().env("HOME", t.path())
            .env("DOCKER_CONFIG", t.path().join("docker"))
            .arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--push", &reference]),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("sha256:"), "{out}");
    let repo = reference.rsplit_once(':').unwrap().0;
    assert_eq!(lines[1], format!("{repo}@{}", lines[0]), "{out}");
}

#[test]
fn inspect_into_a_closed_pipe_exits_quietly_without_a_panic() {
    let t = tmp();
    let layout = t.path().join("lay");
    pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &format!("oci:{}", s(&layout))],
    );
    for json in [false, true] {
        let mut child = Command::new(crate::util::bin())
            .arg("inspect")
            .arg(format!("oci:{}", s(&layout)))
            .args(if json { &["--json"][..] } else { &[][..] })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -c 1`: read one byte, then close the pipe.
        let mut stdout = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        let _ = stdout.read(&mut one);
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
        assert!(!stderr.contains("panicked"), "json={json}: {stderr}");
    }
}

#[test]
fn pack_user_name_without_passwd_is_refused_not_left_to_docker() {
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--user", "app"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--passwd") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--user", "a:b:c"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--passwd", "--user", "nonroot"]),
    );
}

#[test]
fn tag_with_two_colons_names_the_tag_not_lowercase() {
    let out = run(dp()
        .arg("pack")
        .arg(corpus::musl_static_hello())
        .args(["--tag", "a::b"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the tag \":b\" is not valid") && !stderr.contains("lowercase"),
        "{stderr}"
    );
}

#[test]
fn argument_errors_are_one_line_plus_a_hint() {
    let out = run(dp().args(["pack", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("distroless-pack: error: "), "{stderr}");
    assert!(lines[1].starts_with("hint: "), "{stderr}");
}

#[test]
fn login_to_a_bad_registry_name_shows_no_internal_reference() {
    let t = tmp();
    let mut child = dp()
        .env("HOME", t.path())
        .env("DOCKER_CONFIG", t.path().join("docker"))
        .args(["login", "not a host", "-u", "me", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("login-check"), "{stderr}");
    assert!(
        stderr.contains("\"not a host\" is not a registry"),
        "{stderr}"
    );
}
