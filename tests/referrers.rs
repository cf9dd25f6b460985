//! Documents attached to images as OCI 1.1 artifacts (`attach`, the
//! referrers that `push` carries, `inspect`'s list), against real
//! consumers: skopeo and umoci read the image in a layout unchanged, the
//! real registry (`docker-registry` 2.8, which has no referrers API, so
//! the referrers tag schema) serves the artifact, oras-py (PyPI `oras`, a
//! third-party OCI client) reads the tag schema's index and pulls the
//! artifact the way `oras discover`/`oras pull` do, and a registry with
//! the referrers API (`ferro-oci-server`, [`ReferrersRegistry`]) lists
//! them itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use distroless_pack_image::{Artifact, Index};
use serde_json::Value;

use crate::support::corpus;
use crate::support::registry::{Auth, ReferrersRegistry, Registry};
use crate::util::{both, dp, require_tool, run, run_ok, tmp, write_file};

/// `distroless-pack` with an empty docker config, so the machine's own
/// credentials never reach a test registry.
fn dpc(home: &Path) -> Command {
    let mut c = dp();
    c.env("DOCKER_CONFIG", home.join("docker"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("HOME", home)
        .env_remove("DISTROLESS_PACK_REGISTRY_USERNAME")
        .env_remove("DISTROLESS_PACK_REGISTRY_PASSWORD");
    c
}

/// Packs the corpus's static hello into `oci:DIR:TAG` without the SBOM
/// and provenance `pack` attaches by default (so the only referrers are
/// the test's own); gives its digest.
fn pack_layout(layout: &Path, tag: &str) -> String {
    let out = run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--sbom=false", "--provenance=false"])
            .args(["--tag", &format!("hello:{tag}")])
            .arg("--output")
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    let digest = out.trim().lines().last().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "pack printed {out:?}");
    digest
}

/// A two-platform index in `oci:DIR:TAG` (tiny images built with
/// crates/image, as tests/push.rs does).
fn index_layout(dir: &Path, layout: &Path, tag: &str) -> Index {
    let index = Index::new(
        vec![
            crate::push::tiny_image(dir, "amd64"),
            crate::push::tiny_image(dir, "arm64"),
        ],
        &Default::default(),
    )
    .unwrap();
    let sink: distroless_pack_ship::Sink =
        format!("oci:{}:{tag}", layout.display()).parse().unwrap();
    distroless_pack_ship::write_sink(&Artifact::Index(index.clone()), &sink, &Default::default())
        .unwrap();
    index
}

/// [`index_layout`] as `oci:LAYOUT:v1` with an SPDX document attached to
/// each platform image: the index, the source and the two artifact digests.
fn index_with_sboms(dir: &Path, layout: &Path) -> (Index, String, Vec<String>) {
    let index = index_layout(dir, layout, "v1");
    let src = format!("oci:{}:v1", layout.display());
    let refs = attach(dir, &src, &sbom(dir, "multi"), "application/spdx+json", &[]);
    assert_eq!(refs.len(), 2, "one per platform image");
    (index, src, refs)
}

/// `attach SOURCE FILE --artifact-type TYPE [extra]`: the digests printed.
fn attach(home: &Path, source: &str, file: &Path, ty: &str, extra: &[&str]) -> Vec<String> {
    let out = run_ok(
        dpc(home)
            .arg("attach")
            .arg(source)
            .arg(file)
            .args(["--artifact-type", ty])
            .args(extra),
    );
    let digests: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(
        !digests.is_empty() && digests.iter().all(|d| d.starts_with("sha256:")),
        "attach printed {out:?}"
    );
    digests
}

fn inspect_json(home: &Path, source: &str) -> Value {
    let out = run_ok(dpc(home).args(["inspect", "--json", source]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect --json: {e}: {out}"))
}

fn skopeo_raw(source: &str) -> Vec<u8> {
    require_tool("skopeo", "apt-get install -y skopeo");
    let out = run(Command::new("skopeo").args(["inspect", "--raw", source]));
    assert!(
        out.status.success(),
        "skopeo inspect --raw {source}: {}",
        both(&out)
    );
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap()
}

/// `push SOURCE REFERENCE --json` (with its own docker config in `home`),
/// which must succeed: its report.
fn push_json(home: &Path, source: &str, reference: &str) -> Value {
    let out = run_ok(
        dpc(home)
            .arg("push")
            .arg(source)
            .arg(reference)
            .arg("--json"),
    );
    serde_json::from_str(&out).unwrap()
}

fn sbom(dir: &Path, text: &str) -> PathBuf {
    write_file(
        dir,
        &format!("{text}.spdx.json"),
        format!(r#"{{"spdxVersion":"SPDX-2.3","name":"{text}"}}"#).as_bytes(),
    )
}

/// `pack` of the corpus's static hello as `app:1`, with the SBOM and the
/// provenance (the default), pushed to `reference` and written to
/// `oci:LAYOUT:1`, at a fixed `SOURCE_DATE_EPOCH`: the image digest.
fn pack_push(home: &Path, reference: &str, layout: &Path) -> String {
    let out = run_ok(
        dpc(home)
            .arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", "app:1", "--push", reference])
            .arg("--output")
            .arg(format!("oci:{}:1", layout.display()))
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let digest = out.trim().lines().next().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "pack printed {out:?}");
    digest
}

/// The `artifactType` of every descriptor in `list` (a referrers index's
/// `manifests`, or an `inspect` image's `referrers`), sorted.
fn artifact_types(list: &Value) -> Vec<String> {
    let mut types: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list of descriptors: {list}"))
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap_or_default().to_string())
        .collect();
    types.sort();
    types
}

#[test]
fn attaching_to_a_layout_leaves_the_image_readable_by_skopeo_and_umoci_with_and_without_tag() {
    require_tool("umoci", "apt-get install -y umoci");
    let t = tmp();
    let layout = t.path().join("img");
    let digest = pack_layout(&layout, "1");
    let untagged = format!("oci:{}", layout.display());
    let tagged = format!("oci:{}:1", layout.display());
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let raw_before = skopeo_raw(&untagged);
    let stat_before =
        run_ok(Command::new("umoci").args(["stat", "--image", &format!("{}:1", layout.display())]));

    let file = sbom(t.path(), "img");
    let refs = attach(t.path(), &untagged, &file, "application/spdx+json", &[]);
    assert_eq!(refs.len(), 1);

    // the image is untouched: index.json, manifest, what skopeo and umoci read
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    for src in [&untagged, &tagged] {
        assert_eq!(skopeo_raw(src), raw_before, "{src}");
    }
    assert_eq!(sha256(&raw_before), digest);
    let stat_after =
        run_ok(Command::new("umoci").args(["stat", "--image", &format!("{}:1", layout.display())]));
    assert_eq!(stat_after, stat_before);
    // umoci unpacks it as before
    let bundle = t.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args([
                "unpack",
                "--rootless",
                "--image",
                &format!("{}:1", layout.display()),
            ])
            .arg(&bundle),
    );
    assert!(bundle.join("rootfs/app").is_dir());

    // the artifact: an OCI 1.1 manifest in the layout, subject = the image
    let m: Value = serde_json::from_slice(&blob(&layout, &refs[0])).unwrap();
    assert_eq!(m["artifactType"], "application/spdx+json");
    assert_eq!(m["subject"]["digest"], digest.as_str());
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        blob(&layout, m["layers"][0]["digest"].as_str().unwrap()),
        std::fs::read(&file).unwrap()
    );

    // inspect lists it, with and without tag; the image digest is the same
    for src in [&untagged, &tagged] {
        let doc = inspect_json(t.path(), src);
        assert_eq!(doc["digest"], digest.as_str());
        let r = &doc["images"][0]["referrers"];
        assert_eq!(r.as_array().unwrap().len(), 1, "{doc}");
        assert_eq!(r[0]["digest"], refs[0].as_str());
        assert_eq!(r[0]["artifactType"], "application/spdx+json");
        assert_eq!(r[0]["size"], blob(&layout, &refs[0]).len());
        assert_eq!(
            r[0]["layers"][0]["annotations"]["org.opencontainers.image.title"],
            "img.spdx.json"
        );
    }
    let human = run_ok(dp().args(["inspect", &tagged]));
    assert!(
        human.contains(&format!(
            "referrers:   1\n  application/spdx+json {}",
            refs[0]
        )),
        "{human}"
    );

    // the same file attached again is the same artifact (no time in it)
    assert_eq!(
        attach(t.path(), &tagged, &file, "application/spdx+json", &[]),
        refs
    );
    assert_eq!(
        inspect_json(t.path(), &tagged)["images"][0]["referrers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn attaching_to_an_index_layout_gives_each_platform_its_own_and_skopeo_reads_it_unchanged() {
    let t = tmp();
    let layout = t.path().join("multi");
    let index = index_layout(t.path(), &layout, "v1");
    let untagged = format!("oci:{}", layout.display());
    let tagged = format!("oci:{}:v1", layout.display());
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let raw = |src: &str| {
        let out =
            run(Command::new("skopeo").args(["--override-arch", "arm64", "inspect", "--raw", src]));
        assert!(out.status.success(), "skopeo {src}: {}", both(&out));
        out.stdout
    };
    let before = raw(&untagged);
    let file = sbom(t.path(), "multi");
    let all = attach(t.path(), &untagged, &file, "application/spdx+json", &[]);
    assert_eq!(all.len(), 2, "one artifact per platform image");
    let arm = attach(
        t.path(),
        &tagged,
        &file,
        "application/vnd.test+json",
        &["--platform", "linux/arm64"],
    );
    assert_eq!(arm.len(), 1);

    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    assert_eq!(raw(&untagged), before);
    assert_eq!(raw(&tagged), before);
    assert_eq!(sha256(&before), index.digest().as_str());
    // skopeo can still copy the image out of the layout (it leaves the referrers)
    let copy = t.path().join("copy");
    let out = run(Command::new("skopeo")
        .args(["copy", "--all", &untagged])
        .arg(format!("oci:{}:c", copy.display())));
    assert!(out.status.success(), "skopeo copy: {}", both(&out));

    let doc = inspect_json(t.path(), &untagged);
    assert_eq!(doc["digest"], index.digest().as_str());
    for (img, want) in doc["images"].as_array().unwrap().iter().zip([1, 2]) {
        let rs = img["referrers"].as_array().unwrap();
        assert_eq!(rs.len(), want, "{}: {img}", img["platform"]);
        for r in rs {
            let m: Value =
                serde_json::from_slice(&blob(&layout, r["digest"].as_str().unwrap())).unwrap();
            assert_eq!(m["subject"]["digest"], img["digest"]);
        }
    }
}

#[test]
fn an_oci_archive_takes_referrers_and_skopeo_reads_its_image_unchanged() {
    let t = tmp();
    let archive = t.path().join("a.tar");
    let out = run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--sbom=false", "--provenance=false"])
            .args(["--tag", "hello:1", "--output"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let digest = out.trim().lines().last().unwrap().to_string();
    let src = format!("oci-archive:{}", archive.display());
    let before = skopeo_raw(&src);
    let refs = attach(
        t.path(),
        &src,
        &sbom(t.path(), "a"),
        "application/spdx+json",
        &[],
    );
    assert_eq!(skopeo_raw(&src), before);
    assert_eq!(sha256(&before), digest);
    let doc = inspect_json(t.path(), &src);
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["images"][0]["referrers"][0]["digest"], refs[0].as_str());
    // a read-write round trip (archive -> layout) keeps them
    let again = t.path().join("again");
    let lay = format!("oci:{}:1", again.display());
    let artifact = distroless_pack_ship::read(&src.parse().unwrap()).unwrap();
    distroless_pack_ship::write_sink(&artifact, &lay.parse().unwrap(), &Default::default())
        .unwrap();
    assert_eq!(
        inspect_json(t.path(), &lay)["images"][0]["referrers"][0]["digest"],
        refs[0].as_str()
    );
}

#[test]
fn attach_refuses_a_docker_archive_and_a_bad_artifact_type_in_one_line() {
    let t = tmp();
    let archive = t.path().join("d.tar");
    run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", "hello:1", "--output"])
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let file = sbom(t.path(), "d");
    let before = std::fs::read(&archive).unwrap();
    let out = run(dp()
        .arg("attach")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(&file)
        .args(["--artifact-type", "application/spdx+json"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("a docker archive cannot hold referrers"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        before,
        "the archive is left as it was"
    );

    let layout = t.path().join("lay");
    pack_layout(&layout, "1");
    let out = run(dp()
        .arg("attach")
        .arg(format!("oci:{}", layout.display()))
        .arg(&file)
        .args(["--artifact-type", "spdx"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a media type"),
        "{}",
        both(&out)
    );
    let out = run(dp()
        .arg("attach")
        .arg(format!("oci:{}", layout.display()))
        .arg(t.path().join("missing.json"))
        .args(["--artifact-type", "application/spdx+json"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.json"),
        "{}",
        both(&out)
    );
}

/// oras-py (PyPI `oras`, scripts/python-requirements.txt): the tag
/// schema's index for `subject`, and the file(s) `oras pull` of the
/// artifact `digest` writes, as JSON `{"index": ..., "files": {name: text}}`.
fn oras_py(host: &str, repo: &str, subject: &str, digest: &str, out: &Path) -> Value {
    let probe = run(Command::new("python3").args(["-c", "import oras.client"]));
    assert!(
        probe.status.success(),
        "oras-py is missing: python3 -m pip install oras==0.2.43 (scripts/install-deps.sh installs scripts/python-requirements.txt): {}",
        both(&probe)
    );
    let script = r#"
import json, os, sys
import oras.client
host, repo, subject, digest, out = sys.argv[1:]
c = oras.client.OrasClient(hostname=host, insecure=True)
tag = subject.replace(":", "-")
index = c.get_manifest(f"{host}/{repo}:{tag}")
files = c.pull(target=f"{host}/{repo}@{digest}", outdir=out)
print(json.dumps({"index": index, "files": {os.path.basename(f): open(f).read() for f in files}}))
"#;
    let text = run_ok(
        Command::new("python3")
            .args(["-c", script, host, repo, subject, digest])
            .arg(out),
    );
    serde_json::from_str(text.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `oci-client-discover` (tools/oci-client-discover): the referrers of
/// `reference` (`HOST/REPO@DIGEST`) as the ORAS project's Rust client
/// (oci-client) finds them, by the referrers API or, where the registry
/// answers it 404, the tag schema; only those of `artifact_type` when one
/// is given (the registry's filter, or the client's on the tag schema).
/// Gives `(artifactType, digest)` sorted by type, and each referrer
/// manifest's `subject.digest` as the client read it.
fn oci_client_discover(
    reference: &str,
    artifact_type: Option<&str>,
) -> (Vec<(String, String)>, Vec<String>) {
    let tool = require_tool(
        "oci-client-discover",
        "cargo install --locked --path tools/oci-client-discover",
    );
    let mut cmd = Command::new(tool);
    cmd.args(["--plain-http", reference]);
    if let Some(t) = artifact_type {
        cmd.args(["--artifact-type", t]);
    }
    let text = run_ok(&mut cmd);
    let found: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut listed: Vec<(String, String)> = found["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests: {found}"))
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap_or("").to_string(),
                m["digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    listed.sort();
    let subjects = found["subjects"]
        .as_array()
        .unwrap_or_else(|| panic!("no subjects: {found}"))
        .iter()
        .map(|d| d.as_str().unwrap_or("").to_string())
        .collect();
    (listed, subjects)
}

#[test]
fn pushed_referrers_are_found_by_the_tag_schema_inspect_and_oras_and_a_second_attach_merges() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let layout = t.path().join("lay");
    let digest = pack_layout(&layout, "1");
    let file = sbom(t.path(), "pushed");
    let first = attach(
        t.path(),
        &format!("oci:{}:1", layout.display()),
        &file,
        "application/spdx+json",
        &[],
    )
    .remove(0);
    let reference = reg.reference("ref/app:1");
    let report = push_json(t.path(), &format!("oci:{}:1", layout.display()), &reference);
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["referrers"][0]["digest"], first.as_str());
    assert_eq!(
        report["referrers"][0]["via"], "tag-schema",
        "registry 2.8 has no referrers API"
    );
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    assert_eq!(report["referrers"][0]["tag"], tag.as_str());

    // the image is the same in the registry
    assert_eq!(sha256(&reg.raw_manifest(&reference)), digest);
    // the tag schema's index, read raw by skopeo, lists the artifact
    let index: Value =
        serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("ref/app:{tag}"))))
            .unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index["manifests"][0]["digest"], first.as_str());
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
    // the artifact manifest fetched raw is the layout's blob, subject the image
    let raw = reg.raw_manifest(&reg.reference(&format!("ref/app@{first}")));
    assert_eq!(raw, blob(&layout, &first));
    let m: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["subject"]["digest"], digest.as_str());

    // a second document attached straight to the registry merges into the tag's index
    let prov = write_file(
        t.path(),
        "prov.json",
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
    );
    let second = attach(
        t.path(),
        &reference,
        &prov,
        "application/vnd.in-toto+json",
        &[],
    )
    .remove(0);
    let index: Value =
        serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("ref/app:{tag}"))))
            .unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    let mut want = vec![first.as_str(), second.as_str()];
    want.sort();
    assert_eq!(listed, want, "merged, deduplicated, sorted by digest");
    // and again: nothing is listed twice
    attach(
        t.path(),
        &format!("docker://{reference}"),
        &prov,
        "application/vnd.in-toto+json",
        &[],
    );
    let index: Value =
        serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("ref/app:{tag}"))))
            .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(
        sha256(&reg.raw_manifest(&reference)),
        digest,
        "the image is unchanged"
    );

    // our inspect of the registry finds both
    let doc = inspect_json(t.path(), &reference);
    assert_eq!(doc["digest"], digest.as_str());
    let img = &doc["images"][0];
    assert_eq!(img["referrersFrom"], "tag-schema");
    assert_eq!(
        artifact_types(&img["referrers"]),
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{img}"
    );
    let titles: Vec<&str> = img["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["layers"][0]["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        titles.contains(&"pushed.spdx.json") && titles.contains(&"prov.json"),
        "{titles:?}"
    );

    // oras-py finds the artifact by the tag schema and pulls the file by its title
    let pulled = t.path().join("pulled");
    let got = oras_py(&reg.host, "ref/app", &digest, &first, &pulled);
    let names: Vec<&str> = got["index"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(names.contains(&first.as_str()), "{got}");
    assert_eq!(
        got["files"]["pushed.spdx.json"]
            .as_str()
            .unwrap()
            .as_bytes(),
        std::fs::read(&file).unwrap(),
        "{got}"
    );
}

/// A [`FaultProxy`] in front of the real registry plays one with the
/// referrers API: it answers a manifest `PUT` that has a `subject` with
/// `OCI-Subject`, and `GET /v2/<name>/referrers/<digest>` with the index
/// of what it saw, as distribution-spec 1.1 says a registry with the API
/// does. The blobs and manifests still go to the real registry. (The same
/// path against a real registry with the API, ferro-oci-server:
/// `a_registry_with_the_referrers_api_lists_what_pack_push_attached_and_no_tag_is_written`.)
#[test]
fn a_registry_answering_oci_subject_keeps_the_list_itself_and_no_tag_is_written() {
    use std::sync::{Arc, Mutex};

    use crate::support::registry::{Fault, FaultProxy};

    let t = tmp();
    let reg = Registry::start(Auth::None);
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let proxy = FaultProxy::start(&reg.host, move |req| {
        let path = req.target.split('?').next().unwrap_or("");
        if req.method == "PUT" && path.contains("/manifests/") {
            if let Ok(m) = serde_json::from_slice::<Value>(&req.body) {
                if let Some(subject) = m.pointer("/subject/digest").and_then(Value::as_str) {
                    let desc = serde_json::json!({
                        "mediaType": m["mediaType"],
                        "digest": sha256(&req.body),
                        "size": req.body.len(),
                        "artifactType": m["artifactType"],
                    });
                    seen2.lock().unwrap().push((subject.to_string(), desc));
                    return Fault::ForwardWithHeader {
                        name: "OCI-Subject".into(),
                        value: subject.to_string(),
                    };
                }
            }
        }
        if req.method == "GET" {
            if let Some((_, subject)) = path.split_once("/referrers/") {
                let list: Vec<Value> = seen2
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(s, _)| s == subject)
                    .map(|(_, d)| d.clone())
                    .collect();
                let body = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": list,
                });
                return Fault::AnswerTyped {
                    status: 200,
                    content_type: "application/vnd.oci.image.index.v1+json".into(),
                    body: body.to_string(),
                };
            }
        }
        Fault::Forward
    });
    let layout = t.path().join("lay");
    let digest = pack_layout(&layout, "1");
    let r = attach(
        t.path(),
        &format!("oci:{}:1", layout.display()),
        &sbom(t.path(), "api"),
        "application/spdx+json",
        &[],
    )
    .remove(0);
    let reference = proxy.reference("api/app:1");
    let report = push_json(t.path(), &format!("oci:{}:1", layout.display()), &reference);
    assert_eq!(report["referrers"][0]["digest"], r.as_str());
    assert_eq!(report["referrers"][0]["via"], "api", "{}", proxy.log_text());
    assert!(report["referrers"][0].get("tag").is_none());
    // the artifact is in the real registry, and no tag schema index was put
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    assert_eq!(
        reg.raw_manifest(&reg.reference(&format!("api/app@{r}"))),
        blob(&layout, &r)
    );
    let tags = run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.reference("api/app"))));
    assert!(tags.status.success(), "{}", both(&tags));
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(
        tags["Tags"],
        serde_json::json!(["1"]),
        "no {tag} tag: {tags}"
    );
    // inspect lists it through the referrers API
    let doc = inspect_json(t.path(), &reference);
    let img = &doc["images"][0];
    assert_eq!(img["referrersFrom"], "api", "{img}");
    assert_eq!(img["referrers"][0]["digest"], r.as_str());
    assert_eq!(img["referrers"][0]["artifactType"], "application/spdx+json");
    assert!(
        proxy.exchanges().iter().any(|x| x.method == "GET"
            && x.target
                .contains(&format!("/v2/api/app/referrers/{digest}"))),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn an_index_pushed_with_referrers_gets_one_tag_schema_index_per_platform_image() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let layout = t.path().join("multi");
    let (index, src, refs) = index_with_sboms(t.path(), &layout);
    let reference = reg.reference("multi/app:v1");
    let report = push_json(t.path(), &src, &reference);
    assert_eq!(report["digest"], index.digest().as_str());
    assert_eq!(report["referrers"].as_array().unwrap().len(), 2, "{report}");
    // the index in the registry is the same; each platform image has its own tag index
    assert_eq!(
        sha256(&reg.raw_manifest(&reference)),
        index.digest().as_str()
    );
    for (img, r) in index.images.iter().zip(&refs) {
        let tag = format!("sha256-{}", img.digest().hex());
        let listed: Value =
            serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("multi/app:{tag}"))))
                .unwrap();
        let digests: Vec<&str> = listed["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, vec![r.as_str()], "{}: {listed}", img.platform);
    }
    // inspect of the registry index shows each platform's own artifact
    let doc = inspect_json(t.path(), &reference);
    assert_eq!(doc["digest"], index.digest().as_str());
    assert_eq!(doc["platforms"].as_array().unwrap().len(), 2);
    for (img, r) in doc["images"].as_array().unwrap().iter().zip(&refs) {
        assert_eq!(img["referrers"].as_array().unwrap().len(), 1, "{img}");
        assert_eq!(img["referrers"][0]["digest"], r.as_str());
    }
    let one =
        run_ok(dpc(t.path()).args(["inspect", "--json", "--platform", "linux/arm64", &reference]));
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["images"].as_array().unwrap().len(), 1);
    assert_eq!(one["images"][0]["platform"], "linux/arm64");
}

/// A registry that refuses a referrer whose subject it does not have yet
/// (gitlab.com does, buildkit#7007; OCI 1.1 allows the other order), in
/// front of which every image manifest is slowed down: each referrer
/// still goes up only after its subject, for an index's platform images
/// and for a single image, and nothing is refused.
#[test]
fn a_referrer_is_put_only_after_its_subject_for_registries_that_refuse_it_first() {
    use crate::support::engines;
    use crate::support::registry::{Fault, FaultProxy, ProxyRequest};
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let upstream = reg.host.clone();
    let proxy = FaultProxy::start(&reg.host, move |r: &ProxyRequest| {
        if r.method != "PUT" || !r.path().contains("/manifests/") {
            return Fault::Forward;
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let Some(subject) = body["subject"]["digest"].as_str() else {
            // an image manifest (or a tag schema index): late, on purpose
            std::thread::sleep(std::time::Duration::from_millis(300));
            return Fault::Forward;
        };
        let repo = r.path().split("/manifests/").next().unwrap_or_default();
        let path = format!("{repo}/manifests/{subject}");
        match engines::get_once(&upstream, &path, Some("application/vnd.oci.image.manifest.v1+json")) {
            Ok((200, _)) => Fault::Forward,
            _ => Fault::Answer {
                status: 404,
                body: r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"subject manifest not found"}]}"#.into(),
            },
        }
    });

    let multi = t.path().join("multi");
    let (index, src, refs) = index_with_sboms(t.path(), &multi);
    let report = push_json(t.path(), &src, &proxy.reference("gate/multi:v1"));
    assert_eq!(report["digest"], index.digest().as_str());
    assert_eq!(report["referrers"].as_array().unwrap().len(), 2, "{report}");

    let single = t.path().join("single");
    let digest = pack_layout(&single, "v1");
    let src = format!("oci:{}:v1", single.display());
    let one = attach(
        t.path(),
        &src,
        &sbom(t.path(), "single"),
        "application/spdx+json",
        &[],
    );
    let report = push_json(t.path(), &src, &proxy.reference("gate/single:v1"));
    assert_eq!(report["digest"], digest.as_str());

    let log = proxy.exchanges();
    assert!(
        log.iter().all(|x| !(x.method == "PUT" && x.status == 404)),
        "a referrer went up before its subject:\n{}",
        proxy.log_text()
    );
    // each referrer's PUT finished after its subject's
    let done_at = |digest: &str| {
        log.iter()
            .position(|x| x.method == "PUT" && x.target.ends_with(&format!("/manifests/{digest}")))
            .unwrap_or_else(|| panic!("no PUT of {digest}:\n{}", proxy.log_text()))
    };
    for (img, r) in index.images.iter().zip(&refs) {
        assert!(
            done_at(img.digest().as_str()) < done_at(r),
            "{}",
            proxy.log_text()
        );
    }
    let single_done = log
        .iter()
        .position(|x| x.method == "PUT" && x.target.ends_with("/gate/single/manifests/v1"))
        .unwrap();
    assert!(single_done < done_at(&one[0]), "{}", proxy.log_text());
}

/// Some registries and gateways answer an unknown `/referrers/` path with
/// 200 and something that is not an image index (a JSON error, a web
/// page): that is no referrers API, and the tag schema is read instead,
/// as oras-go does.
#[test]
fn a_referrers_answer_that_is_not_an_image_index_falls_back_to_the_tag_schema() {
    use crate::support::registry::{Fault, FaultProxy};

    let t = tmp();
    let reg = Registry::start(Auth::None);
    let proxy = FaultProxy::start(&reg.host, |req| {
        if req.method == "GET" && req.target.contains("/referrers/") {
            return Fault::Answer {
                status: 200,
                body: r#"{"manifests":[]}"#.into(),
            };
        }
        Fault::Forward
    });
    let layout = t.path().join("lay");
    pack_layout(&layout, "1");
    let src = format!("oci:{}:1", layout.display());
    let r = attach(
        t.path(),
        &src,
        &sbom(t.path(), "fallback"),
        "application/spdx+json",
        &[],
    )
    .remove(0);
    let reference = proxy.reference("fb/app:1");
    run_ok(dpc(t.path()).arg("push").arg(&src).arg(&reference));
    let doc = inspect_json(t.path(), &reference);
    let img = &doc["images"][0];
    assert_eq!(img["referrersFrom"], "tag-schema", "{img}");
    assert_eq!(
        img["referrers"][0]["digest"],
        r.as_str(),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn attach_inspect_and_sbom_reach_a_registry_that_wants_a_token() {
    let t = tmp();
    let reg = Registry::start(Auth::Token {
        user: "ci".into(),
        pass: "s3cret-token-pass".into(),
    });
    let layout = t.path().join("lay");
    let digest = pack_layout(&layout, "1");
    let src = format!("oci:{}:1", layout.display());
    let reference = reg.reference("tok/app:1");
    let with_creds = |c: &mut Command| {
        c.env("DISTROLESS_PACK_REGISTRY_USERNAME", "ci")
            .env("DISTROLESS_PACK_REGISTRY_PASSWORD", "s3cret-token-pass");
    };
    let mut push = dpc(t.path());
    with_creds(&mut push);
    run_ok(push.arg("push").arg(&src).arg(&reference));
    // without credentials: refused, exit 5
    let file = sbom(t.path(), "tok");
    let out = run(dpc(t.path())
        .arg("attach")
        .arg(&reference)
        .arg(&file)
        .args(["--artifact-type", "application/spdx+json"]));
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    assert!(!both(&out).contains("s3cret"));
    let mut a = dpc(t.path());
    with_creds(&mut a);
    let out = run_ok(
        a.arg("attach")
            .arg(&reference)
            .arg(&file)
            .args(["--artifact-type", "application/spdx+json"]),
    );
    let r = out.trim().to_string();
    assert!(r.starts_with("sha256:"), "{out}");
    let mut i = dpc(t.path());
    with_creds(&mut i);
    let doc: Value =
        serde_json::from_str(&run_ok(i.args(["inspect", "--json", &reference]))).unwrap();
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["images"][0]["referrers"][0]["digest"], r.as_str());
    // `sbom` of the registry image pulls its layers with a token too, and
    // without credentials is refused the same way
    let mut s = dpc(t.path());
    with_creds(&mut s);
    let spdx: Value = serde_json::from_str(&run_ok(s.args(["sbom", &reference]))).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert!(spdx["name"].as_str().unwrap().ends_with(&digest), "{spdx}");
    let out = run(dpc(t.path()).args(["sbom", &reference]));
    assert_eq!(out.status.code(), Some(5), "{}", both(&out));
    assert!(out.stdout.is_empty() && !both(&out).contains("s3cret"));
}

/// `pack --push` attaches the image's SBOM and provenance by default: the
/// registry's referrers tag schema lists both, each artifact's subject is
/// the pushed image, oras-py pulls the SPDX document back byte for byte as
/// the same run wrote it into its layout, and the image digest is the one
/// `--sbom=false --provenance=false` gives.
#[test]
fn pack_push_attaches_the_sbom_and_provenance_found_by_the_tag_schema_and_oras() {
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let reference = reg.reference("attest/app:1");
    let hello = corpus::musl_static_hello();
    let layout = t.path().join("lay");
    let digest = pack_push(t.path(), &reference, &layout);
    let bare = run_ok(
        dp().arg("pack")
            .arg(&hello)
            .args(["--tag", "app:1", "--sbom=false", "--provenance=false"])
            .arg("--output")
            .arg(format!("oci:{}:1", t.path().join("bare").display()))
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    assert_eq!(
        bare.trim().lines().last().unwrap(),
        digest,
        "attaching changes no digest"
    );

    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let index: Value =
        serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("attest/app:{tag}"))))
            .unwrap();
    assert_eq!(
        artifact_types(&index["manifests"]),
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{index}"
    );
    let mut spdx_layer = String::new();
    let mut spdx_digest = String::new();
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let raw = reg.raw_manifest(&reg.reference(&format!("attest/app@{d}")));
        assert_eq!(
            raw,
            blob(&layout, d),
            "the registry has the layout's artifact manifest"
        );
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest["subject"]["digest"], digest.as_str());
        if m["artifactType"] == "application/spdx+json" {
            spdx_digest = d.to_string();
            spdx_layer = manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string();
        }
    }

    // oci-client finds both: docker-registry answers 404 to the referrers
    // API, so it reads the tag schema
    let host = reference.split('/').next().unwrap();
    let (listed, subjects) = oci_client_discover(&format!("{host}/attest/app@{digest}"), None);
    let mut expected: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "oci-client lists the tag schema's index");
    assert_eq!(
        subjects,
        vec![digest.clone(); 2],
        "each subject is the image"
    );
    let (spdx_only, _) = oci_client_discover(
        &format!("{host}/attest/app@{digest}"),
        Some("application/spdx+json"),
    );
    assert_eq!(spdx_only, expected[..1], "filtered by the client");

    let pulled = oras_py(
        host,
        "attest/app",
        &digest,
        &spdx_digest,
        &t.path().join("pulled"),
    );
    let spdx = pulled["files"]["sbom.spdx.json"]
        .as_str()
        .unwrap_or_else(|| panic!("oras pulled {pulled}"));
    assert_eq!(spdx.as_bytes(), blob(&layout, &spdx_layer));
    let doc: Value = serde_json::from_str(spdx).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let binary_sha = sha256(&std::fs::read(&hello).unwrap());
    assert!(
        spdx.contains(&binary_sha["sha256:".len()..]),
        "the SBOM names the binary's sha256 {binary_sha}"
    );
}

/// A registry whose HEAD says it has every blob (having none) gets the
/// blobs of the attached SBOM and provenance uploaded when it refuses
/// their manifests (MANIFEST_BLOB_UNKNOWN), as the image's own are: the
/// push succeeds and the tag schema lists both artifacts.
#[test]
fn a_lying_head_is_healed_for_the_attached_documents_too() {
    use crate::support::registry::{Fault, FaultProxy, ProxyRequest};
    let t = tmp();
    let reg = Registry::start(Auth::None);
    let layout = t.path().join("lay");
    let out = run_ok(
        dp().arg("pack")
            .arg(corpus::musl_static_hello())
            .args(["--tag", "hello:1", "--output"])
            .arg(format!("oci:{}:1", layout.display())),
    );
    let digest = out.trim().lines().last().unwrap().to_string();
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
    let out = run(dpc(t.path())
        .arg("push")
        .arg(format!("oci:{}:1", layout.display()))
        .arg(proxy.reference("liar/app:1"))
        .arg("--json"));
    assert!(out.status.success(), "{}\n{}", both(&out), proxy.log_text());
    let report: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(
        report["referrers"].as_array().unwrap().len(),
        2,
        "{report:#}"
    );
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let index: Value =
        serde_json::from_slice(&reg.raw_manifest(&reg.reference(&format!("liar/app:{tag}"))))
            .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        assert_eq!(
            reg.raw_manifest(&reg.reference(&format!("liar/app@{d}"))),
            blob(&layout, d)
        );
    }
}

/// A real registry with the referrers API (ferro-oci-server): `pack
/// --push` sends the SBOM and the provenance, the registry answers
/// `OCI-Subject`, so no tag schema index is written, and its own `GET
/// /v2/<name>/referrers/<digest>` lists both, each manifest byte for byte
/// the layout's, subject the image. skopeo reads the image unchanged;
/// `push` of the same layout says it used the API; an `attach` straight to
/// the registry adds a third document; `inspect` lists all three from the
/// API.
#[test]
fn a_registry_with_the_referrers_api_lists_what_pack_push_attached_and_no_tag_is_written() {
    let t = tmp();
    let reg = ReferrersRegistry::start();
    let reference = reg.reference("api/app:1");
    let layout = t.path().join("lay");
    let digest = pack_push(t.path(), &reference, &layout);

    let list = reg.get_json(&format!("/v2/api/app/referrers/{digest}"));
    assert_eq!(
        artifact_types(&list["manifests"]),
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{list}"
    );
    for m in list["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let (status, raw) = reg.get(&format!("/v2/api/app/manifests/{d}"));
        assert_eq!(status, 200);
        assert_eq!(raw, blob(&layout, d), "the layout's artifact manifest");
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest["subject"]["digest"], digest.as_str());
    }
    assert_eq!(
        reg.tags("api/app"),
        serde_json::json!(["1"]),
        "no sha256-* tag"
    );
    // oci-client finds both through the API (there is no tag to fall back on)
    let (listed, subjects) =
        oci_client_discover(&reg.reference(&format!("api/app@{digest}")), None);
    let types: Vec<&str> = listed.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{listed:?}"
    );
    for (_, d) in &listed {
        assert!(list.to_string().contains(d.as_str()), "{d} not in {list}");
    }
    assert_eq!(
        subjects,
        vec![digest.clone(); 2],
        "each subject is the image"
    );
    let (provenance, _) = oci_client_discover(
        &reg.reference(&format!("api/app@{digest}")),
        Some("application/vnd.in-toto+json"),
    );
    assert_eq!(provenance, listed[1..], "filtered by the registry");
    // `sbom --attached` gets the SPDX document through the API
    let spdx: Value = serde_json::from_slice(&blob(&layout, &listed[0].1)).unwrap();
    let payload = blob(&layout, spdx["layers"][0]["digest"].as_str().unwrap());
    let got = run_ok(dpc(t.path()).args(["sbom", "--attached", &reference]));
    assert_eq!(got.as_bytes(), [payload, b"\n".to_vec()].concat());

    // skopeo reads the image from this registry as the layout has it
    let out = run(
        Command::new(require_tool("skopeo", "apt-get install -y skopeo"))
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    assert!(out.status.success(), "skopeo inspect --raw: {}", both(&out));
    let raw = out.stdout;
    assert_eq!(sha256(&raw), digest);
    assert_eq!(raw, blob(&layout, &digest));

    // push of the same layout to another repository: through the API
    let report = push_json(
        t.path(),
        &format!("oci:{}:1", layout.display()),
        &reg.reference("again/app:1"),
    );
    let referrers = report["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{report}");
    for r in referrers {
        assert_eq!(r["via"], "api", "{report}");
        assert!(r.get("tag").is_none(), "{report}");
    }
    assert_eq!(
        artifact_types(&reg.get_json(&format!("/v2/again/app/referrers/{digest}"))["manifests"])
            .len(),
        2
    );

    // a third document, attached straight to the registry image
    let third = attach(
        t.path(),
        &reference,
        &sbom(t.path(), "third"),
        "application/vnd.example.report+json",
        &[],
    )
    .remove(0);
    let list = reg.get_json(&format!("/v2/api/app/referrers/{digest}"));
    assert_eq!(
        artifact_types(&list["manifests"]),
        [
            "application/spdx+json",
            "application/vnd.example.report+json",
            "application/vnd.in-toto+json"
        ],
        "{list}"
    );
    assert!(list.to_string().contains(&third), "{list}");
    assert_eq!(
        reg.tags("api/app"),
        serde_json::json!(["1"]),
        "still no tag"
    );

    let doc = inspect_json(t.path(), &reference);
    let img = &doc["images"][0];
    assert_eq!(img["referrersFrom"], "api", "{img}");
    assert_eq!(
        artifact_types(&img["referrers"]),
        [
            "application/spdx+json",
            "application/vnd.example.report+json",
            "application/vnd.in-toto+json"
        ],
        "{img}"
    );
}

/// An index pushed to the referrers API registry: each platform image's
/// own document is listed under that image's digest, and nowhere else.
#[test]
fn an_index_pushed_to_a_registry_with_the_referrers_api_lists_each_platform_image_its_own() {
    let t = tmp();
    let reg = ReferrersRegistry::start();
    let layout = t.path().join("multi");
    let (index, src, refs) = index_with_sboms(t.path(), &layout);
    let reference = reg.reference("multi/app:v1");
    let report = push_json(t.path(), &src, &reference);
    assert_eq!(report["digest"], index.digest().as_str());
    for r in report["referrers"].as_array().unwrap() {
        assert_eq!(r["via"], "api", "{report}");
    }
    let (status, raw) = reg.get("/v2/multi/app/manifests/v1");
    assert_eq!(status, 200);
    assert_eq!(
        sha256(&raw),
        index.digest().as_str(),
        "the index is unchanged"
    );
    for (img, r) in index.images.iter().zip(&refs) {
        let list = reg.get_json(&format!("/v2/multi/app/referrers/{}", img.digest()));
        let digests: Vec<&str> = list["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, vec![r.as_str()], "{}: {list}", img.platform);
        let (listed, subjects) =
            oci_client_discover(&reg.reference(&format!("multi/app@{}", img.digest())), None);
        assert_eq!(
            listed.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
            vec![r.as_str()],
            "oci-client, {}",
            img.platform
        );
        assert_eq!(subjects, vec![img.digest().to_string()]);
    }
    assert_eq!(
        reg.tags("multi/app"),
        serde_json::json!(["v1"]),
        "no sha256-* tag"
    );
    let doc = inspect_json(t.path(), &reference);
    for (img, r) in doc["images"].as_array().unwrap().iter().zip(&refs) {
        assert_eq!(img["referrersFrom"], "api", "{img}");
        assert_eq!(img["referrers"][0]["digest"], r.as_str(), "{img}");
    }
}
