//! `distroless-pack inspect`: every source kind, human and `--json`, against
//! what `pack` printed and what the tar layer holds; an index (two
//! platforms) and `--platform`; a plain `docker save`-style archive written
//! by skopeo; unreadable sources.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::sinks::{pack, s, skopeo_inspect};
use crate::support::corpus;
use crate::util::{both, dp, require_tool, run, run_ok, tmp};

#[track_caller]
fn inspect_json(source: &str, extra: &[&str]) -> Value {
    let out = run_ok(dp().args(["inspect", "--json"]).args(extra).arg(source));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect --json {source}: {e}\n{out}"))
}

/// Packs the musl hello with a bit of everything in its config into all
/// three sinks; returns (digest, [sources]).
fn packed(dir: &Path) -> (String, Vec<String>) {
    let bin = corpus::musl_static_hello();
    let sources = vec![
        format!("oci:{}:v1", s(&dir.join("layout"))),
        format!("oci-archive:{}", s(&dir.join("hello.oci.tar"))),
        format!("docker-archive:{}", s(&dir.join("hello.docker.tar"))),
    ];
    let mut args: Vec<&str> = Vec::new();
    for src in &sources {
        args.extend(["--output", src.as_str()]);
    }
    args.extend([
        "--env",
        "GREETING=hi",
        "--port",
        "8080",
        "--workdir",
        "/app",
        "--label",
        "org.example.team=infra",
        "--",
        "arg1",
    ]);
    (pack(&bin, "example.com/hello:v1", &args), sources)
}

#[test]
fn json_describes_every_sink_kind_the_same() {
    let t = tmp();
    let (digest, sources) = packed(t.path());
    let bin = corpus::musl_static_hello();
    let name = bin.file_name().unwrap().to_str().unwrap();
    let size = std::fs::metadata(&bin).unwrap().len();
    let mut first: Option<Value> = None;
    for src in &sources {
        let doc = inspect_json(src, &[]);
        assert_eq!(doc["digest"], digest.as_str(), "{src}");
        assert_eq!(
            doc["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(doc["source"], src.as_str());
        assert!(
            doc.get("platforms").is_none(),
            "a single image lists no platforms"
        );
        let img = &doc["images"][0];
        assert_eq!(img["digest"], digest.as_str());
        assert_eq!(img["platform"], "linux/amd64");
        let c = &img["config"];
        assert_eq!(c["entrypoint"], serde_json::json!([format!("/app/{name}")]));
        assert_eq!(c["cmd"], serde_json::json!(["arg1"]));
        assert!(
            c["env"].as_array().unwrap().contains(&"GREETING=hi".into()),
            "{c}"
        );
        assert_eq!(c["user"], "65532:65532");
        assert_eq!(c["workdir"], "/app");
        assert_eq!(c["ports"], serde_json::json!(["8080/tcp"]));
        assert_eq!(c["labels"]["org.example.team"], "infra");
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        let layers = img["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        let l = &layers[0];
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert!(l["diffId"].as_str().unwrap().starts_with("sha256:"));
        let files: BTreeMap<String, Value> = l["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
            .collect();
        let app = &files[&format!("/app/{name}")];
        assert_eq!(
            (
                app["type"].as_str(),
                app["mode"].as_str(),
                app["size"].as_u64()
            ),
            (Some("file"), Some("0755"), Some(size))
        );
        assert_eq!(
            (app["uid"].as_u64(), app["gid"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(files["/app"]["type"], "dir");
        assert_eq!(files.len(), 2, "{files:?}");
        // The documents `pack` attaches (SBOM, provenance) are kept by the
        // OCI formats and left out of a docker archive, which cannot hold them.
        let attached = img["referrers"].as_array().map_or(0, Vec::len);
        let want = if src.starts_with("docker-archive:") {
            0
        } else {
            2
        };
        assert_eq!(attached, want, "{src}: {:#}", img["referrers"]);
        // The same image whatever the format.
        let mut same = doc.clone();
        same["source"] = Value::Null;
        same["images"][0]["referrers"] = Value::Null;
        match &first {
            None => first = Some(same),
            Some(f) => assert_eq!(f, &same, "{src} differs from {}", sources[0]),
        }
    }
    // And skopeo agrees on the layer digest.
    let layer = skopeo_inspect(&sources[0], &[])["Layers"][0].clone();
    assert_eq!(first.unwrap()["images"][0]["layers"][0]["digest"], layer);
}

#[test]
fn human_output_shows_digest_config_and_files() {
    let t = tmp();
    let (digest, sources) = packed(t.path());
    let name = corpus::musl_static_hello()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for src in &sources {
        let out = run_ok(dp().arg("inspect").arg(src));
        for want in [
            format!("digest:      {digest}"),
            "platform:    linux/amd64".to_string(),
            format!("entrypoint:  [\"/app/{name}\"]"),
            "user:        65532:65532".to_string(),
            "ports:       [\"8080/tcp\"]".to_string(),
            "  GREETING=hi".to_string(),
            "  org.example.team=infra".to_string(),
            "layers:      1".to_string(),
        ] {
            assert!(out.contains(&want), "{src}: no {want:?} in\n{out}");
        }
        let line = out
            .lines()
            .find(|l| l.ends_with(&format!(" /app/{name}")))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.trim_start().starts_with("-rwxr-xr-x     0/0"),
            "{line}"
        );
    }
    // A bare path is recognised too (directory = layout, tar = archive).
    let out = run_ok(dp().arg("inspect").arg(t.path().join("hello.docker.tar")));
    assert!(
        out.contains(&digest) && out.contains("source:      docker-archive:"),
        "{out}"
    );
}

#[test]
fn reads_a_docker_save_archive_written_by_skopeo() {
    // skopeo writes docker-archive the way `docker save` does: manifest.json,
    // <id>.json config, uncompressed layer tars, no OCI layout.
    let skopeo = require_tool("skopeo", "apt-get install -y skopeo");
    let t = tmp();
    let (_, sources) = packed(t.path());
    let saved = t.path().join("saved.tar");
    run_ok(
        Command::new(skopeo)
            .args(["copy", "-q", &sources[0]])
            .arg(format!("docker-archive:{}:saved:1", s(&saved))),
    );
    let doc = inspect_json(&format!("docker-archive:{}", s(&saved)), &[]);
    let ours = inspect_json(&sources[0], &[]);
    let img = &doc["images"][0];
    // Layers are uncompressed there: their digest is their diff_id.
    let l = &img["layers"][0];
    assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(l["digest"], l["diffId"]);
    assert_eq!(l["diffId"], ours["images"][0]["layers"][0]["diffId"]);
    assert_eq!(l["files"], ours["images"][0]["layers"][0]["files"]);
    assert_eq!(
        img["config"]["entrypoint"],
        ours["images"][0]["config"]["entrypoint"]
    );
}

#[test]
fn reads_what_docker_save_writes() {
    // docker 20.10's own `docker save`: manifest.json, <config>.json,
    // <id>/layer.tar (uncompressed), repositories.
    let docker = crate::support::engines::docker();
    let t = tmp();
    let (_, sources) = packed(t.path());
    docker.run_ok(&["load", "-i", &sources[2]["docker-archive:".len()..]]);
    let saved = t.path().join("docker-save.tar");
    docker.run_ok(&["save", "-o", s(&saved), "example.com/hello:v1"]);
    let doc = inspect_json(s(&saved), &[]);
    let ours = inspect_json(&sources[0], &[]);
    assert_eq!(doc["source"], format!("docker-archive:{}", s(&saved)));
    let (l, o) = (
        &doc["images"][0]["layers"][0],
        &ours["images"][0]["layers"][0],
    );
    assert_eq!(l["digest"], o["diffId"]);
    assert_eq!(l["files"], o["files"]);
    assert_eq!(
        doc["images"][0]["config"]["cmd"],
        serde_json::json!(["arg1"])
    );
}

#[test]
fn an_index_lists_its_platforms_and_platform_picks_one() {
    let t = tmp();
    let amd = t.path().join("amd");
    let arm = t.path().join("arm");
    let d_amd = pack(
        &corpus::go_static_hello(),
        "hello:v1",
        &["--output", &format!("oci:{}", s(&amd))],
    );
    let d_arm = pack(
        &corpus::go_arm64_hello(),
        "hello:v1",
        &[
            "--platform",
            "linux/arm64",
            "--output",
            &format!("oci:{}", s(&arm)),
        ],
    );
    // Put both under one index with the library (what multi-platform pack does).
    let read =
        |dir: &Path| match distroless_pack_ship::read(&format!("oci:{}", s(dir)).parse().unwrap())
            .unwrap()
        {
            distroless_pack_image::Artifact::Image(i) => i,
            other => panic!("expected an image, got {other:?}"),
        };
    let index =
        distroless_pack_image::Index::new(vec![read(&amd), read(&arm)], &BTreeMap::new()).unwrap();
    let artifact = distroless_pack_image::Artifact::Index(index);
    let multi = format!("oci:{}:multi", s(&t.path().join("multi")));
    let archive = format!("oci-archive:{}", s(&t.path().join("multi.tar")));
    let opts = distroless_pack_ship::WriteOptions::default();
    distroless_pack_ship::write_sink(&artifact, &multi.parse().unwrap(), &opts).unwrap();
    distroless_pack_ship::write_sink(&artifact, &archive.parse().unwrap(), &opts).unwrap();

    for src in [&multi, &archive] {
        let doc = inspect_json(src, &[]);
        assert_eq!(doc["digest"], artifact.digest().as_str());
        assert_eq!(doc["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(
            doc["platforms"],
            serde_json::json!([{"platform": "linux/amd64", "digest": d_amd}, {"platform": "linux/arm64", "digest": d_arm}])
        );
        assert_eq!(doc["images"].as_array().unwrap().len(), 2);
        let one = inspect_json(src, &["--platform", "linux/arm64"]);
        assert_eq!(one["images"].as_array().unwrap().len(), 1);
        assert_eq!(one["images"][0]["digest"], d_arm.as_str());
        assert_eq!(one["images"][0]["platform"], "linux/arm64");
        let human = run_ok(dp().args(["inspect", src]));
        assert!(
            human.contains(&format!("  linux/amd64      {d_amd}"))
                && human.contains(&format!("image linux/arm64 ({d_arm})")),
            "{human}"
        );
    }
    // skopeo reads the same index.
    let raw = skopeo_inspect(&multi, &["--raw"]);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
}

#[test]
fn unreadable_sources_are_one_line_usage_errors() {
    let t = tmp();
    let junk = t.path().join("junk.tar");
    std::fs::write(&junk, "not a tar archive, not an image").unwrap();
    let (_, sources) = packed(t.path());
    for (src, want) in [
        (format!("oci:{}/missing", s(t.path())), "no such directory"),
        (format!("oci-archive:{}", s(&junk)), "junk.tar"),
        (
            format!("docker-archive:{}/missing.tar", s(t.path())),
            "missing.tar",
        ),
        (
            format!("{}:nope", sources[0].rsplit_once(':').unwrap().0),
            "no image tagged \"nope\"; available: v1",
        ),
        ("zip:x".to_string(), "unknown format"),
    ] {
        let out = run(dp().arg("inspect").arg(&src));
        assert_eq!(out.status.code(), Some(2), "{src}: {}", both(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{src}: {err}"
        );
    }
    let out = run(dp().args(["inspect", "--platform", "linux/arm64", &sources[0]]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no linux/arm64 image; it has linux/amd64"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_bare_path_that_is_no_image_is_named_with_what_it_is_in_every_command() {
    let t = tmp();
    let elf = corpus::musl_static_hello();
    let junk = write_junk(t.path());
    let fifo = t.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let missing = t.path().join("missing");
    let cases = [
        (
            s(&elf).to_string(),
            "an ELF executable, not an image; `distroless-pack pack",
        ),
        (
            s(&junk).to_string(),
            "not an image: neither an OCI layout directory nor a tar archive",
        ),
        (s(&fifo).to_string(), "not a regular file or a directory"),
        (s(&missing).to_string(), "no such file or directory"),
    ];
    for (path, want) in &cases {
        let commands: [Vec<&str>; 4] = [
            vec!["inspect", path],
            vec!["run", path],
            vec!["push", path, "localhost:1/never:1"],
            vec!["sbom", "--attached", path],
        ];
        for args in commands {
            if args[0] == "sbom" && *want == cases[0].1 {
                // tests/sbom.rs: "an executable has no attached documents"
                continue;
            }
            let out = run(dp().args(&args).stdin(std::process::Stdio::null()));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
            assert!(out.stdout.is_empty(), "{args:?}: {}", both(&out));
            assert!(
                err.contains(want) && err.contains(path.as_str()),
                "{args:?}: wanted {want:?} naming {path}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
    }
    // a bare layout path with a tag: told how to write it
    let (_, sources) = packed(t.path());
    let layout = t.path().join("layout");
    let out = run(dp().arg("run").arg(format!("{}:v1", s(&layout))));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("write {}", sources[0])),
        "{}",
        both(&out)
    );
    // `sbom` of a bare executable describes it; of the others, it refuses
    // them as `inspect` does
    run_ok(dp().arg("sbom").arg(&elf));
    for (path, want) in &cases[1..] {
        let out = run(dp().args(["sbom", path]));
        assert_eq!(out.status.code(), Some(2), "sbom {path}: {}", both(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "sbom {path}: {}",
            both(&out)
        );
    }
}

fn write_junk(dir: &Path) -> std::path::PathBuf {
    let junk = dir.join("notes.txt");
    std::fs::write(&junk, "a text file, not an image\n").unwrap();
    junk
}

#[test]
fn a_layer_with_one_flipped_byte_is_reported_as_corrupt_not_as_a_deflate_error() {
    let t = tmp();
    let (_, sources) = packed(t.path());
    let layout = t.path().join("layout");
    let layer = crate::push::first_layer(&layout);
    let file = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    crate::push::flip_a_byte(&file);
    for args in [vec!["inspect"], vec!["inspect", "--json"]] {
        let out = run(dp().args(&args).arg(&sources[0]));
        let all = both(&out);
        assert_eq!(out.status.code(), Some(2), "bad input: {all}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{all}");
        assert!(err.contains(s(&file)), "names the file: {err}");
        assert!(err.contains(&layer), "names the expected digest: {err}");
        assert!(err.contains("does not match its digest"), "{err}");
        assert_eq!(
            err.matches("sha256:").count(),
            2,
            "expected and actual: {err}"
        );
        assert!(!err.contains("deflate"), "{err}");
    }
}
