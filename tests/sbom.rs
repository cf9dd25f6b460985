//! SBOMs (issue #10): what `pack`, `build` and `sbom` write, checked by the
//! real validators (spdx-tools' `pyspdxtools`, `ntia-checker`,
//! cyclonedx-python-lib's JSON schema validation) and against what the
//! toolchains themselves say (`go version -m`, `cargo metadata`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{both, dp, repo_root, require_tool, run, run_ok, tmp};

const PIP_HINT: &str = "python3 -m pip install -r scripts/python-requirements.txt";

fn copy_fixture(name: &str, into: &Path) -> PathBuf {
    let dest = into.join(name);
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("tests/fixtures").join(name))
            .arg(&dest),
    );
    dest
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// pyspdxtools and the NTIA minimum elements check, both real.
#[track_caller]
pub(crate) fn validate_spdx(file: &Path) {
    let spdx = require_tool("pyspdxtools", PIP_HINT);
    run_ok(Command::new(spdx).arg("-i").arg(file));
    let ntia = require_tool("ntia-checker", PIP_HINT);
    let out = run(Command::new(ntia).args(["-c", "ntia"]).arg(file));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Conformant: True"),
        "NTIA minimum elements: {}",
        both(&out)
    );
}

/// cyclonedx-python-lib's strict JSON schema validation for 1.6.
#[track_caller]
pub(crate) fn validate_cyclonedx(file: &Path) {
    require_tool("python3", "apt-get install -y python3");
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerr = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif err:\n    print(err)\n    sys.exit(1)\n";
    let out = run(Command::new("python3").args(["-c", script]).arg(file));
    assert!(
        out.status.success(),
        "CycloneDX 1.6 schema ({PIP_HINT}): {}",
        both(&out)
    );
}

/// The SPDX packages as (name, version, purl).
fn spdx_packages(doc: &Value) -> Vec<(String, String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["versionInfo"].as_str().unwrap_or("").to_string(),
                p["externalRefs"][0]["referenceLocator"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// A Go binary with a dependency, built offline from the vendored fixture.
fn go_binary(t: &Path) -> PathBuf {
    let go = require_tool("go", "apt-get install -y golang-go");
    let dir = copy_fixture("go-vendored", t);
    let out = dir.join("app");
    run_ok(
        Command::new(go)
            .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&dir)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=vendor")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local"),
    );
    out
}

/// The vendored Go fixture for linux/amd64 and linux/arm64, packed as one
/// index into `oci:LAYOUT:multi` (with `extra` pack arguments).
fn go_index(t: &Path, layout: &Path, extra: &[&str]) {
    let amd = go_binary(t);
    let arm = t.join("go-vendored/app-arm64");
    run_ok(
        Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(&arm)
            .arg(".")
            .current_dir(t.join("go-vendored"))
            .env("CGO_ENABLED", "0")
            .env("GOARCH", "arm64")
            .env("GOFLAGS", "-mod=vendor")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local"),
    );
    run_ok(
        dp().args(["pack", "--platform", "linux/amd64,linux/arm64", "--binary"])
            .arg(format!("linux/amd64={}", amd.display()))
            .arg("--binary")
            .arg(format!("linux/arm64={}", arm.display()))
            .arg("--output")
            .arg(format!("oci:{}:multi", layout.display()))
            .args(extra),
    );
}

/// `(path, version)` of every `dep` line `go version -m` prints.
fn go_deps(bin: &Path) -> Vec<(String, String)> {
    let text = run_ok(Command::new("go").args(["version", "-m"]).arg(bin));
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split('\t').collect();
            (f[0] == "dep").then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

#[test]
fn go_binary_sbom_has_every_dep_go_version_m_prints_with_its_purl() {
    let t = tmp();
    let bin = go_binary(t.path());
    let deps = go_deps(&bin);
    assert!(!deps.is_empty(), "the fixture has a dependency");
    let out = t.path().join("sbom.json");
    run_ok(
        dp().args([
            "pack",
            "--no-verify",
            "--tag",
            "go-app:1",
            "--sbom-format",
            "both",
        ])
        .arg(&bin)
        .arg("--output")
        .arg(format!("oci:{}", t.path().join("layout").display()))
        .arg("--sbom-output")
        .arg(&out),
    );
    let spdx_file = t.path().join("sbom.spdx.json");
    let cdx_file = t.path().join("sbom.cdx.json");
    let spdx = read_json(&spdx_file);
    let cdx = read_json(&cdx_file);
    let pkgs = spdx_packages(&spdx);
    for (path, version) in &deps {
        let purl = format!("pkg:golang/{path}@{version}");
        assert!(
            pkgs.iter()
                .any(|(n, v, p)| n == path && v == version && *p == purl),
            "SPDX lacks {purl}: {pkgs:?}"
        );
        assert!(
            cdx["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["purl"] == purl.as_str() && c["version"] == version.as_str()),
            "CycloneDX lacks {purl}"
        );
    }
    assert!(
        pkgs.iter()
            .any(|(n, v, _)| n == "stdlib" && v.starts_with("go1.")),
        "{pkgs:?}"
    );
    validate_spdx(&spdx_file);
    validate_cyclonedx(&cdx_file);
}

#[test]
fn two_pack_runs_give_byte_identical_sboms_and_the_time_is_source_date_epoch() {
    let t = tmp();
    let bin = go_binary(t.path());
    let pack = |n: &str, epoch: Option<&str>| {
        let out = t.path().join(format!("{n}.json"));
        let mut c = dp();
        c.args(["pack", "--no-verify", "--ca-certs", "--passwd", "--output"])
            .arg(format!("oci:{}", t.path().join(n).display()))
            .arg("--sbom-output")
            .arg(&out)
            .arg(&bin);
        if let Some(e) = epoch {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        run_ok(&mut c);
        std::fs::read(out).unwrap()
    };
    let a = pack("a", None);
    let b = pack("b", None);
    assert_eq!(a, b, "two runs, the same bytes");
    let doc: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    for f in [
        "./app/app",
        "./etc/ssl/certs/ca-certificates.crt",
        "./etc/passwd",
        "./etc/group",
    ] {
        assert!(files.contains(&f), "{f} in {files:?}");
    }
    let c = pack("c", Some("1700000000"));
    let doc: Value = serde_json::from_slice(&c).unwrap();
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    validate_spdx(&t.path().join("a.json"));
}

#[test]
fn cargo_build_sbom_has_every_crate_of_the_graph_with_its_license() {
    let cargo = require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    let t = tmp();
    let dir = copy_fixture("cargo-itoa", t.path());
    run_ok(Command::new(&cargo).arg("fetch").current_dir(&dir));
    // The graph, as cargo resolves it: every non-path package.
    let meta: Value = serde_json::from_str(&run_ok(
        Command::new(&cargo)
            .args(["metadata", "--format-version=1", "--offline", "--locked"])
            .current_dir(&dir),
    ))
    .unwrap();
    let graph: Vec<(String, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["source"].is_null())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!graph.is_empty());
    let out = t.path().join("sbom.json");
    run_ok(
        dp().arg("build")
            .arg(&dir)
            .args([
                "--runner",
                "host",
                "--offline",
                "--sbom-format",
                "both",
                "--output",
            ])
            .arg(format!("oci:{}", t.path().join("layout").display()))
            .arg("--sbom-output")
            .arg(&out),
    );
    let spdx_file = t.path().join("sbom.spdx.json");
    let spdx = read_json(&spdx_file);
    for (name, version) in &graph {
        let purl = format!("pkg:cargo/{name}@{version}");
        let p = spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["externalRefs"][0]["referenceLocator"] == purl.as_str())
            .unwrap_or_else(|| panic!("SPDX lacks {purl}"));
        assert_eq!(p["versionInfo"], version.as_str());
        assert_eq!(p["licenseDeclared"], "MIT OR Apache-2.0", "{p}");
        assert_eq!(p["checksums"][0]["algorithm"], "SHA256", "{p}");
    }
    validate_spdx(&spdx_file);
    validate_cyclonedx(&t.path().join("sbom.cdx.json"));
}

/// The cargo-itoa fixture built with `cargo auditable` (the `.dep-v0`
/// section), for the host.
fn auditable_binary(t: &Path) -> PathBuf {
    let cargo = require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    require_tool(
        "cargo-auditable",
        "cargo install --locked --version 0.7.7 cargo-auditable (scripts/install-deps.sh)",
    );
    let dir = copy_fixture("cargo-itoa", t);
    run_ok(Command::new(&cargo).arg("fetch").current_dir(&dir));
    run_ok(
        Command::new(&cargo)
            .args(["auditable", "build", "--release", "--offline", "--locked"])
            .current_dir(&dir),
    );
    dir.join("target/release/cargo-itoa")
}

#[test]
fn cargo_auditable_section_lists_the_crates_of_a_binary_nobody_built_here() {
    let t = tmp();
    let bin = auditable_binary(t.path());
    let out = t.path().join("cdx.json");
    run_ok(
        dp().arg("sbom")
            .arg(&bin)
            .args(["--format", "cyclonedx", "--output"])
            .arg(&out),
    );
    let doc = read_json(&out);
    let itoa = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purl"] == "pkg:cargo/itoa@1.0.11")
        .unwrap_or_else(|| panic!("no itoa: {doc}"));
    assert!(
        itoa["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["value"] == "cargo-auditable"),
        "{itoa}"
    );
    validate_cyclonedx(&out);
    let spdx = t.path().join("spdx.json");
    run_ok(dp().arg("sbom").arg(&bin).arg("--output").arg(&spdx));
    validate_spdx(&spdx);
}

/// Replaces section `name` of `bin` with `f(contents)`, with objcopy.
fn mutate_section(bin: &Path, name: &str, f: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let objcopy = require_tool("objcopy", "apt-get install -y binutils");
    let dir = bin.parent().unwrap();
    let sec = dir.join("section.bin");
    run_ok(
        Command::new(&objcopy)
            .arg(format!("--dump-section={name}={}", sec.display()))
            .arg(bin)
            .arg(dir.join("unused.out")),
    );
    let mut bytes = std::fs::read(&sec).unwrap();
    f(&mut bytes);
    std::fs::write(&sec, &bytes).unwrap();
    let out = dir.join("mutated");
    run_ok(
        Command::new(&objcopy)
            .arg(format!("--update-section={name}={}", sec.display()))
            .arg(bin)
            .arg(&out),
    );
    out
}

#[track_caller]
fn sbom_with_warning(bin: &Path, section: &str) -> Value {
    let out = run(dp().arg("sbom").arg(bin));
    assert!(
        out.status.success(),
        "a warning, not a failure: {}",
        both(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains(section),
        "{}",
        both(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn corrupt_dep_v0_section_gives_a_warning_and_an_sbom_without_its_crates() {
    let t = tmp();
    let bin = auditable_binary(t.path());
    for (what, f) in [
        (
            "truncated",
            (|b: &mut Vec<u8>| b.truncate(b.len() / 2)) as fn(&mut Vec<u8>),
        ),
        ("mutated", |b: &mut Vec<u8>| {
            for x in b.iter_mut().skip(2).step_by(7) {
                *x ^= 0x5a;
            }
        }),
    ] {
        let bad = mutate_section(&bin, ".dep-v0", f);
        let doc = sbom_with_warning(&bad, ".dep-v0");
        assert!(
            !spdx_packages(&doc)
                .iter()
                .any(|(_, _, p)| p.starts_with("pkg:cargo/itoa")),
            "{what}: no crates from a broken section"
        );
        let file = t.path().join(format!("{what}.json"));
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        validate_spdx(&file);
    }
}

#[test]
fn corrupt_go_build_info_gives_a_warning_and_an_sbom_without_its_modules() {
    let t = tmp();
    let bin = go_binary(t.path());
    for (what, f) in [
        // The version string's length becomes larger than the section.
        (
            "mutated",
            (|b: &mut Vec<u8>| {
                b[32] = 0xff;
                b[33] = 0xff;
                b[34] = 0x7f;
            }) as fn(&mut Vec<u8>),
        ),
        ("truncated", |b: &mut Vec<u8>| {
            let n = b.len();
            for x in &mut b[40.min(n)..] {
                *x = 0;
            }
        }),
    ] {
        let bad = mutate_section(&bin, ".go.buildinfo", f);
        let doc = sbom_with_warning(&bad, "Go build info");
        assert!(
            !spdx_packages(&doc)
                .iter()
                .any(|(_, _, p)| p.starts_with("pkg:golang/")),
            "{what}: no modules from a broken build info: {doc}"
        );
    }
}

#[test]
fn sbom_off_and_a_bad_format_are_refused_or_honoured() {
    let t = tmp();
    let bin = go_binary(t.path());
    let out = run(dp()
        .args([
            "pack",
            "--no-verify",
            "--sbom=false",
            "--sbom-output",
            "x.json",
        ])
        .arg(&bin));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = run(dp()
        .args(["pack", "--no-verify", "--sbom-format", "xml"])
        .arg(&bin));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = run(dp().arg("sbom").arg(t.path().join("missing")));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "{}",
        both(&out)
    );
}

#[test]
fn c_build_sbom_lists_the_static_libraries_linked_with_their_sha256() {
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    let t = tmp();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("images/c-libfoo"))
            .arg(t.path()),
    );
    let dir = t.path().join("c-libfoo");
    let out = t.path().join("sbom.json");
    run_ok(
        dp().arg("build")
            .arg(&dir)
            .args(["--runner", "host", "--output"])
            .arg(format!("oci:{}", t.path().join("layout").display()))
            .arg("--sbom-output")
            .arg(&out),
    );
    let doc = read_json(&out);
    let lib = |name: &str| -> Value {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
            .clone()
    };
    // The project's own archive and musl's C library, by their bytes.
    let sha = |p: &Path| {
        let out = run_ok(Command::new("sha256sum").arg(p));
        out.split_whitespace().next().unwrap().to_string()
    };
    let foo = lib("libfoo.a");
    assert_eq!(
        foo["checksums"][0]["checksumValue"],
        sha(&dir.join("libfoo.a")).as_str()
    );
    let libc = lib("libc.a");
    let path = libc["comment"]
        .as_str()
        .unwrap()
        .rsplit("static-library:path: ")
        .next()
        .unwrap()
        .to_string();
    assert!(
        path.contains("musl"),
        "musl-gcc links musl's libc.a, not glibc's: {path}"
    );
    assert_eq!(
        libc["checksums"][0]["checksumValue"],
        sha(Path::new(&path)).as_str()
    );
    validate_spdx(&out);
}

#[test]
fn the_image_digest_is_the_same_with_and_without_documents() {
    let t = tmp();
    let bin = go_binary(t.path());
    let digest = |extra: &[&str]| {
        run_ok(dp().args(["pack", "--no-verify"]).args(extra).arg(&bin))
            .trim()
            .to_string()
    };
    let with = digest(&["--sbom-format", "both"]);
    let without = digest(&["--sbom=false", "--provenance=false"]);
    assert!(with.starts_with("sha256:"), "{with}");
    assert_eq!(with, without);
}

#[test]
fn index_sbom_output_writes_one_file_per_platform_and_sbom_reads_each_image_back() {
    let t = tmp();
    let layout = t.path().join("layout");
    let out = t.path().join("sbom.json");
    go_index(t.path(), &layout, &["--sbom-output", out.to_str().unwrap()]);
    for arch in ["amd64", "arm64"] {
        let file = t.path().join(format!("sbom-linux-{arch}.json"));
        let doc = read_json(&file);
        let image = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["SPDXID"] == "SPDXRef-Image")
            .unwrap();
        assert!(
            image["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .ends_with(&format!("arch={arch}")),
            "{image}"
        );
        validate_spdx(&file);
        // `sbom SOURCE` finds the entrypoint in that platform's layer.
        let back: Value = serde_json::from_str(&run_ok(
            dp().arg("sbom")
                .arg(format!("oci:{}:multi", layout.display()))
                .args(["--platform", &format!("linux/{arch}")]),
        ))
        .unwrap();
        assert!(
            spdx_packages(&back)
                .iter()
                .any(|(_, v, p)| p == "pkg:golang/example.com/dp/greet@v0.1.0" && v == "v0.1.0"),
            "{back}"
        );
        assert_eq!(
            back["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["fileName"] == "./app/app")
                .map(|f| f["checksums"][1]["checksumValue"].clone()),
            doc["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["fileName"] == "./app/app")
                .map(|f| f["checksums"][1]["checksumValue"].clone()),
            "the same binary, read back from the layer"
        );
    }
}

/// `pack` describes the files where it read them (the binary streamed,
/// never held in memory, and no layer inflated again); `sbom SOURCE` reads
/// the layers. Both must say the same of every file and component: they
/// are the same bytes.
#[test]
fn sbom_made_at_pack_time_matches_the_one_read_back_from_the_layers() {
    let t = tmp();
    let bin = go_binary(t.path());
    let zones = t.path().join("zoneinfo");
    std::fs::create_dir_all(zones.join("Europe")).unwrap();
    std::fs::write(zones.join("UTC"), b"TZif2 utc").unwrap();
    std::fs::write(zones.join("Europe/Paris"), b"TZif2 paris").unwrap();
    let layout = t.path().join("layout");
    let at_pack = t.path().join("pack.spdx.json");
    run_ok(
        dp().args(["pack", "--tag", "app:1", "--passwd"])
            .arg(format!("--tzdata={}", zones.display()))
            .arg("--sbom-output")
            .arg(&at_pack)
            .arg("--output")
            .arg(format!("oci:{}:1", layout.display()))
            .arg(&bin),
    );
    let back_file = t.path().join("back.spdx.json");
    run_ok(
        dp().arg("sbom")
            .arg(format!("oci:{}:1", layout.display()))
            .arg("--output")
            .arg(&back_file),
    );
    // `sbom` names the image as the layout's index.json does (`app:1`, as
    // `pack --tag` wrote it), so the two documents are the same bytes
    assert_eq!(
        String::from_utf8(std::fs::read(&back_file).unwrap()).unwrap(),
        String::from_utf8(std::fs::read(&at_pack).unwrap()).unwrap(),
        "sbom oci:DIR gives the SBOM pack made, byte for byte"
    );
    let (pack, back) = (read_json(&at_pack), read_json(&back_file));
    let names = |d: &Value| -> Vec<String> {
        d["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileName"].as_str().unwrap().to_string())
            .collect()
    };
    for f in [
        "./app/app",
        "./etc/passwd",
        "./etc/group",
        "./usr/share/zoneinfo/Europe/Paris",
    ] {
        assert!(
            names(&pack).iter().any(|n| n == f),
            "{f} missing: {:?}",
            names(&pack)
        );
    }
    assert_same_contents(&pack, &back);
}

/// Two SPDX documents of one image say the same of its contents: every
/// file with its hashes, every package but the image's own (the
/// application's supplier is named after the image too: `app` at pack
/// time, the source given to `sbom`), every relationship.
#[track_caller]
fn assert_same_contents(a: &Value, b: &Value) {
    assert_eq!(a["files"], b["files"], "the files, with their hashes");
    let packages = |d: &Value| -> Vec<Value> {
        d["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["SPDXID"] != "SPDXRef-Image")
            .map(|p| {
                let mut p = p.clone();
                if p["SPDXID"] == "SPDXRef-Application" {
                    p.as_object_mut().unwrap().remove("supplier");
                }
                p
            })
            .collect()
    };
    assert!(packages(a).len() > 2, "{a}");
    assert_eq!(packages(a), packages(b), "the components");
    assert_eq!(a["relationships"], b["relationships"]);
}

/// The provenance attached in an OCI layout: the artifact manifest whose
/// artifactType is in-toto's, and its one layer.
fn provenance_in(layout: &Path) -> Value {
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let Ok(m) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if m["artifactType"] == "application/vnd.in-toto+json" {
            let layer = m["layers"][0]["digest"].as_str().unwrap();
            let hex = layer.strip_prefix("sha256:").unwrap();
            return read_json(&layout.join("blobs/sha256").join(hex));
        }
    }
    panic!("no provenance in {}", layout.display());
}

#[test]
fn provenance_records_the_image_settings_as_the_image_applies_them() {
    let t = tmp();
    let bin = go_binary(t.path());
    let layout = t.path().join("layout");
    run_ok(
        dp().args([
            "pack",
            "--tag",
            "app:1",
            "--passwd",
            "--compression",
            "zstd",
        ])
        .args([
            "--env",
            "GREETING=hi",
            "--user",
            "65532:65532",
            "--port",
            "8080",
        ])
        .args([
            "--label",
            "team=core",
            "--annotation",
            "org.example.ticket=42",
        ])
        .arg("--output")
        .arg(format!("oci:{}:1", layout.display()))
        .arg(&bin),
    );
    let p = provenance_in(&layout);
    let def = &p["predicate"]["buildDefinition"];
    assert_eq!(
        def["buildType"],
        "https://distroless-pack.dev/buildtypes/pack/v1"
    );
    let s = &def["externalParameters"]["settings"];
    assert_eq!(s["entrypoint"], serde_json::json!(["/app/app"]), "{s}");
    assert!(
        s["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hi"),
        "{s}"
    );
    assert_eq!(s["user"], "65532:65532");
    assert_eq!(s["workingDir"], "/app");
    assert_eq!(s["exposedPorts"], serde_json::json!(["8080/tcp"]));
    assert_eq!(s["labels"]["team"], "core");
    assert_eq!(s["annotations"]["org.example.ticket"], "42");
    assert_eq!(s["extras"], serde_json::json!(["passwd"]));
    assert_eq!(s["compression"], "zstd");
}

/// An OCI layout of one uncompressed layer made from `root` by GNU tar,
/// whose config's entrypoint is `entrypoint`.
fn layout_of_tree(root: &Path, entrypoint: &str, layout: &Path) {
    use sha2::{Digest as _, Sha256};
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let tar = layout.join("layer.tar");
    run_ok(
        Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-C",
            ])
            .arg(root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let layer = std::fs::read(&tar).unwrap();
    std::fs::remove_file(&tar).unwrap();
    let (layer_digest, layer_size) = put(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": [entrypoint]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
            "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "1"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
}

/// `sbom SOURCE` keeps only the entrypoint's bytes (in a temp file), so an
/// entrypoint that is a symlink to a file elsewhere in the layers is read
/// in a second pass once the link is resolved.
#[test]
fn sbom_of_an_image_whose_entrypoint_is_a_symlink_describes_the_file_it_leads_to() {
    let t = tmp();
    let bin = go_binary(t.path());
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("opt/real")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::copy(&bin, root.join("opt/real/app")).unwrap();
    std::os::unix::fs::symlink("../opt/real/app", root.join("app/app")).unwrap();
    std::fs::write(root.join("opt/real/notes.txt"), b"not the binary").unwrap();
    let layout = t.path().join("layout");
    layout_of_tree(&root, "/app/app", &layout);
    let doc: Value = serde_json::from_str(&run_ok(
        dp().arg("sbom").arg(format!("oci:{}:1", layout.display())),
    ))
    .unwrap();
    let want = {
        use sha2::{Digest as _, Sha256};
        hex::encode(Sha256::digest(std::fs::read(&bin).unwrap()))
    };
    let files = doc["files"].as_array().unwrap();
    let binary = files
        .iter()
        .find(|f| f["fileName"] == "./app/app")
        .unwrap_or_else(|| panic!("no ./app/app in {doc}"));
    assert_eq!(binary["checksums"][1]["checksumValue"], want.as_str());
    assert!(
        files
            .iter()
            .any(|f| f["fileName"] == "./opt/real/notes.txt"),
        "the other files are listed: {files:?}"
    );
    assert!(
        spdx_packages(&doc)
            .iter()
            .any(|(_, v, p)| p == "pkg:golang/example.com/dp/greet@v0.1.0" && v == "v0.1.0"),
        "the Go modules of the file the link leads to: {doc}"
    );
}

#[test]
fn nativeaot_binary_sbom_names_the_dotnet_runtime_it_was_compiled_with() {
    let t = tmp();
    let bin = repo_root().join("tests/fixtures/dotnet/console-static/console-static");
    let out = t.path().join("spdx.json");
    run_ok(dp().arg("sbom").arg(&bin).arg("--output").arg(&out));
    let doc = read_json(&out);
    assert!(
        spdx_packages(&doc)
            .iter()
            .any(|(n, v, p)| n == "Microsoft.DotNet.ILCompiler"
                && v == "10.0.12"
                && p == "pkg:nuget/Microsoft.DotNet.ILCompiler@10.0.12"),
        "{doc}"
    );
    validate_spdx(&out);
    let cdx = t.path().join("cdx.json");
    run_ok(
        dp().arg("sbom")
            .arg(&bin)
            .args(["--format", "cyclonedx", "-o"])
            .arg(&cdx),
    );
    validate_cyclonedx(&cdx);
}

/// `sbom` of an image reads its binary out of the layer, whichever way the
/// layer is compressed: a gzip layer of several members (the Go binary is
/// over one 1 MiB chunk) and a zstd layer give the same components, the
/// same as `go version -m` prints, and the binary's real sha256.
#[test]
fn sbom_of_a_packed_image_reads_multi_member_gzip_and_zstd_layers() {
    let t = tmp();
    let bin = go_binary(t.path());
    assert!(
        std::fs::metadata(&bin).unwrap().len() > 1 << 20,
        "more than one gzip member"
    );
    let deps = go_deps(&bin);
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&bin).unwrap()))
    };
    let mut seen = Vec::new();
    for compression in ["gzip", "zstd"] {
        let layout = t.path().join(format!("layout-{compression}"));
        run_ok(
            dp().args([
                "pack",
                "--no-verify",
                "--tag",
                "go-app:1",
                "--compression",
                compression,
            ])
            .arg(&bin)
            .arg("--output")
            .arg(format!("oci:{}:1", layout.display())),
        );
        let out = run_ok(dp().arg("sbom").arg(format!("oci:{}:1", layout.display())));
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let pkgs = spdx_packages(&doc);
        for (path, version) in &deps {
            assert!(
                pkgs.iter().any(|(n, v, _)| n == path && v == version),
                "{compression}: the SBOM lacks {path}@{version}: {pkgs:?}"
            );
        }
        assert!(
            out.contains(&sha),
            "{compression}: the SBOM names the binary's sha256 {sha}"
        );
        // every package but the image itself (named as pack named it, with
        // its digest, which the compression changes)
        let mut names: Vec<String> = pkgs
            .into_iter()
            .filter(|(n, _, _)| n != "go-app:1")
            .map(|(n, v, _)| format!("{n}@{v}"))
            .collect();
        names.sort();
        seen.push(names);
    }
    assert_eq!(
        seen[0], seen[1],
        "gzip and zstd images give the same components"
    );
}

/// `distroless-pack` with an empty docker config, so the machine's own
/// credentials never reach a test registry.
fn dp_isolated(home: &Path) -> Command {
    let mut c = dp();
    c.env("DOCKER_CONFIG", home.join("docker"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env_remove("DISTROLESS_PACK_REGISTRY_USERNAME")
        .env_remove("DISTROLESS_PACK_REGISTRY_PASSWORD");
    c
}

/// `sbom SOURCE [args]`, which must succeed: the SPDX document, also
/// written to `out` for the validators.
fn sbom_of(home: &Path, source: &str, args: &[&str], out: &Path) -> Value {
    run_ok(
        dp_isolated(home)
            .arg("sbom")
            .arg(source)
            .args(args)
            .arg("--output")
            .arg(out),
    );
    read_json(out)
}

/// The image package's digest in an SPDX document (its `pkg:oci` purl).
fn described_image(doc: &Value) -> String {
    let image = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["SPDXID"] == "SPDXRef-Image")
        .unwrap_or_else(|| panic!("no image package: {doc}"));
    let purl = image["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    let at = purl.find("@sha256%3A").unwrap_or_else(|| panic!("{purl}"));
    format!(
        "sha256:{}",
        &purl[at + "@sha256%3A".len()..at + "@sha256%3A".len() + 64]
    )
}

/// `sbom REGISTRY/REPO:TAG` pulls the image's layers (to a temp folder it
/// removes) and says what `sbom oci:DIR` of the layout it was pushed from
/// says; the application is named after the reference. Both formats pass
/// their validators. A platform the image is not is bad input.
#[test]
fn sbom_of_a_registry_image_says_what_the_sbom_of_its_layout_says() {
    use crate::support::registry::{Auth, Registry};
    let t = tmp();
    let bin = go_binary(t.path());
    let layout = t.path().join("layout");
    run_ok(
        dp().args(["pack", "--tag", "app:1", "--passwd", "--output"])
            .arg(format!("oci:{}:1", layout.display()))
            .arg(&bin),
    );
    let reg = Registry::start(Auth::None);
    let reference = reg.reference("sbom/app:1");
    run_ok(
        dp_isolated(t.path())
            .arg("push")
            .arg(format!("oci:{}:1", layout.display()))
            .arg(&reference),
    );
    let pulls = t.path().join("tmp");
    std::fs::create_dir_all(&pulls).unwrap();
    let from_layout = sbom_of(
        t.path(),
        &format!("oci:{}:1", layout.display()),
        &[],
        &t.path().join("layout.spdx.json"),
    );
    let reg_file = t.path().join("registry.spdx.json");
    let out = run(dp_isolated(t.path())
        .env("TMPDIR", &pulls)
        .args(["sbom", &reference, "--output"])
        .arg(&reg_file));
    assert!(out.status.success(), "{}", both(&out));
    let from_registry = read_json(&reg_file);
    assert_same_contents(&from_layout, &from_registry);
    assert_eq!(
        described_image(&from_registry),
        described_image(&from_layout)
    );
    let app = from_registry["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["SPDXID"] == "SPDXRef-Application")
        .unwrap();
    assert_eq!(
        app["supplier"],
        format!("Organization: {}", reg.reference("sbom/app")).as_str()
    );
    validate_spdx(&reg_file);
    assert_eq!(
        std::fs::read_dir(&pulls).unwrap().count(),
        0,
        "the downloaded layers are removed"
    );
    let cdx = t.path().join("registry.cdx.json");
    sbom_of(
        t.path(),
        &format!("docker://{reference}"),
        &["--format", "cyclonedx"],
        &cdx,
    );
    validate_cyclonedx(&cdx);

    // a platform the image is not: bad input, naming what there is
    let out = run(dp_isolated(t.path()).args(["sbom", &reference, "--platform", "linux/arm64"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no linux/arm64 image; it has linux/amd64"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// `sbom --attached` prints the document `pack` attached, byte for byte:
/// from the layout (the `--sbom-output` file's bytes, in both formats) and
/// from the registry it was pushed to (by the tag schema there). A format
/// not attached, a docker archive and a bare executable are bad input
/// (exit 2) that say what there is, with nothing on stdout.
#[test]
fn attached_sbom_is_the_document_pack_attached_from_a_layout_and_a_registry() {
    use crate::support::registry::{Auth, Registry};
    let t = tmp();
    let hello = crate::support::corpus::musl_static_hello();
    let layout = t.path().join("layout");
    let written = t.path().join("written.json");
    run_ok(
        dp().args([
            "pack",
            "--tag",
            "app:1",
            "--sbom-format",
            "both",
            "--output",
        ])
        .arg(format!("oci:{}:1", layout.display()))
        .arg("--output")
        .arg(format!(
            "docker-archive:{}",
            t.path().join("app.tar").display()
        ))
        .arg("--sbom-output")
        .arg(&written)
        .arg(&hello),
    );
    let src = format!("oci:{}:1", layout.display());
    let attached = |source: &str, format: &str| {
        let out = t.path().join(format!("attached-{format}.json"));
        run_ok(
            dp_isolated(t.path())
                .args(["sbom", "--attached", source, "--format", format, "--output"])
                .arg(&out),
        );
        std::fs::read(&out).unwrap()
    };
    let spdx = std::fs::read(t.path().join("written.spdx.json")).unwrap();
    let cdx = std::fs::read(t.path().join("written.cdx.json")).unwrap();
    assert_eq!(attached(&src, "spdx"), spdx);
    assert_eq!(attached(&src, "cyclonedx"), cdx);
    // on stdout: the document and a newline, as `sbom` prints one
    let out = run_ok(dp_isolated(t.path()).args(["sbom", "--attached", &src]));
    assert_eq!(out.as_bytes(), [spdx.as_slice(), b"\n"].concat());

    let reg = Registry::start(Auth::None);
    let reference = reg.reference("attached/app:1");
    run_ok(dp_isolated(t.path()).args(["push", &src, &reference]));
    assert_eq!(attached(&reference, "spdx"), spdx);
    assert_eq!(attached(&format!("docker://{reference}"), "cyclonedx"), cdx);

    // only SPDX attached: CycloneDX is bad input naming what is there
    let spdx_only = t.path().join("spdx-only");
    run_ok(
        dp().args(["pack", "--tag", "app:1", "--output"])
            .arg(format!("oci:{}:1", spdx_only.display()))
            .arg(&hello),
    );
    let refused = |source: &str, want: &str| {
        let out = run(dp_isolated(t.path()).args([
            "sbom",
            "--attached",
            source,
            "--format",
            "cyclonedx",
        ]));
        assert_eq!(out.status.code(), Some(2), "{}", both(&out));
        assert!(out.stdout.is_empty(), "{}", both(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    };
    refused(
        &format!("oci:{}:1", spdx_only.display()),
        "no application/vnd.cyclonedx+json document is attached (it has application/spdx+json, application/vnd.in-toto+json)",
    );
    let reference = reg.reference("attached/spdx-only:1");
    run_ok(dp_isolated(t.path()).args([
        "push",
        &format!("oci:{}:1", spdx_only.display()),
        &reference,
    ]));
    refused(
        &reference,
        "no application/vnd.cyclonedx+json document is attached (it has application/spdx+json, application/vnd.in-toto+json)",
    );
    refused(
        &format!("docker-archive:{}", t.path().join("app.tar").display()),
        "(no documents are attached)",
    );
    refused(
        hello.to_str().unwrap(),
        "an executable has no attached documents",
    );

    // a layout whose SBOM blob was changed: bad input naming the blob
    let blob = layout.join("blobs/sha256").join(hex::encode({
        use sha2::Digest as _;
        sha2::Sha256::digest(&spdx)
    }));
    let mut changed = spdx.clone();
    changed[10] ^= 1;
    std::fs::write(&blob, &changed).unwrap();
    let out = run(dp_isolated(t.path()).args(["sbom", "--attached", &src]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(out.stdout.is_empty(), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match its digest"), "{err}");
}

/// `sbom --attached` of a registry that sends other bytes for the SBOM
/// blob: exit 4 naming both digests, and nothing on stdout.
#[test]
fn an_attached_sbom_the_registry_sends_wrong_is_refused_naming_both_digests() {
    use crate::support::registry::{Fault, FaultProxy};
    use sha2::Digest as _;
    let t = tmp();
    let (reg, layout) = pushed_hello(t.path(), "bad/attached:1");
    let spdx = run_ok(dp_isolated(t.path()).args([
        "sbom",
        "--attached",
        &format!("oci:{}:1", layout.display()),
    ]));
    let spdx = spdx.strip_suffix('\n').unwrap().as_bytes().to_vec();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&spdx)));
    let wanted = format!("/blobs/{digest}");
    let size = spdx.len();
    let proxy = FaultProxy::start(&reg.host, move |req| {
        if req.method == "GET" && req.path().ends_with(&wanted) {
            Fault::Answer {
                status: 200,
                body: "y".repeat(size),
            }
        } else {
            Fault::Forward
        }
    });
    let out =
        run(dp_isolated(t.path()).args(["sbom", "--attached", &proxy.reference("bad/attached:1")]));
    assert_eq!(out.status.code(), Some(4), "{}", both(&out));
    assert!(out.stdout.is_empty(), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let other = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest("y".repeat(size).as_bytes()))
    );
    assert!(err.contains(&digest) && err.contains(&other), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// For an index in a registry, `--platform` picks the image, as for a
/// layout.
#[test]
fn sbom_of_a_registry_index_describes_the_platform_image_asked_for() {
    use crate::support::registry::{Auth, Registry};
    let t = tmp();
    let layout = t.path().join("layout");
    go_index(t.path(), &layout, &[]);
    let reg = Registry::start(Auth::None);
    let reference = reg.reference("sbom/multi:v1");
    run_ok(
        dp_isolated(t.path())
            .arg("push")
            .arg(format!("oci:{}:multi", layout.display()))
            .arg(&reference),
    );
    let args = ["--platform", "linux/arm64"];
    let from_layout = sbom_of(
        t.path(),
        &format!("oci:{}:multi", layout.display()),
        &args,
        &t.path().join("layout.json"),
    );
    let from_registry = sbom_of(t.path(), &reference, &args, &t.path().join("registry.json"));
    assert_same_contents(&from_layout, &from_registry);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let index_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let index_json: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(&index_digest["sha256:".len()..]),
        )
        .unwrap(),
    )
    .unwrap();
    let arm = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap();
    assert_eq!(
        described_image(&from_registry),
        arm["digest"].as_str().unwrap()
    );
    // Only the chosen image's config is fetched: the index names the
    // platforms.
    let config_of = |arch: &str| {
        let m = index_json["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap();
        let d = m["digest"].as_str().unwrap();
        let manifest = read_json(&layout.join("blobs/sha256").join(&d["sha256:".len()..]));
        manifest["config"]["digest"].as_str().unwrap().to_string()
    };
    let gets = |digest: &str| {
        reg.log_text()
            .lines()
            .filter(|l| l.contains(&format!("\"GET /v2/sbom/multi/blobs/{digest} ")))
            .count()
    };
    assert_eq!(gets(&config_of("arm64")), 1, "{}", reg.log_text());
    assert_eq!(gets(&config_of("amd64")), 0, "{}", reg.log_text());
}

/// The corpus's static hello packed as `app:1` into `DIR/layout` and
/// pushed to a fresh registry as `repo`: the registry and the layout.
fn pushed_hello(dir: &Path, repo: &str) -> (crate::support::registry::Registry, PathBuf) {
    use crate::support::registry::{Auth, Registry};
    let layout = dir.join("layout");
    run_ok(
        dp().args(["pack", "--tag", "app:1", "--output"])
            .arg(format!("oci:{}:1", layout.display()))
            .arg(crate::support::corpus::musl_static_hello()),
    );
    let reg = Registry::start(Auth::None);
    run_ok(
        dp_isolated(dir)
            .arg("push")
            .arg(format!("oci:{}:1", layout.display()))
            .arg(reg.reference(repo)),
    );
    (reg, layout)
}

/// A registry that sends other bytes for a layer (the same size, another
/// digest) gives an error naming both digests, exit 4, and no SBOM.
#[test]
fn a_layer_the_registry_sends_wrong_gives_no_sbom_and_names_both_digests() {
    use crate::support::registry::{Fault, FaultProxy};
    let t = tmp();
    let (reg, layout) = pushed_hello(t.path(), "bad/app:1");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(&index["manifests"][0]["digest"].as_str().unwrap()["sha256:".len()..]),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let size = manifest["layers"][0]["size"].as_u64().unwrap() as usize;
    let wanted = format!("/blobs/{layer}");
    let proxy = FaultProxy::start(&reg.host, move |req| {
        if req.method == "GET" && req.path().ends_with(&wanted) {
            Fault::Answer {
                status: 200,
                body: "x".repeat(size),
            }
        } else {
            Fault::Forward
        }
    });
    let out = run(dp_isolated(t.path()).args(["sbom", &proxy.reference("bad/app:1")]));
    assert_eq!(out.status.code(), Some(4), "{}", both(&out));
    assert!(out.stdout.is_empty(), "no SBOM: {}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("distroless-pack: error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    let other = {
        use sha2::Digest as _;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest("x".repeat(size).as_bytes()))
        )
    };
    assert!(line.contains(&layer) && line.contains(&other), "{line}");
    assert!(line.contains("the registry sent"), "{line}");
}

/// Registries hand blob downloads to their storage with a redirect (S3,
/// a CDN): `sbom` of a registry image follows it to the other host.
#[test]
fn sbom_of_a_registry_image_follows_a_layer_handed_to_another_host() {
    use crate::support::registry::{Fault, FaultProxy};
    let t = tmp();
    let (reg, _layout) = pushed_hello(t.path(), "moved/app:1");
    let storage = reg.host.clone();
    let proxy = FaultProxy::start(&reg.host, move |req| {
        if req.method == "GET" && req.path().contains("/blobs/sha256:") {
            Fault::Redirect {
                status: 307,
                location: format!("http://{storage}{}", req.target),
            }
        } else {
            Fault::Forward
        }
    });
    let via_proxy = sbom_of(
        t.path(),
        &proxy.reference("moved/app:1"),
        &[],
        &t.path().join("proxy.json"),
    );
    let direct = sbom_of(
        t.path(),
        &reg.reference("moved/app:1"),
        &[],
        &t.path().join("direct.json"),
    );
    assert_eq!(via_proxy["files"], direct["files"]);
    assert!(
        proxy
            .exchanges()
            .iter()
            .any(|x| x.method == "GET" && x.target.contains("/blobs/sha256:")),
        "the proxy redirected the blobs: {}",
        proxy.log_text()
    );
}
