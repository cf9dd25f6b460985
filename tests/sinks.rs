//! The outputs of `pack` (`--output oci:`/`oci-archive:`/`docker-archive:`,
//! `--load`) checked by the tools that consume them: skopeo, umoci,
//! oci-image-tool, docker and podman. Also the layout guarantees: adding a
//! tag keeps the others, a failed write leaves an existing layout intact.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{corpus, engines};
use crate::util::{both, dp, require_tool, run, run_ok, tmp};

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pack BIN --tag TAG ARGS...`, asserting success; returns the digest
/// printed on stdout.
#[track_caller]
pub(crate) fn pack(bin: &Path, tag: &str, args: &[&str]) -> String {
    let out = run_ok(dp().arg("pack").arg(bin).args(["--tag", tag]).args(args));
    let digest = out.trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "pack printed {out:?}"
    );
    digest
}

fn skopeo() -> PathBuf {
    require_tool("skopeo", "apt-get install -y skopeo")
}

/// `skopeo copy -q SRC oci:COPY:c`: the image of `src` copied into the
/// layout `copy`, tagged `c`.
fn skopeo_copy_to_layout(src: &str, copy: &Path) {
    run_ok(
        Command::new(skopeo())
            .args(["copy", "-q"])
            .arg(src)
            .arg(format!("oci:{}:c", s(copy))),
    );
}

/// `skopeo inspect REF` as JSON (add `--raw`/`--config` through `extra`).
#[track_caller]
pub(crate) fn skopeo_inspect(reference: &str, extra: &[&str]) -> Value {
    let out = run_ok(
        Command::new(skopeo())
            .arg("inspect")
            .args(extra)
            .arg(reference),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo inspect {reference}: {e}: {out}"))
}

/// Asserts skopeo sees the image tagged `tag` in the layout `sink`
/// (`oci:DIR`) with `digest`.
#[track_caller]
fn assert_tag_digest(sink: &str, tag: &str, digest: &str) {
    assert_eq!(
        skopeo_inspect(&format!("{sink}:{tag}"), &[])["Digest"],
        digest
    );
}

/// A layout `DIR/layout` holding the musl hello as `hello:v1`; returns the
/// layout, its `oci:` sink and the image digest.
fn layout_with_hello_v1(dir: &Path) -> (PathBuf, String, String) {
    let layout = dir.join("layout");
    let sink = format!("oci:{}", s(&layout));
    let first = pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &sink],
    );
    (layout, sink, first)
}

/// The manifest digest tagged `tag` in the OCI layout `dir`, from its index.json.
fn layout_digest(dir: &Path, tag: &str) -> Option<String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .map(|m| m["digest"].as_str().unwrap().to_string())
}

#[test]
fn oci_layout_is_accepted_by_skopeo_umoci_and_oci_image_tool() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    let dir = t.path().join("layout");
    let digest = pack(&bin, "hello:v1", &["--output", &format!("oci:{}", s(&dir))]);

    // The tag defaults to the tag of --tag; skopeo sees the same digest.
    assert_eq!(layout_digest(&dir, "v1").as_deref(), Some(digest.as_str()));
    let info = skopeo_inspect(&format!("oci:{}:v1", s(&dir)), &[]);
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");

    // skopeo copy to another layout keeps the digest (nothing converted).
    let copy = t.path().join("copy");
    skopeo_copy_to_layout(&format!("oci:{}:v1", s(&dir)), &copy);
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:c", s(&copy)), &[])["Digest"],
        digest.as_str()
    );

    let oit = require_tool("oci-image-tool", "apt-get install -y oci-image-tool");
    let out = run_ok(
        Command::new(oit)
            .args(["validate", "--type", "image", "--ref", "name=v1"])
            .arg(&dir),
    );
    assert!(out.contains("Validation succeeded"), "{out}");

    // umoci unpacks exactly /app and /app/hello (0755, the binary's bytes),
    // and the unpacked program runs in that otherwise empty root.
    let umoci = require_tool("umoci", "apt-get install -y umoci");
    let bundle = t.path().join("bundle");
    run_ok(
        Command::new(umoci)
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", s(&dir)))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let mut found = Vec::new();
    for e in walk(&rootfs) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(&e).unwrap();
        found.push((
            e.strip_prefix(&rootfs).unwrap().display().to_string(),
            m.mode() & 0o7777,
            m.uid(),
        ));
    }
    found.sort();
    let name = bin.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        found,
        vec![
            ("app".to_string(), 0o755, 0),
            (format!("app/{name}"), 0o755, 0)
        ]
    );
    assert_eq!(
        std::fs::read(rootfs.join("app").join(name)).unwrap(),
        std::fs::read(&bin).unwrap()
    );
    require_tool("chroot", "apt-get install -y coreutils");
    let out = run_ok(
        Command::new("chroot")
            .arg(&rootfs)
            .arg(format!("/app/{name}")),
    );
    assert_eq!(out.trim(), corpus::HELLO);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn oci_archive_is_accepted_by_skopeo() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    let file = t.path().join("hello.oci.tar");
    let digest = pack(
        &bin,
        "hello:v1",
        &["--output", &format!("oci-archive:{}", s(&file))],
    );
    let info = skopeo_inspect(&format!("oci-archive:{}", s(&file)), &[]);
    assert_eq!(info["Digest"], digest.as_str());
    let copy = t.path().join("copy");
    skopeo_copy_to_layout(&format!("oci-archive:{}", s(&file)), &copy);
    assert_eq!(layout_digest(&copy, "c").as_deref(), Some(digest.as_str()));
    // No temp file is left beside it.
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn docker_archive_is_accepted_by_skopeo() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    let file = t.path().join("hello.docker.tar");
    let oci = t.path().join("layout");
    pack(
        &bin,
        "hello:v1",
        &[
            "--output",
            &format!("docker-archive:{}", s(&file)),
            "--output",
            &format!("oci:{}", s(&oci)),
        ],
    );
    // skopeo reads it through manifest.json (as docker does) and rebuilds a
    // docker manifest, so compare what survives any conversion: the layers'
    // uncompressed digests and the config.
    let ours = skopeo_inspect(&format!("oci:{}:v1", s(&oci)), &["--config"]);
    let theirs = skopeo_inspect(&format!("docker-archive:{}", s(&file)), &["--config"]);
    assert_eq!(theirs["rootfs"]["diff_ids"], ours["rootfs"]["diff_ids"]);
    assert_eq!(theirs["config"]["Entrypoint"], ours["config"]["Entrypoint"]);
    let info = skopeo_inspect(&format!("docker-archive:{}", s(&file)), &[]);
    assert_eq!(info["Architecture"], "amd64");
    let copy = t.path().join("copy");
    skopeo_copy_to_layout(&format!("docker-archive:{}", s(&file)), &copy);
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:c", s(&copy)), &["--config"])["rootfs"]["diff_ids"],
        ours["rootfs"]["diff_ids"]
    );
}

#[test]
fn adding_a_tag_to_a_layout_keeps_the_first() {
    let t = tmp();
    let (dir, sink, first) = layout_with_hello_v1(t.path());
    let second = pack(&corpus::go_static_hello(), "hello:v2", &["--output", &sink]);
    assert_ne!(first, second);
    assert_tag_digest(&sink, "v1", &first);
    assert_tag_digest(&sink, "v2", &second);
    // An explicit :TAG wins over --tag; re-using a tag replaces only it.
    let third = pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &format!("{sink}:v2"), "--", "x"],
    );
    assert_tag_digest(&sink, "v2", &third);
    assert_tag_digest(&sink, "v1", &first);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    let oit = require_tool("oci-image-tool", "apt-get install -y oci-image-tool");
    for tag in ["v1", "v2"] {
        run_ok(
            Command::new(&oit)
                .args([
                    "validate",
                    "--type",
                    "image",
                    "--ref",
                    &format!("name={tag}"),
                ])
                .arg(&dir),
        );
    }
}

#[test]
fn concurrent_packs_into_one_layout_keep_every_tag() {
    let t = tmp();
    let dir = t.path().join("layout");
    let bin = corpus::musl_static_hello();
    let children: Vec<_> = (0..6)
        .map(|i| {
            dp().arg("pack")
                .arg(&bin)
                .args(["--tag", &format!("hello:c{i}"), "--output"])
                .arg(format!("oci:{}", s(&dir)))
                .args(["--", &format!("arg{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", both(&out));
    }
    for i in 0..6 {
        assert!(
            layout_digest(&dir, &format!("c{i}")).is_some(),
            "tag c{i} lost from {}",
            String::from_utf8_lossy(&std::fs::read(dir.join("index.json")).unwrap())
        );
    }
}

/// Asserts every file of the snapshot `before` is in `after`, unchanged.
#[track_caller]
fn assert_files_kept(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) {
    for (name, bytes) in before {
        assert!(
            after.iter().any(|(n, b)| n == name && b == bytes),
            "{name} changed"
        );
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_failed_write_leaves_an_existing_layout_intact() {
    let t = tmp();
    let (dir, sink, first) = layout_with_hello_v1(t.path());
    let before = snapshot(&dir);

    // Learn the new image's layer digest from a scratch layout (packing is
    // reproducible), then put a directory where that blob must go.
    let scratch = t.path().join("scratch");
    let go = corpus::go_static_hello();
    pack(
        &go,
        "hello:v2",
        &["--output", &format!("oci:{}", s(&scratch))],
    );
    let layer = skopeo_inspect(&format!("oci:{}:v2", s(&scratch)), &[])["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let obstacle = dir
        .join("blobs/sha256")
        .join(layer.strip_prefix("sha256:").unwrap());
    std::fs::create_dir_all(obstacle.join("in-the-way")).unwrap();

    let out = run(dp()
        .arg("pack")
        .arg(&go)
        .args(["--tag", "hello:v2", "--output", &sink]));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(s(&dir)) && err.lines().filter(|l| l.contains("error")).count() == 1,
        "{err}"
    );

    // Every file that was there is unchanged, index.json still names only v1, no temp files.
    let after = snapshot(&dir);
    assert_files_kept(&before, &after);
    assert!(
        after.iter().all(|(n, _)| !n.contains("tmp")),
        "temp file left: {:?}",
        after.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    assert_tag_digest(&sink, "v1", &first);
    assert_eq!(layout_digest(&dir, "v2"), None);

    // Once the obstacle is gone the same command works and both tags are there.
    std::fs::remove_dir_all(&obstacle).unwrap();
    let second = pack(&go, "hello:v2", &["--output", &sink]);
    assert_tag_digest(&sink, "v1", &first);
    assert_tag_digest(&sink, "v2", &second);
}

#[test]
fn outputs_refuse_what_is_in_the_way() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    // A directory with other files in it is not taken over.
    let mine = t.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    // A regular file where the layout should be.
    let file = t.path().join("file");
    std::fs::write(&file, "keep me too").unwrap();
    let cases = [
        (format!("oci:{}", s(&mine)), "is not an OCI image layout"),
        (format!("oci:{}", s(&file)), "not a directory"),
        (format!("oci-archive:{}", s(&mine)), "is a directory"),
        (
            format!("docker-archive:{}/missing/x.tar", s(t.path())),
            "no such directory",
        ),
    ];
    for (sink, message) in cases {
        let out = run(dp()
            .arg("pack")
            .arg(&bin)
            .args(["--tag", "hello:v1", "--output", &sink]));
        assert_eq!(out.status.code(), Some(8), "{sink}: {}", both(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{sink}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me too");
    // A malformed sink is a usage error.
    let out = run(dp().arg("pack").arg(&bin).args(["--output", "zip:x"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown format \"zip\""),
        "{}",
        both(&out)
    );
}

/// An archive, `--digest-file` or `--sbom-output` that cannot be written is
/// refused before anything runs: no layout beside it is written, no build
/// runs, and the one error line names the file.
#[test]
fn a_file_output_that_cannot_be_written_stops_the_command_before_it_starts() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    let missing = t.path().join("missing");
    let a_dir = t.path().join("a-dir");
    std::fs::create_dir(&a_dir).unwrap();
    let layout = t.path().join("layout");
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec!["--sbom-output".into(), format!("{}/sbom.json", s(&missing))],
            format!("writing the SBOM to {}/sbom.json", s(&missing)),
            "no such directory (create it first)",
        ),
        (
            vec!["--sbom-output".into(), s(&a_dir).into()],
            format!("writing the SBOM to {}", s(&a_dir)),
            "is a directory",
        ),
        (
            vec!["--digest-file".into(), format!("{}/digest", s(&missing))],
            format!("writing the digest to {}/digest", s(&missing)),
            "no such directory (create it first)",
        ),
        (
            vec![
                "--output".into(),
                format!("oci-archive:{}/x.tar", s(&missing)),
            ],
            format!("writing oci-archive:{}/x.tar", s(&missing)),
            "no such directory (create it first)",
        ),
    ];
    for (args, names, why) in &cases {
        let out = run(dp()
            .arg("pack")
            .arg(&bin)
            .args(["--tag", "hello:v1", "--output"])
            .arg(format!("oci:{}", s(&layout)))
            .args(args));
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", both(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert!(
            errors[0].contains(names.as_str()) && errors[0].contains(why),
            "{args:?}: {err}"
        );
        assert!(
            !errors[0].contains(".distroless-pack"),
            "a temp name: {err}"
        );
        assert!(!err.contains("[verify]"), "{args:?}: verify ran: {err}");
        assert!(!layout.exists(), "{args:?}: the layout was written");
    }
    // `build` stops before the compiler runs
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    let project = t.path().join("c-hello");
    std::fs::create_dir(&project).unwrap();
    for f in ["Makefile", "hello.c", "distroless-pack.toml"] {
        std::fs::copy(
            crate::util::repo_root().join("images/c-hello").join(f),
            project.join(f),
        )
        .unwrap();
    }
    let out = run(dp()
        .arg("build")
        .arg(&project)
        .args(["--runner", "host", "--sbom-output"])
        .arg(missing.join("sbom.json")));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    assert!(
        !project.join("c-hello").exists(),
        "make ran: {}",
        both(&out)
    );
    // a FIFO-like destination is written in place
    let out = run(dp()
        .arg("pack")
        .arg(&bin)
        .args([
            "--tag",
            "hello:v1",
            "--sbom-output",
            "/dev/stdout",
            "--output",
        ])
        .arg(format!("oci:{}", s(&layout))));
    assert!(out.status.success(), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"spdxVersion\":\"SPDX-2.3\""), "{stdout}");
}

// ------------------------------------------------------------ docker and podman

/// The engines the test harness runs (tests/support/engines.rs): a command
/// for each CLI, with the private DOCKER_HOST / containers.conf set.
fn docker() -> Command {
    engines::docker().cmd()
}

fn podman() -> Command {
    engines::podman().cmd()
}

/// `distroless-pack` with an engine's environment (so `--load` talks to
/// the harness's engine).
fn dp_for(engine: &engines::Engine) -> Command {
    let mut c = dp();
    engine.apply(&mut c);
    c
}

/// Runs the image `name` in `engine` with `args`; returns the output.
fn engine_run(mut engine: Command, name: &str, extra: &[&str]) -> std::process::Output {
    run(engine
        .args(["run", "--rm", "--pull=never", "--network=none"])
        .args(extra)
        .arg(name))
}

#[test]
fn docker_archive_loads_and_runs_in_docker() {
    let t = tmp();
    let file = t.path().join("hello.docker.tar");
    pack(
        &corpus::musl_static_hello(),
        "sinks-docker-archive:v1",
        &[
            "--output",
            &format!("docker-archive:{}", s(&file)),
            "--",
            "a",
        ],
    );
    let out = run_ok(docker().arg("load").arg("-i").arg(&file));
    assert!(
        out.contains("Loaded image: sinks-docker-archive:v1"),
        "{out}"
    );
    let out = engine_run(docker(), "sinks-docker-archive:v1", &[]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

#[test]
fn docker_archive_loads_and_runs_in_podman() {
    let t = tmp();
    let file = t.path().join("hello.docker.tar");
    pack(
        &corpus::musl_static_hello(),
        "sinks-podman-archive:v1",
        &["--output", &format!("docker-archive:{}", s(&file))],
    );
    let out = run_ok(podman().arg("load").arg("-i").arg(&file));
    assert!(out.contains("sinks-podman-archive:v1"), "{out}");
    let out = engine_run(podman(), "sinks-podman-archive:v1", &[]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

#[test]
fn load_puts_the_image_into_docker_and_podman() {
    let bin = corpus::musl_static_hello();
    for (engine, flag) in [
        (engines::docker(), "--load=docker"),
        (engines::podman(), "--load=podman"),
    ] {
        let name = format!("sinks-load-{}:v1", &flag[7..]);
        let out = run(dp_for(&engine)
            .arg("pack")
            .arg(&bin)
            .args(["--tag", &name, flag]));
        assert!(out.status.success(), "{flag}: {}", both(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("sinks-load-{}:v1 into {}", &flag[7..], &flag[7..])),
            "{flag}: {err}"
        );
        let run_out = engine_run(engine.cmd(), &name, &[]);
        assert!(run_out.status.success(), "{flag}: {}", both(&run_out));
        assert_eq!(
            String::from_utf8_lossy(&run_out.stdout).trim(),
            corpus::HELLO
        );
    }
    // --load alone picks docker when its daemon answers.
    let out = run(dp_for(&engines::docker()).arg("pack").arg(&bin).args([
        "--tag",
        "sinks-load-auto:v1",
        "--load",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("into docker"),
        "{}",
        both(&out)
    );
}

#[test]
fn load_says_which_engine_is_missing() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    let out = run(dp()
        .env("DOCKER_HOST", format!("unix://{}/none.sock", s(t.path())))
        .arg("pack")
        .arg(&bin)
        .arg("--load=docker"));
    assert_eq!(out.status.code(), Some(6), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("docker is installed but its daemon does not answer")
            && err.contains("start dockerd"),
        "{err}"
    );
    // With no docker or podman on PATH at all.
    let out = run(dp()
        .env("PATH", t.path())
        .arg("pack")
        .arg(&bin)
        .arg("--load"));
    assert_eq!(out.status.code(), Some(6), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("docker is not installed (install it with `apt-get install -y docker.io`)")
            && err.contains("podman is not installed"),
        "{err}"
    );
}

#[test]
fn a_dynamic_binary_forced_in_fails_in_docker_with_no_such_file() {
    let t = tmp();
    let file = t.path().join("dyn.tar");
    let out = run(dp().arg("pack").arg(corpus::glibc_dynamic_hello()).args([
        "--no-verify",
        "--tag",
        "sinks-dynamic:v1",
        "--output",
        &format!("docker-archive:{}", s(&file)),
    ]));
    assert!(out.status.success(), "{}", both(&out));
    run_ok(docker().arg("load").arg("-i").arg(&file));
    let out = engine_run(docker(), "sinks-dynamic:v1", &[]);
    assert!(!out.status.success(), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exec /app/") && err.contains("no such file or directory"),
        "{err}"
    );
}

/// images/go-http, built once per test run.
fn go_http() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        require_tool("go", "apt-get install -y golang-go");
        let dir = tempfile::Builder::new()
            .prefix("dp-go-http-")
            .tempdir()
            .unwrap()
            .keep();
        let out = dir.join("go-http");
        run_ok(Command::new(crate::util::repo_root().join("images/go-http/build.sh")).arg(&out));
        out
    })
    .clone()
}

#[test]
fn go_server_answers_from_inside_docker_and_podman() {
    let t = tmp();
    let file = t.path().join("go-http.tar");
    pack(
        &go_http(),
        "sinks-go-http:v1",
        &[
            "--port",
            "8080",
            "--output",
            &format!("docker-archive:{}", s(&file)),
        ],
    );

    // docker, then podman, publishes the port: -p 127.0.0.1:PORT:8080 (the
    // harness's dockerd has a bridge and forwards with docker-proxy, no
    // iptables). Each container is removed before the next engine starts.
    for engine in [engines::docker(), engines::podman()] {
        let name = engine.name();
        engine.run_ok(&["load", "-i", s(&file)]);
        let port = engines::free_port();
        let c = engine.run_detached(&[
            "--rm",
            "--pull=never",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "sinks-go-http:v1",
        ]);
        let reply = engines::http_get(port, "/", std::time::Duration::from_secs(20));
        let (status, body) = reply.unwrap_or_else(|e| panic!("{name}: {e}\nlogs: {}", c.logs()));
        assert_eq!((status, body.as_str()), (200, "hello from go-http\n"));
    }
}

/// A musl-static hello carrying `mb` MiB of incompressible data (so writing
/// its layer takes a while), built in `dir`.
pub(crate) fn big_static_binary(dir: &Path, mb: usize) -> PathBuf {
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    let data = dir.join("payload.bin");
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut bytes = Vec::with_capacity(mb << 20);
    while bytes.len() < mb << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&data, &bytes).unwrap();
    let src = dir.join("big.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__asm__(\".section .rodata\\n.globl payload\\npayload: .incbin \\\"{}\\\"\\n.text\\n\");\nint main(void) {{ puts(\"{}\"); return 0; }}\n",
            s(&data),
            corpus::HELLO
        ),
    )
    .unwrap();
    let bin = dir.join("big");
    run_ok(
        Command::new("musl-gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(&src),
    );
    std::fs::remove_file(&data).unwrap();
    bin
}

/// Starts `pack BIN --tag TAG --output SINK` and SIGKILLs it as soon as a
/// file whose name contains `marker` appears in `watch`. Panics if pack
/// ends first.
fn pack_and_kill(bin: &Path, tag: &str, sink: &str, watch: &Path, marker: &str) {
    let mut child = dp()
        .arg("pack")
        .arg(bin)
        .args(["--tag", tag, "--output", sink])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let seen = std::fs::read_dir(watch)
            .map(|r| {
                r.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(marker))
            })
            .unwrap_or(false);
        if seen {
            child.kill().unwrap();
            child.wait().unwrap();
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "pack ended ({status}) before a {marker}* file appeared in {}",
                watch.display()
            );
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "pack did not get to writing {sink}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_run_killed_while_writing_leaves_the_layout_and_archive_usable() {
    let t = tmp();
    let dir = t.path().join("layout");
    let sink = format!("oci:{}", s(&dir));
    let archive = t.path().join("hello.tar");
    let archive_sink = format!("oci-archive:{}", s(&archive));
    let first = pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &sink, "--output", &archive_sink],
    );
    let old_archive = std::fs::read(&archive).unwrap();
    let big = big_static_binary(t.path(), 16);
    let before = snapshot(&dir);

    // Killed while a blob is being copied into the layout.
    pack_and_kill(&big, "hello:v2", &sink, &dir, ".distroless-pack-tmp-");
    // The layout still holds v1 exactly and no v2 entry; tools accept it.
    let after = snapshot(&dir);
    assert_files_kept(&before, &after);
    assert_eq!(layout_digest(&dir, "v2"), None);
    assert_tag_digest(&sink, "v1", &first);
    let oit = require_tool("oci-image-tool", "apt-get install -y oci-image-tool");
    run_ok(
        Command::new(&oit)
            .args(["validate", "--type", "image", "--ref", "name=v1"])
            .arg(&dir),
    );

    // Killed while the archive's temp file is being written: the old
    // archive is still there, whole.
    pack_and_kill(&big, "hello:v2", &archive_sink, t.path(), TMP);
    assert_eq!(std::fs::read(&archive).unwrap(), old_archive);
    assert_eq!(skopeo_inspect(&archive_sink, &[])["Digest"], first.as_str());

    // A later run completes and adds v2 next to v1.
    let second = pack(&big, "hello:v2", &["--output", &sink]);
    assert_tag_digest(&sink, "v2", &second);
    assert_tag_digest(&sink, "v1", &first);
}

/// The names in `dir` that are temp files of ours.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TMP))
        .collect()
}

/// Starts `pack BIN --output SINK`, and once a temp file of ours shows up
/// in `watch` sends it `signal` (`TERM`, `INT`, `KILL`); returns its exit.
fn pack_and_signal(bin: &Path, sink: &str, watch: &Path, signal: &str) -> std::process::ExitStatus {
    let mut child = dp()
        .arg("pack")
        .arg(bin)
        .args(["--tag", "big:v2", "--output", sink])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if std::fs::read_dir(watch).is_ok() && !temp_files(watch).is_empty() {
            run_ok(
                Command::new("kill")
                    .arg(format!("-{signal}"))
                    .arg(child.id().to_string()),
            );
            return child.wait().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "pack ended ({status}) before writing a temp file in {}",
                watch.display()
            );
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "pack did not get to writing {sink}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn sigterm_or_sigint_while_writing_removes_the_temp_files() {
    use std::os::unix::process::ExitStatusExt;
    let t = tmp();
    let big = big_static_binary(t.path(), 32);
    let dir = t.path().join("layout");
    let sink = format!("oci:{}", s(&dir));
    let first = pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &sink],
    );
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let status = pack_and_signal(&big, &sink, &dir, signal);
        assert_eq!(
            status.code(),
            Some(code),
            "SIG{signal}: {status:?} {:?}",
            status.signal()
        );
        assert_eq!(
            temp_files(&dir),
            Vec::<String>::new(),
            "SIG{signal} left temp files in the layout"
        );
        assert_tag_digest(&sink, "v1", &first);
        let archive = format!("docker-archive:{}", s(&out.join("big.tar")));
        let status = pack_and_signal(&big, &archive, &out, signal);
        assert_eq!(status.code(), Some(code), "SIG{signal}: {status:?}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "SIG{signal} left something next to the archive"
        );
    }
}

#[test]
fn temp_files_a_sigkill_left_are_removed_by_the_next_write() {
    let t = tmp();
    let big = big_static_binary(t.path(), 32);
    let dir = t.path().join("layout");
    let sink = format!("oci:{}", s(&dir));
    pack(
        &corpus::musl_static_hello(),
        "hello:v1",
        &["--output", &sink],
    );
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let archive = format!("oci-archive:{}", s(&out.join("big.tar")));
    for _ in 0..2 {
        pack_and_signal(&big, &sink, &dir, "KILL");
        pack_and_signal(&big, &archive, &out, "KILL");
    }
    assert!(!temp_files(&dir).is_empty(), "SIGKILL cannot clean up");
    assert!(!temp_files(&out).is_empty());
    // the next write into the same place removes them (their pids are dead)
    pack(
        &corpus::musl_static_hello(),
        "hello:v3",
        &["--output", &sink],
    );
    assert_eq!(temp_files(&dir), Vec::<String>::new());
    pack(
        &corpus::musl_static_hello(),
        "hello:v3",
        &["--output", &archive],
    );
    assert_eq!(temp_files(&out), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

const TMP: &str = ".distroless-pack-tmp-";

#[test]
fn outputs_never_replace_what_is_not_a_regular_file() {
    let bin = corpus::musl_static_hello();
    let t = tmp();
    // /dev/null stays the character device (as root this replaced it)
    for sink in ["docker-archive:/dev/null", "oci-archive:/dev/null"] {
        pack(
            &bin,
            "hello:v1",
            &["--output", sink, "--digest-file", "/dev/null"],
        );
        let m = std::fs::metadata("/dev/null").unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(m.file_type().is_char_device(), "{sink} replaced /dev/null");
    }
    // a symlink is followed: its target is replaced, the link stays
    let real = t.path().join("real.tar");
    std::fs::write(&real, "old").unwrap();
    let link = t.path().join("link.tar");
    std::os::unix::fs::symlink("real.tar", &link).unwrap();
    let dlink = t.path().join("digest.link");
    std::os::unix::fs::symlink("digest.txt", &dlink).unwrap();
    let digest = pack(
        &bin,
        "hello:v1",
        &[
            "--output",
            &format!("oci-archive:{}", s(&link)),
            "--digest-file",
            s(&dlink),
        ],
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(&dlink)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        skopeo_inspect(&format!("oci-archive:{}", s(&real)), &[])["Digest"],
        digest.as_str()
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("digest.txt")).unwrap(),
        digest
    );
    // a FIFO is written as a stream: what comes out is the archive
    let fifo = t.path().join("pipe");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let copy = t.path().join("from-pipe.tar");
    let reader = {
        let (fifo, copy) = (fifo.clone(), copy.clone());
        std::thread::spawn(move || std::fs::write(&copy, std::fs::read(&fifo).unwrap()).unwrap())
    };
    let digest = pack(
        &bin,
        "hello:v1",
        &["--output", &format!("docker-archive:{}", s(&fifo))],
    );
    reader.join().unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // the same bytes as the archive written to a regular file (deterministic)
    let regular = t.path().join("regular.tar");
    let again = pack(
        &bin,
        "hello:v1",
        &["--output", &format!("docker-archive:{}", s(&regular))],
    );
    assert_eq!(again, digest);
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(&regular).unwrap(),
        "the stream differs from the file"
    );
    // /dev/stdout is the descriptor it is open on (here a file): the archive
    // goes there in place, followed by the digest line pack prints
    let captured = t.path().join("stdout.bin");
    let status = dp()
        .arg("pack")
        .arg(&bin)
        .args([
            "--tag",
            "hello:v1",
            "--output",
            "docker-archive:/dev/stdout",
        ])
        .stdout(std::fs::File::create(&captured).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let got = std::fs::read(&captured).unwrap();
    let want = std::fs::read(&regular).unwrap();
    assert!(
        got.starts_with(&want),
        "stdout does not start with the archive"
    );
    assert_eq!(String::from_utf8_lossy(&got[want.len()..]).trim(), digest);
    // anything else (a socket) is refused, by name, and left alone
    let sock = t.path().join("s.sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = run(dp().arg("pack").arg(&bin).args([
        "--tag",
        "hello:v1",
        "--output",
        &format!("oci-archive:{}", s(&sock)),
    ]));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(s(&sock)) && err.contains("is a socket"),
        "{err}"
    );
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    assert!(temp_files(t.path()).is_empty());
}

/// `pack` run under `umask`.
fn pack_with_umask(umask: &str, bin: &Path, sinks: &[String]) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(crate::util::bin())
        .arg("pack")
        .arg(bin)
        .args(["--tag", "hello:v1"]);
    for sink in sinks {
        c.args(["--output", sink]);
    }
    run_ok(&mut c);
}

#[test]
fn layout_and_archive_files_follow_the_umask_and_other_users_can_read_them() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = require_tool("setpriv", "apt-get install -y util-linux");
    let bin = corpus::musl_static_hello();
    let t = tmp();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (umask, file, dir) in [("022", 0o644, 0o755), ("077", 0o600, 0o700)] {
        let layout = t.path().join(format!("layout-{umask}"));
        let archive = t.path().join(format!("hello-{umask}.tar"));
        let sinks = vec![
            format!("oci:{}", s(&layout)),
            format!("oci-archive:{}", s(&archive)),
        ];
        pack_with_umask(umask, &bin, &sinks);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&archive), file, "{umask}: archive");
        assert_eq!(mode(&layout), dir, "{umask}: layout dir");
        for p in walk(&layout) {
            let want = if p.is_dir() { dir } else { file };
            assert_eq!(mode(&p), want, "umask {umask}: {}", p.display());
        }
        // skopeo as another user (nobody)
        let as_nobody = |src: &str| {
            run(Command::new(&setpriv)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .env("HOME", "/tmp")
                .arg(skopeo())
                .arg("inspect")
                .arg(src))
        };
        for src in [
            format!("oci:{}:v1", s(&layout)),
            format!("oci-archive:{}", s(&archive)),
        ] {
            let out = as_nobody(&src);
            if umask == "022" {
                assert!(
                    out.status.success(),
                    "nobody cannot read {src}: {}",
                    both(&out)
                );
            } else {
                assert!(!out.status.success(), "umask 077 but nobody reads {src}");
            }
        }
    }
}

#[test]
fn a_write_error_names_the_output_once_without_temp_names_or_doubled_os_errors() {
    let bin = corpus::musl_static_hello();
    // nothing can be created in /proc: the temp file cannot be made
    let out = run(dp().arg("pack").arg(&bin).args([
        "--tag",
        "hello:v1",
        "--output",
        "oci-archive:/proc/hello.tar",
    ]));
    assert_eq!(out.status.code(), Some(8), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let err = errors[0];
    assert!(err.contains("/proc/hello.tar"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(
        !err.contains(TMP) && !err.contains(".tmp"),
        "names a temp file: {err}"
    );
}
