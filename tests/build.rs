//! `distroless-pack build`: the example apps compiled on the host (C, C with
//! libfoo.a, Go, Rust), verified, packed, loaded into docker and run; the
//! container runner with a builder image made without pulling (a Debian
//! rootfs from debootstrap, imported into the test docker engine); the .NET
//! publish command and props for every mode (no .NET SDK exists here); and
//! configuration and failure handling.
//!
//! Each test copies its example into a temp dir first, so parallel tests
//! never race on one source tree and nothing is left in images/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::engines;
use crate::util::{both, dp, repo_root, require_tool, run, run_ok, tmp, write_file};

/// Copies `images/NAME` into a fresh temp dir (without build outputs).
fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tmp();
    let dest = t.path().join(name);
    copy_tree(&repo_root().join("images").join(name), &dest);
    (t, dest)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let name = e.file_name();
        let n = name.to_string_lossy();
        if matches!(n.as_ref(), "target" | "out" | "bin" | "obj") {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &to.join(&name));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// `distroless-pack build` with the test docker engine's environment (so
/// `--load` and `--runner container` talk to it).
fn dp_build(engine_env: &[(String, String)]) -> Command {
    let mut c = dp();
    c.arg("build");
    for (k, v) in engine_env {
        c.env(k, v);
    }
    c
}

/// The environment that points `docker` at the test engine.
fn docker_env() -> Vec<(String, String)> {
    engines::docker().envs().to_vec()
}

fn docker() -> Command {
    engines::docker().cmd()
}

/// The host toolchain of the C examples: musl-gcc and make.
fn require_musl_and_make() {
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    require_tool("make", "apt-get install -y make");
}

/// Builds `dir` on the host into a docker archive, loads it into the test
/// docker and returns the image name.
fn build_and_load(dir: &Path, name: &str, extra: &[&str]) -> String {
    let t = tmp();
    let archive = t.path().join("image.tar");
    let tag = format!("dp-build-test/{name}:1");
    let out = run(dp_build(&[])
        .arg(dir)
        .args(["--runner", "host", "--tag", &tag, "--output"])
        .arg(format!("docker-archive:{}", archive.display()))
        .args(extra));
    assert!(out.status.success(), "build failed\n{}", both(&out));
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        digest.starts_with("sha256:"),
        "stdout should be the digest: {}",
        both(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for stage in ["[ build]", "[verify]", "[  pack]", "[  ship]"] {
        assert!(
            stderr.contains(stage),
            "no {stage} progress line:\n{stderr}"
        );
    }
    run_ok(docker().arg("load").arg("-i").arg(&archive));
    tag
}

fn docker_run(image: &str) -> String {
    run_ok(docker().args(["run", "--rm", "--network=none", image]))
}

#[test]
fn c_hello_host_end_to_end() {
    require_musl_and_make();
    let (_t, dir) = example("c-hello");
    let image = build_and_load(&dir, "c-hello", &[]);
    assert_eq!(docker_run(&image).trim(), "hello from distroless-pack");
}

#[test]
fn c_libfoo_host_end_to_end() {
    require_musl_and_make();
    let (_t, dir) = example("c-libfoo");
    let image = build_and_load(&dir, "c-libfoo", &[]);
    assert_eq!(docker_run(&image).trim(), "add(2,3) = 5");
}

#[test]
fn rust_hello_host_end_to_end() {
    require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    let (_t, dir) = example("rust-hello");
    let image = build_and_load(&dir, "rust-hello", &[]);
    assert_eq!(docker_run(&image).trim(), "hello from rust");
}

/// Runs a Go server image on the host network on a free port and asks it.
fn check_go_server(image: &str) {
    let port = engines::free_port();
    let env = format!("PORT={port}");
    let container = engines::docker().run_detached(&["--network=host", "-e", &env, image]);
    let (status, body) = engines::http_get(port, "/", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\ncontainer log:\n{}", container.logs()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "hello from go-http\n");
}

#[test]
fn go_http_host_end_to_end_answers_a_request() {
    require_tool("go", "apt-get install -y golang-go");
    let (_t, dir) = example("go-http");
    let image = build_and_load(&dir, "go-http", &[]);
    let inspect = run_ok(docker().args([
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}} {{json .Config.Env}}",
        &image,
    ]));
    assert!(
        inspect.contains("8080/tcp") && inspect.contains("PORT=8080"),
        "config from distroless-pack.toml: {inspect}"
    );
    check_go_server(&image);
}

#[test]
fn go_builds_both_platforms_into_one_index() {
    require_tool("go", "apt-get install -y golang-go");
    let (t, dir) = example("go-http");
    let layout = t.path().join("layout");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args([
            "--runner",
            "host",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
            "--json",
            "--output",
        ])
        .arg(format!("oci:{}:multi", layout.display())));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{doc}");
    assert_eq!(images[0]["platform"], "linux/amd64");
    assert_eq!(images[1]["platform"], "linux/arm64");
    let cmd = images[1]["build"]["command"].as_str().unwrap();
    assert!(
        cmd.contains("-trimpath") && cmd.contains("-buildmode=exe") && !cmd.contains("pie"),
        "{cmd}"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = &index["manifests"][0];
    assert_eq!(
        top["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    // `--platform all` plans the same two builds
    let plan = run_ok(dp_build(&[]).arg(&dir).args([
        "--runner",
        "host",
        "--platform",
        "all",
        "--dry-run",
        "--json",
    ]));
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let planned: Vec<&str> = plan["builds"]
        .as_array()
        .unwrap_or_else(|| panic!("{plan}"))
        .iter()
        .filter_map(|b| b["platform"].as_str())
        .collect();
    assert_eq!(planned, ["linux/amd64", "linux/arm64"], "{plan}");
}

/// zig cc from PyPI (`python3 -m ziglang`), as the C cross toolchain.
fn require_zig() {
    require_tool("python3", "apt-get install -y python3");
    let ok = Command::new("python3")
        .args(["-c", "import ziglang"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "required tool `zig` is not installed: run `pip install ziglang` (scripts/install-deps.sh installs every test dependency)");
}

#[test]
fn c_libfoo_cross_builds_for_arm64_with_zig_and_runs_under_qemu() {
    require_zig();
    engines::ensure_binfmt_arm64();
    let (t, dir) = example("c-libfoo");
    let archive = t.path().join("arm.tar");
    let tag = "dp-build-test/c-libfoo-arm64:1";
    let out = run(dp_build(&[])
        .arg(&dir)
        .args([
            "--runner",
            "host",
            "--platform",
            "linux/arm64",
            "--tag",
            tag,
            "--json",
            "--output",
        ])
        .arg(format!("docker-archive:{}", archive.display())));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["images"][0]["platform"], "linux/arm64");
    assert_eq!(doc["images"][0]["findings"]["errors"], 0);
    run_ok(docker().arg("load").arg("-i").arg(&archive));
    let printed = run_ok(docker().args([
        "run",
        "--rm",
        "--network=none",
        "--platform",
        "linux/arm64",
        tag,
    ]));
    assert_eq!(printed.trim(), "add(2,3) = 5");
}

#[test]
fn json_summary_has_digest_size_and_findings() {
    require_musl_and_make();
    let (t, dir) = example("c-hello");
    let layout = t.path().join("layout");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--json", "--output"])
        .arg(format!("oci:{}", layout.display())));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("[ build]"),
        "--json is quiet: {}",
        both(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)));
    assert!(doc["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(doc["kind"], "c");
    assert_eq!(doc["name"], "c-hello:latest");
    let size = doc["binary_size"].as_u64().unwrap();
    assert!(size > 1000, "{doc}");
    assert_eq!(doc["images"][0]["binary"]["size"].as_u64().unwrap(), size);
    assert_eq!(doc["images"][0]["verified"], true);
    assert_eq!(doc["images"][0]["findings"]["errors"], 0);
    assert_eq!(doc["outputs"][0]["kind"], "oci");
    assert!(layout.join("index.json").is_file());
}

// ---------------------------------------------------------------------------
// Failures and configuration

#[test]
fn failed_build_shows_compiler_output_and_writes_nothing() {
    require_musl_and_make();
    let t = tmp();
    let dir = t.path().join("broken");
    write_file(
        &dir,
        "Makefile",
        b"broken: broken.c\n\t$(CC) -o $@ broken.c $(LDFLAGS)\n",
    );
    write_file(
        &dir,
        "broken.c",
        b"int main(void) { return this_is_not_declared; }\n",
    );
    let archive = t.path().join("out.tar");
    let scratch = t.path().join("tmpdir");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--output"])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("TMPDIR", &scratch));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("this_is_not_declared"),
        "compiler output shown: {stderr}"
    );
    assert!(stderr.contains("build failed"), "{stderr}");
    assert!(!archive.exists(), "no output after a failed build");
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "nothing but the project and TMPDIR: {leftovers:?}"
    );
    let temp: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(temp.is_empty(), "build temp dirs removed: {temp:?}");
}

#[test]
fn ambiguous_binaries_are_listed_with_the_key_that_picks_one() {
    require_musl_and_make();
    let t = tmp();
    let dir = t.path().join("two");
    write_file(
        &dir,
        "Makefile",
        b"all: one two\none: m.c\n\t$(CC) -o $@ m.c $(LDFLAGS)\ntwo: m.c\n\t$(CC) -o $@ m.c $(LDFLAGS)\n",
    );
    write_file(&dir, "m.c", b"int main(void) { return 0; }\n");
    let out = run(dp_build(&[]).arg(&dir).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("one, two") && err.contains("`binary`") && err.contains("--bin"),
        "{err}"
    );
    // --bin picks one.
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--bin", "two", "--json"]));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["images"][0]["binary"]["name"], "two");
}

#[test]
fn unknown_config_key_names_file_and_key() {
    let t = tmp();
    let dir = t.path().join("cfg");
    write_file(&dir, "go.mod", b"module x\n");
    write_file(
        &dir,
        "distroless-pack.toml",
        b"name = \"x\"\n\n[dotnet]\nglobalisation = \"invariant\"\n",
    );
    let out = run(dp_build(&[]).arg(&dir).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("distroless-pack.toml")
            && err.contains("globalisation")
            && err.contains("line 4"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn unknown_project_kind_is_a_usage_error() {
    let t = tmp();
    let out = run(dp_build(&[]).arg(t.path()).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--kind"),
        "{}",
        both(&out)
    );
}

#[test]
fn config_file_sets_image_and_flags_override() {
    require_musl_and_make();
    let (t, dir) = example("c-hello");
    std::fs::write(
        dir.join("distroless-pack.toml"),
        "kind = \"c\"\nname = \"from-config\"\ntags = [\"v1\", \"v2\"]\nargs = [\"--flag\"]\nuser = \"1000:1000\"\nenv = { A = \"1\", B = \"2\" }\nlabels = { team = \"x\" }\n",
    )
    .unwrap();
    let layout = t.path().join("layout");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--json", "--env", "B=3", "--output"])
        .arg(format!("oci:{}", layout.display())));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["tags"],
        serde_json::json!(["from-config:v1", "from-config:v2"])
    );
    let inspect = run_ok(
        dp().args(["inspect", "--json"])
            .arg(format!("oci:{}:v1", layout.display())),
    );
    let i: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let text = i.to_string();
    assert!(
        text.contains("A=1") && text.contains("B=3") && !text.contains("B=2"),
        "flags override the file: {text}"
    );
    assert!(
        text.contains("1000:1000") && text.contains("--flag") && text.contains("team"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// .NET: no SDK here; the generated command and props are checked exactly.

/// PATH without any directory holding `dotnet`.
fn path_without_dotnet() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("dotnet").exists())
        .collect();
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn dotnet_host_without_sdk_fails_clearly() {
    let (_t, dir) = example("dotnet-console");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host"])
        .env("PATH", path_without_dotnet()));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dotnet not found: install the .NET 8+ SDK or use --runner container"),
        "{err}"
    );
    assert!(
        !dir.join("libfoo.a").exists(),
        "nothing ran before the tool check"
    );
    // --json: a document on stdout as well.
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--json"])
        .env("PATH", path_without_dotnet()));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["built"], false);
    assert!(
        doc["error"].as_str().unwrap().contains("dotnet not found"),
        "{doc}"
    );
}

/// The plan `build --dry-run --json` prints for the dotnet-console example
/// (musl unless the flags name a C library).
fn dotnet_plan(example_name: &str, flags: &[&str]) -> serde_json::Value {
    dotnet_plan_with(example_name, "", flags)
}

/// As [`dotnet_plan`], with `extra` appended to the example's
/// distroless-pack.toml (whose last table is `[dotnet]`).
fn dotnet_plan_with(example_name: &str, extra: &str, flags: &[&str]) -> serde_json::Value {
    let (_t, dir) = example(example_name);
    if !extra.is_empty() {
        let mut cfg = std::fs::read_to_string(dir.join("distroless-pack.toml")).unwrap();
        cfg.push_str(&format!("\n{extra}\n"));
        std::fs::write(dir.join("distroless-pack.toml"), cfg).unwrap();
    }
    let libc: &[&str] = if flags.contains(&"--libc") {
        &[]
    } else {
        &["--libc", "musl"]
    };
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--dry-run", "--json"])
        .args(libc)
        .args(flags));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["builds"][0].clone()
}

fn words(plan: &serde_json::Value) -> Vec<String> {
    let cmds = plan["command"].as_array().unwrap();
    cmds.last()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

fn props(plan: &serde_json::Value) -> String {
    plan["files"][0]["contents"].as_str().unwrap().to_string()
}

const RECIPE: &[&str] = &[
    "-p:PublishAot=true",
    "-p:StaticExecutable=true",
    "-p:StripSymbols=true",
];

#[test]
fn dotnet_console_plan_invariant() {
    let plan = dotnet_plan("dotnet-console", &[]);
    assert_eq!(plan["kind"], "dotnet");
    let w = words(&plan);
    let out = w.last().unwrap().trim_end_matches("/publish").to_string();
    let mut expected: Vec<String> = [
        "dotnet",
        "publish",
        "dotnet-console.csproj",
        "-c",
        "Release",
        "-r",
        "linux-musl-x64",
        "--nologo",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.extend(RECIPE.iter().map(|s| s.to_string()));
    expected.push("-p:InvariantGlobalization=true".into());
    // openssl = "auto": Program.cs uses System.Security.Cryptography.
    expected.push("-p:StaticOpenSslLinking=true".into());
    expected.push(format!(
        "-p:CustomBeforeDirectoryBuildProps={out}/distroless-pack.props"
    ));
    expected.push("-o".into());
    expected.push(format!("{out}/publish"));
    assert_eq!(w, expected);
    assert_eq!(
        props(&plan),
        "<Project>
  <!-- Generated by distroless-pack (the NativeAOT static recipe). Imported through
       CustomBeforeDirectoryBuildProps; the properties are also passed to dotnet publish
       as global properties (-p:), which win over the project's own values. -->
  <PropertyGroup>
    <PublishAot>true</PublishAot>
    <StaticExecutable>true</StaticExecutable>
    <StripSymbols>true</StripSymbols>
    <InvariantGlobalization>true</InvariantGlobalization>
    <StaticOpenSslLinking>true</StaticOpenSslLinking>
  </PropertyGroup>
  <ItemGroup>
    <DirectPInvoke Include=\"libc\" />
    <DirectPInvoke Include=\"foo!add\" />
    <NativeLibrary Include=\"$(MSBuildProjectDirectory)/libfoo.a\" />
  </ItemGroup>
</Project>
"
    );
    let script = plan["script"].as_str().unwrap();
    let make = script.find("( make -B libfoo.a )").expect("pre_build runs");
    assert!(
        make < script.rfind("dotnet publish").unwrap(),
        "libfoo.a is built before publishing"
    );
    assert!(
        plan["notes"]
            .to_string()
            .contains("System.Security.Cryptography"),
        "{}",
        plan["notes"]
    );
    // --openssl off drops it.
    let off = dotnet_plan("dotnet-console", &["--openssl", "off"]);
    assert!(!words(&off)
        .iter()
        .any(|x| x.contains("StaticOpenSslLinking")));
    assert!(!props(&off).contains("StaticOpenSslLinking"));
    assert!(
        !off["script"].as_str().unwrap().contains("command -v cmake"),
        "no native shim to build, no cmake needed"
    );
}

#[test]
fn dotnet_plan_static_icu_and_openssl() {
    let plan = dotnet_plan(
        "dotnet-console",
        &[
            "--globalization",
            "static-icu",
            "--openssl",
            "static",
            "--platform",
            "linux/arm64",
        ],
    );
    let w = words(&plan);
    assert!(w.contains(&"linux-musl-arm64".to_string()), "{w:?}");
    for p in [
        "-p:InvariantGlobalization=false",
        "-p:StaticICULinking=true",
        "-p:EmbedIcuDataPath=$DP_ICU_DAT",
        "-p:StaticOpenSslLinking=true",
    ] {
        assert!(w.contains(&p.to_string()), "{p} in {w:?}");
    }
    let props = props(&plan);
    assert!(
        props.contains("<StaticICULinking>true</StaticICULinking>"),
        "{props}"
    );
    assert!(
        props.contains("<EmbedIcuDataPath>$(DP_ICU_DAT)</EmbedIcuDataPath>"),
        "{props}"
    );
    assert!(
        props.contains("<StaticOpenSslLinking>true</StaticOpenSslLinking>"),
        "{props}"
    );
    let script = plan["script"].as_str().unwrap();
    assert!(
        script.contains("DP_ICU_DAT=$(ls /usr/share/icu/*/icudt*l.dat"),
        "{script}"
    );
    assert!(
        script.contains("-p:EmbedIcuDataPath=\"${DP_ICU_DAT}\""),
        "{script}"
    );
    assert!(
        !script.contains("cp \"$DP_ICU_DAT\""),
        "static-icu embeds, ships nothing"
    );
}

#[test]
fn dotnet_plan_icu_file_ships_the_data() {
    let plan = dotnet_plan(
        "dotnet-console",
        &[
            "--globalization",
            "icu-file",
            "--openssl",
            "off",
            "--no-pie",
        ],
    );
    let w = words(&plan);
    assert!(w.contains(&"-p:StaticICULinking=true".to_string()));
    assert!(
        w.contains(&"-p:PositionIndependentExecutable=false".to_string()),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|x| x.starts_with("-p:EmbedIcuDataPath")),
        "icu-file does not embed: {w:?}"
    );
    assert!(!w.iter().any(|x| x.contains("OpenSsl")), "{w:?}");
    let script = plan["script"].as_str().unwrap();
    assert!(
        script.contains("cp \"$DP_ICU_DAT\""),
        "the .dat is copied out for the image: {script}"
    );
}

#[test]
fn dotnet_webapiaot_plan_links_openssl() {
    let plan = dotnet_plan("dotnet-webapiaot", &[]);
    let w = words(&plan);
    assert!(w.contains(&"dotnet-webapiaot.csproj".to_string()));
    assert!(
        w.contains(&"-p:StaticOpenSslLinking=true".to_string()),
        "{w:?}"
    );
    assert!(w.contains(&"-p:InvariantGlobalization=true".to_string()));
    // openssl = "auto" detects the web SDK too.
    let auto = dotnet_plan("dotnet-webapiaot", &["--openssl", "auto"]);
    assert!(words(&auto).contains(&"-p:StaticOpenSslLinking=true".to_string()));
    let notes = auto["notes"].to_string();
    assert!(notes.contains("Microsoft.NET.Sdk.Web"), "{notes}");
}

#[test]
fn dotnet_dry_run_prints_props_and_script() {
    let (_t, dir) = example("dotnet-console");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--dry-run"]));
    assert!(out.status.success(), "{}", both(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("# dotnet build for linux/amd64 (host)"),
        "{text}"
    );
    assert!(
        text.contains("#       <DirectPInvoke Include=\"foo!add\" />"),
        "{text}"
    );
    assert!(
        text.contains("\ndotnet publish dotnet-console.csproj "),
        "{text}"
    );
}

#[test]
fn dotnet_container_plan_uses_the_mounts() {
    let (_t, dir) = example("dotnet-console");
    let out = run(dp_build(&docker_env()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--builder-image",
        "some/builder:1",
        "--dry-run",
        "--json",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = &doc["builds"][0];
    assert_eq!(plan["runner"], "docker:some/builder:1");
    let w = words(plan);
    assert!(
        w.contains(&"-p:CustomBeforeDirectoryBuildProps=/out/distroless-pack.props".to_string()),
        "{w:?}"
    );
    assert_eq!(&w[w.len() - 2..], ["-o", "/out/publish"]);
    // The C compiler for pre_build is picked inside the image.
    let script = plan["script"].as_str().unwrap();
    assert!(
        script.contains("[ -e /etc/alpine-release ]; then CC=cc"),
        "{script}"
    );
}

/// A stand-in `dotnet` (no .NET SDK exists on these machines): records its
/// arguments, environment and the generated props file, and "publishes" a
/// static hello (`$DP_FAKE_DOTNET_CC -static`, musl-gcc by default) as
/// NAME plus NAME.dbg into the `-o` directory, as `dotnet publish` with
/// StripSymbols does. The source (`DP_FAKE_DOTNET_SRC`) is compiled with
/// `-DINVARIANT` under `-p:InvariantGlobalization=true`, `-DWEBAPI` for the
/// dotnet-webapiaot project, and `$DP_FAKE_DOTNET_CFLAGS`, which
/// tests/fixtures/dotnet/stand-in-app.c reads, and linked with the props
/// file's `NativeLibrary` archives; `-r linux-arm64` compiles with
/// aarch64-linux-gnu-gcc. `DP_FAKE_DOTNET_ASSETS` is copied to the project's
/// `obj/project.assets.json`, as a restore writes it;
/// `DP_FAKE_DOTNET_FAIL` is a log printed before failing, as a failed
/// link would.
const FAKE_DOTNET: &str = r#"#!/bin/sh
set -e
if [ "$1" = "--version" ]; then echo 10.0.401; exit 0; fi
log="$DP_FAKE_DOTNET_LOG"
printf '%s\n' "$@" > "$log/args"
env > "$log/env"
rm -f "$log/props"
out=""; prev=""; project=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  [ "$prev" = "publish" ] && project="$a"
  case "$a" in -p:CustomBeforeDirectoryBuildProps=*) cp "${a#*=}" "$log/props" ;; esac
  prev="$a"
done
name=$(basename "$project" .csproj)
if [ -n "${DP_FAKE_DOTNET_ASSETS:-}" ]; then
  mkdir -p "$(dirname "$project")/obj"
  cp "$DP_FAKE_DOTNET_ASSETS" "$(dirname "$project")/obj/project.assets.json"
fi
if [ -n "${DP_FAKE_DOTNET_FAIL:-}" ]; then cat "$DP_FAKE_DOTNET_FAIL"; exit 1; fi
defs=""
case " $* " in *" -p:InvariantGlobalization=true "*) defs="-DINVARIANT" ;; esac
[ "$name" = dotnet-webapiaot ] && defs="$defs -DWEBAPI"
cc="${DP_FAKE_DOTNET_CC:-musl-gcc}"
case " $* " in *" linux-arm64 "*) cc=aarch64-linux-gnu-gcc ;; esac
# The props file's NativeLibrary items are linked, as ILC's link does.
libs=""
if [ -f "$log/props" ]; then
  dir=$(cd "$(dirname "$project")" && pwd)
  for lib in $(sed -n 's|.*<NativeLibrary Include="\([^"]*\)".*|\1|p' "$log/props"); do
    libs="$libs $(printf '%s' "$lib" | sed "s|\$(MSBuildProjectDirectory)|$dir|")"
  done
fi
mkdir -p "$out"
$cc -static $defs ${DP_FAKE_DOTNET_CFLAGS:-} -o "$out/$name" "$DP_FAKE_DOTNET_SRC" $libs
cp "$out/$name" "$out/$name.dbg"
echo "$name -> $out/"
"#;

/// The stand-in SDK on PATH, in `t`: its log folder and a hello source.
struct StandInSdk {
    path: String,
    log: PathBuf,
    hello: PathBuf,
}

fn stand_in_sdk(t: &Path) -> StandInSdk {
    let fake_bin = t.join("fake-bin");
    let log = t.join("fake-log");
    std::fs::create_dir_all(&log).unwrap();
    let dotnet = write_file(&fake_bin, "dotnet", FAKE_DOTNET.as_bytes());
    std::fs::set_permissions(&dotnet, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hello = write_file(
        t,
        "hello.c",
        b"#include <stdio.h>\nint main(void){puts(\"add(2,3) = 5\");return 0;}\n",
    );
    StandInSdk {
        path: format!("{}:{}", fake_bin.display(), path_without_dotnet()),
        log,
        hello,
    }
}

/// `build DIR --runner host ARGS` with the stand-in SDK.
fn stand_in_build(sdk: &StandInSdk, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = dp_build(&[]);
    cmd.arg(dir)
        .args(["--runner", "host"])
        .args(args)
        .env("PATH", &sdk.path)
        .env("DP_FAKE_DOTNET_LOG", &sdk.log)
        .env("DP_FAKE_DOTNET_SRC", &sdk.hello);
    cmd
}

#[test]
fn dotnet_pipeline_with_a_stand_in_sdk_ships_icu_data_and_keeps_dbg_out() {
    require_musl_and_make();
    let (t, dir) = example("dotnet-console");
    let sdk = stand_in_sdk(t.path());
    let log = sdk.log.clone();
    write_file(&dir, "icudt74l.dat", &[7u8; 4096]);
    let mut cfg = std::fs::read_to_string(dir.join("distroless-pack.toml")).unwrap();
    cfg.push_str("\nicu_data = \"icudt74l.dat\"\n"); // [dotnet] is the file's last table
    std::fs::write(dir.join("distroless-pack.toml"), cfg).unwrap();
    let layout = t.path().join("layout");
    let dbg_dir = t.path().join("debug");
    let out = run(stand_in_build(
        &sdk,
        &dir,
        &[
            "--libc",
            "musl",
            "--globalization",
            "icu-file",
            "--json",
            "--save-debug",
        ],
    )
    .arg(&dbg_dir)
    .arg("--output")
    .arg(format!("oci:{}:icu", layout.display())));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "dotnet");
    assert_eq!(doc["images"][0]["binary"]["name"], "dotnet-console");
    assert_eq!(doc["images"][0]["binary"]["debug_symbols"], true);

    // pre_build made libfoo.a with the musl compiler before publishing.
    assert!(dir.join("libfoo.a").is_file(), "pre_build ran");
    let args = std::fs::read_to_string(log.join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        &args[..7],
        [
            "publish",
            "dotnet-console.csproj",
            "-c",
            "Release",
            "-r",
            "linux-musl-x64",
            "--nologo"
        ]
    );
    for p in [
        "-p:PublishAot=true",
        "-p:StaticExecutable=true",
        "-p:InvariantGlobalization=false",
        "-p:StaticICULinking=true",
        "-p:StaticOpenSslLinking=true",
    ] {
        assert!(args.contains(&p), "{p} in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("-p:EmbedIcuDataPath")),
        "{args:?}"
    );
    let props = std::fs::read_to_string(log.join("props")).unwrap();
    assert!(
        props.contains("<NativeLibrary Include=\"$(MSBuildProjectDirectory)/libfoo.a\" />"),
        "{props}"
    );
    let env = std::fs::read_to_string(log.join("env")).unwrap();
    assert!(
        env.contains(&format!(
            "DP_ICU_DAT={}",
            dir.join("icudt74l.dat").display()
        )),
        "the ICU data path is absolute: {env}"
    );

    // The image: the binary and the ICU data, never the .dbg.
    let inspect = run_ok(
        dp().args(["inspect", "--json"])
            .arg(format!("oci:{}:icu", layout.display())),
    );
    let i: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let files: Vec<String> = i["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["files"].as_array().unwrap().iter())
        .filter(|f| f["type"] == "file")
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.contains(&"/app/dotnet-console".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"/usr/share/icu/icudt74l.dat".to_string()),
        "{files:?}"
    );
    assert!(
        i["images"][0]["config"]["env"]
            .to_string()
            .contains("ICU_DATA="),
        "{}",
        i["images"][0]["config"]
    );
    assert!(
        dbg_dir.join("dotnet-console.dbg").is_file(),
        "--save-debug keeps the symbols outside the image"
    );
}

/// The glibc recipe (`--libc glibc`, and the host default on this Debian
/// machine): RID linux-x64, `-static` (not -static-pie), `-lm` after ICU,
/// no ICU data embedded unless one is named, gcc for pre_build, and the
/// cross objcopy for arm64.
#[test]
fn dotnet_glibc_plan_is_the_recipe_for_a_debian_host() {
    assert!(
        Path::new("/etc/debian_version").is_file(),
        "this test expects a Debian (glibc) machine, as the README's set-up makes"
    );
    let (_t, dir) = example("dotnet-console");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--dry-run", "--json"]));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = &doc["builds"][0];
    let w = words(plan);
    assert_eq!(&w[5..7], ["-r", "linux-x64"], "the host's libc: {w:?}");
    assert!(
        w.contains(&"-p:PositionIndependentExecutable=false".to_string()),
        "{w:?}"
    );
    assert!(
        plan["notes"]
            .to_string()
            .contains("libc: glibc (RID linux-x64), this machine's"),
        "{}",
        plan["notes"]
    );
    let script = plan["script"].as_str().unwrap();
    assert!(
        script.contains("export CC=gcc\n"),
        "pre_build gets gcc: {script}"
    );
    assert!(!script.contains("musl-gcc"), "{script}");
    // StaticOpenSslLinking (Program.cs uses crypto) needs cmake and make.
    assert_eq!(
        (
            script.matches("command -v cmake ").count(),
            script.matches("command -v make ").count()
        ),
        (1, 1),
        "{script}"
    );

    let icu = dotnet_plan(
        "dotnet-console",
        &["--libc", "glibc", "--globalization", "static-icu"],
    );
    let w = words(&icu);
    assert!(w.contains(&"-p:StaticICULinking=true".to_string()), "{w:?}");
    assert!(
        !w.iter().any(|x| x.starts_with("-p:EmbedIcuDataPath")),
        "libicudata.a holds the data: {w:?}"
    );
    assert!(
        props(&icu).contains("<ExtraLinkerArg Include=\"-lm\" />"),
        "{}",
        props(&icu)
    );
    assert!(!icu["script"].as_str().unwrap().contains("DP_ICU_DAT="));

    // A named .dat is embedded all the same.
    let named = dotnet_plan_with(
        "dotnet-console",
        "icu_data = \"icudt72l.dat\"",
        &["--libc", "glibc", "--globalization", "static-icu"],
    );
    assert!(
        words(&named).contains(&"-p:EmbedIcuDataPath=$DP_ICU_DAT".to_string()),
        "{named}"
    );

    let arm = dotnet_plan(
        "dotnet-console",
        &["--libc", "glibc", "--platform", "linux/arm64"],
    );
    let w = words(&arm);
    assert_eq!(&w[5..7], ["-r", "linux-arm64"], "{w:?}");
    // openssl = "auto": the SDK cannot build its OpenSSL shim cross, so no
    // StaticOpenSslLinking, and a note says why.
    assert!(
        !w.iter().any(|x| x.contains("StaticOpenSslLinking")),
        "{w:?}"
    );
    assert!(
        arm["notes"]
            .to_string()
            .contains("does not support StaticOpenSslLinking when cross-compiling"),
        "{}",
        arm["notes"]
    );
    assert!(
        w.contains(&"-p:ObjCopyName=aarch64-linux-gnu-objcopy".to_string()),
        "{w:?}"
    );
    let script = arm["script"].as_str().unwrap();
    assert!(
        script.contains("command -v aarch64-linux-gnu-objcopy"),
        "{script}"
    );
    assert!(
        script.contains("export CC=aarch64-linux-gnu-gcc\n"),
        "{script}"
    );
    // The cross link's clang, found when the build runs (Debian's is
    // clang-NN), unless the project names one.
    assert!(
        w.contains(&"-p:CppCompilerAndLinker=$DP_CLANG".to_string()),
        "{w:?}"
    );
    let find = script
        .lines()
        .find(|l| l.starts_with("DP_CLANG="))
        .unwrap_or_else(|| panic!("{script}"));
    // Run against a folder with clang-9 and clang-14 (and no `clang` on
    // PATH): the newest is taken.
    let fake = tmp();
    for name in ["clang-9", "clang-14", "clang-cpp-15"] {
        write_file(&fake.path().join("usr-bin"), name, b"");
    }
    let tools = fake.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for t in ["ls", "sed", "sort", "tail"] {
        let real = require_tool(t, "apt-get install -y coreutils sed");
        std::os::unix::fs::symlink(real, tools.join(t)).unwrap();
    }
    let probe = find.replace(
        "/usr/bin/clang-",
        &format!("{}/clang-", fake.path().join("usr-bin").display()),
    );
    let found = run_ok(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{probe}; printf %s \"$DP_CLANG\""))
            .env("PATH", &tools),
    );
    assert_eq!(found, "clang-14", "{probe}");

    // A project that names its compiler keeps it.
    let own = dotnet_plan_with(
        "dotnet-console",
        "properties = { CppCompilerAndLinker = \"clang-18\" }",
        &["--libc", "glibc", "--platform", "linux/arm64"],
    );
    let w = words(&own);
    assert!(
        w.contains(&"-p:CppCompilerAndLinker=clang-18".to_string())
            && !w.iter().any(|x| x.contains("DP_CLANG")),
        "{w:?}"
    );
}

/// glibc in the default (Alpine, musl) builder is refused before anything
/// runs; `--runner auto` builds it on the host instead.
#[test]
fn dotnet_glibc_is_refused_in_the_alpine_builder_and_auto_picks_the_host() {
    let (_t, dir) = example("dotnet-console");
    let out = run(dp_build(&docker_env()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--libc",
        "glibc",
        "--dry-run",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot build in the default builder image (Alpine, musl)")
            && err.contains("--runner host"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&run_ok(dp_build(&docker_env()).arg(&dir).args([
            "--libc",
            "glibc",
            "--dry-run",
            "--json",
        ])))
        .unwrap();
    assert_eq!(doc["builds"][0]["runner"], "host", "{doc}");
}

/// A glibc build end to end with the stand-in SDK: a static glibc binary
/// in the image, and the SBOM lists the NuGet packages of the restore
/// (`obj/project.assets.json`) with the licenses of their nuspecs, the
/// runtime packs, the SDK and ILCompiler versions; both formats pass the
/// validators.
#[test]
fn dotnet_glibc_build_sbom_lists_the_nuget_packages_of_the_restore() {
    require_tool("gcc", "apt-get install -y gcc libc6-dev");
    let (t, dir) = example("dotnet-webapiaot");
    let sdk = stand_in_sdk(t.path());
    let nuget = t.path().join("nuget");
    let expected = [
        (
            "Microsoft.AspNetCore.App.Runtime.linux-x64",
            "10.0.12",
            "MIT",
        ),
        ("Microsoft.AspNetCore.OpenApi", "10.0.12", "MIT"),
        ("Microsoft.DotNet.ILCompiler", "10.0.12", "MIT"),
        ("Microsoft.NET.ILLink.Tasks", "10.0.12", "MIT"),
        (
            "Microsoft.NETCore.App.Runtime.NativeAOT.linux-x64",
            "10.0.12",
            "MIT",
        ),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "10.0.12", "MIT"),
        ("Microsoft.OpenApi", "2.12.1", "MIT"),
        (
            "runtime.linux-x64.Microsoft.DotNet.ILCompiler",
            "10.0.12",
            "MIT",
        ),
    ];
    for (id, version, license) in expected {
        let id = id.to_lowercase();
        write_file(
            &nuget.join(&id).join(version),
            &format!("{id}.nuspec"),
            format!("<?xml version=\"1.0\"?>\n<package><metadata>\n    <id>{id}</id>\n    <license type=\"expression\">{license}</license>\n</metadata></package>\n").as_bytes(),
        );
    }
    let layout = t.path().join("layout");
    let sbom = t.path().join("sbom.json");
    let out = run(stand_in_build(
        &sdk,
        &dir,
        &["--libc", "glibc", "--json", "--sbom-format", "both"],
    )
    .arg("--sbom-output")
    .arg(&sbom)
    .arg("--output")
    .arg(format!("oci:{}:web", layout.display()))
    .env("DP_FAKE_DOTNET_CC", "gcc")
    .env(
        "DP_FAKE_DOTNET_ASSETS",
        repo_root().join("tests/fixtures/dotnet/restore/project.assets.json"),
    )
    .env("NUGET_PACKAGES", &nuget));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let args = std::fs::read_to_string(sdk.log.join("args")).unwrap();
    assert!(args.contains("\n-r\nlinux-x64\n"), "{args}");
    assert!(
        args.contains("-p:PositionIndependentExecutable=false"),
        "{args}"
    );
    let toolchain = &doc["images"][0]["build"]["inputs"]["toolchain"];
    assert_eq!(toolchain["dotnet-sdk"], "10.0.401", "{toolchain}");
    assert_eq!(toolchain["ilcompiler"], "10.0.12", "{toolchain}");
    assert_eq!(toolchain["dotnet"], "10.0.401", "{toolchain}");

    let spdx_file = t.path().join("sbom.spdx.json");
    let spdx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&spdx_file).unwrap()).unwrap();
    let nuget_packages: Vec<&serde_json::Value> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with("pkg:nuget/"))
        })
        .collect();
    assert_eq!(nuget_packages.len(), expected.len(), "{nuget_packages:#?}");
    for (id, version, license) in expected {
        let purl = format!("pkg:nuget/{id}@{version}");
        let p = nuget_packages
            .iter()
            .find(|p| p["externalRefs"][0]["referenceLocator"] == purl.as_str())
            .unwrap_or_else(|| panic!("SPDX lacks {purl}: {nuget_packages:#?}"));
        assert_eq!(p["versionInfo"], version, "{p}");
        assert_eq!(p["licenseDeclared"], license, "{p}");
    }
    crate::sbom::validate_spdx(&spdx_file);
    crate::sbom::validate_cyclonedx(&t.path().join("sbom.cdx.json"));
    // The .NET round's e2e check (scripts/e2e-dotnet.sh) on the same
    // files: it passes, and fails once a package is taken out.
    let assets = repo_root().join("tests/fixtures/dotnet/restore/project.assets.json");
    let check = |spdx: &Path| {
        run(Command::new("python3")
            .arg(repo_root().join("scripts/lib/nuget-sbom-check.py"))
            .arg(&assets)
            .arg(spdx))
    };
    let out = check(&spdx_file);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "8 NuGet packages, all in the SBOM"
    );
    let mut fewer = spdx.clone();
    fewer["packages"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["name"] != "Microsoft.OpenApi");
    let fewer_file = write_file(
        t.path(),
        "fewer.spdx.json",
        serde_json::to_string(&fewer).unwrap().as_bytes(),
    );
    let out = check(&fewer_file);
    assert!(!out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("missing Microsoft.OpenApi/2.12.1"),
        "{}",
        both(&out)
    );
    // The restore's packages are in the binary's dependency graph.
    let cdx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("sbom.cdx.json")).unwrap()).unwrap();
    let purls = cdx["components"].to_string();
    assert!(
        purls.contains("pkg:nuget/Microsoft.OpenApi@2.12.1"),
        "{purls}"
    );

    let bin = packed_binary(t.path(), "dotnet-webapiaot");
    assert_static(&bin);
    assert_eq!(run_ok(&mut Command::new(&bin)).trim(), "add(2,3) = 5");
}

/// A failed publish is one line that says what to change, not the last
/// line of MSBuild's output.
/// `RUNNER=host scripts/e2e-dotnet.sh`, the .NET round's check, run here
/// with the stand-in SDK "publishing" tests/fixtures/dotnet/stand-in-app.c,
/// which answers what the script asks of the two example apps: a copy of
/// the repository's scripts and examples, this build of distroless-pack,
/// the private dockerd, the real validators, and for step 7 the arm64 cross
/// compiler (libfoo.a and the stand-in app) and qemu-user. Every one of its
/// 25 checks passes; with the web app built without its OpenAPI route, the
/// one check of that route fails and the script exits 1.
#[test]
fn e2e_dotnet_script_passes_with_apps_that_behave_and_fails_the_check_they_break() {
    require_tool("gcc", "apt-get install -y gcc libc6-dev");
    require_tool(
        "aarch64-linux-gnu-gcc",
        "apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    );
    engines::ensure_binfmt_arm64();
    require_tool("curl", "apt-get install -y curl");
    require_tool("make", "apt-get install -y make");
    for tool in ["pyspdxtools", "ntia-checker"] {
        require_tool(
            tool,
            "python3 -m pip install -r scripts/python-requirements.txt",
        );
    }
    let docker = engines::docker();
    let t = tmp();
    let root = t.path().join("repo");
    copy_tree(&repo_root().join("scripts"), &root.join("scripts"));
    for app in ["dotnet-console", "dotnet-webapiaot"] {
        copy_tree(
            &repo_root().join("images").join(app),
            &root.join("images").join(app),
        );
    }
    let sdk = stand_in_sdk(t.path());
    // The cross recipe finds the linker it passes to the SDK
    // (CppCompilerAndLinker) when the build runs; the stand-in SDK never
    // calls it, so a placeholder beside it will do where no clang is.
    if crate::util::which("clang").is_none() {
        let clang = write_file(
            &t.path().join("fake-bin"),
            "clang",
            b"#!/bin/sh\necho 'stand-in clang: not called by the stand-in SDK' >&2\nexit 1\n",
        );
        std::fs::set_permissions(&clang, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let work = t.path().join("tmp");
    std::fs::create_dir_all(&work).unwrap();
    let e2e = |cflags: &str| {
        let mut script = Command::new("bash");
        docker
            .apply(&mut script)
            .arg(root.join("scripts/e2e-dotnet.sh"))
            .env("RUNNER", "host")
            .env("ENGINE", "docker")
            .env("DP", crate::util::bin())
            .env("XDG_CACHE_HOME", crate::util::test_cache_home())
            .env("TMPDIR", &work)
            .env("PATH", &sdk.path)
            .env("DP_FAKE_DOTNET_LOG", &sdk.log)
            .env(
                "DP_FAKE_DOTNET_SRC",
                repo_root().join("tests/fixtures/dotnet/stand-in-app.c"),
            )
            .env("DP_FAKE_DOTNET_CC", "gcc")
            .env("DP_FAKE_DOTNET_CFLAGS", cflags)
            .env(
                "DP_FAKE_DOTNET_ASSETS",
                repo_root().join("tests/fixtures/dotnet/restore/project.assets.json"),
            );
        run(&mut script)
    };
    let remove_images = || {
        for image in [
            "console",
            "console-static-icu",
            "console-icu-file",
            "console-no-pie",
            "webapi",
            "console-arm64",
        ] {
            docker.remove_image(&format!("dp-e2e/{image}:1"));
        }
    };
    let out = e2e("");
    let text = both(&out);
    remove_images();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("e2e-dotnet: all checks passed"), "{text}");
    let passed: Vec<&str> = text.lines().filter(|l| l.starts_with("PASS  ")).collect();
    assert_eq!(passed.len(), 25, "{text}");
    assert!(!text.contains("FAIL  "), "{text}");
    for check in [
        "PASS  console: Direct P/Invoke into libfoo.a",
        "PASS  icu-file: the .dat is in the image",
        "PASS  webapi: GET /openapi/v1.json (Development)",
        "PASS  sbom: every package of obj/project.assets.json has its pkg:nuget purl",
        "PASS  sbom: SPDX passes pyspdxtools and the NTIA minimum elements",
        "PASS  sbom: CycloneDX passes the 1.6 schema",
        "PASS  arm64: an arm64 image",
        "PASS  arm64: Direct P/Invoke into libfoo.a, under qemu-user",
    ] {
        assert!(text.contains(check), "{check}: {text}");
    }
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "the script removes its work directory"
    );

    let out = e2e("-DNO_OPENAPI");
    let text = both(&out);
    remove_images();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL  ")).collect();
    assert_eq!(failed, ["FAIL  webapi: no OpenAPI document"], "{text}");
    assert!(text.contains("e2e-dotnet: 1 check(s) failed"), "{text}");
}

#[test]
fn dotnet_link_failure_is_explained_in_one_line() {
    let (t, dir) = example("dotnet-webapiaot");
    let sdk = stand_in_sdk(t.path());
    let log = write_file(
        t.path(),
        "link.log",
        b"  Generating native code\n/usr/bin/ld.bfd: BFD (GNU Binutils for Debian) 2.40 assertion fail ../../bfd/elflink.c:15293\ncollect2 : error : ld returned 1 exit status\n/root/.nuget/packages/microsoft.dotnet.ilcompiler/10.0.12/build/Microsoft.NETCore.Native.targets(397,5): error MSB3073: The command \"\"gcc\" \"obj/x.o\" -static-pie\" exited with code 1. [/src/dotnet-webapiaot.csproj]\n",
    );
    let out = run(stand_in_build(&sdk, &dir, &["--libc", "musl"])
        .arg("--output")
        .arg(format!("oci:{}", t.path().join("layout").display()))
        .env("DP_FAKE_DOTNET_FAIL", &log));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("build failed"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("-static-pie") && line.contains("pie = false"),
        "{line}"
    );
    assert!(!t.path().join("layout").exists(), "nothing written");
}

/// The `.dat` that `icu-file` ships on a glibc host, cut out of this
/// machine's libicudata.so by the e2e script's helper
/// (scripts/lib/icu-dat.py): a package ICU's own `icupkg` reads, with the
/// collation and locale data the culture check needs.
#[test]
fn icu_data_cut_out_of_libicudata_is_a_package_icupkg_reads() {
    let icupkg = crate::util::which("icupkg")
        .or_else(|| Some(PathBuf::from("/usr/sbin/icupkg")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("required tool `icupkg` is not installed: run `apt-get install -y icu-devtools` (scripts/install-deps.sh installs it)")
        });
    let t = tmp();
    let out = run(Command::new("python3")
        .arg(repo_root().join("scripts/lib/icu-dat.py"))
        .arg(t.path()));
    assert!(out.status.success(), "{}", both(&out));
    let dat = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let name = dat.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("icudt") && name.ends_with("l.dat"),
        "{name}"
    );
    let list = run_ok(Command::new(&icupkg).arg("-l").arg(&dat));
    let items: Vec<&str> = list.lines().collect();
    assert!(items.len() > 1000, "{} items", items.len());
    for item in ["de.res", "root.res"] {
        assert!(items.iter().any(|i| i.ends_with(item)), "{item} in {name}");
    }
    // Not an ICU library: refused in one line, nothing written.
    let bad = run(Command::new("python3")
        .arg(repo_root().join("scripts/lib/icu-dat.py"))
        .arg(t.path())
        .arg("/bin/sh"));
    assert_eq!(bad.status.code(), Some(1), "{}", both(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no icudt*_dat symbol"),
        "{}",
        both(&bad)
    );
}

// ---------------------------------------------------------------------------
// The container runner, for real, with a builder image made without pulling.

/// The version of the cached builder rootfs: change it to rebuild.
const BUILDER_VERSION: &str = "bookworm-minbase-1";
const BUILDER_IMAGE: &str = "dp-test-builder:1";
const BUILDER_PACKAGES: &str = "gcc,libc6-dev,musl-tools,golang-go,make,ca-certificates";

/// A Debian rootfs with musl-tools and Go, made once per machine with
/// debootstrap under target/ and imported into the test docker engine.
fn builder_image() -> &'static str {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if !*done {
        import_rootfs(&engines::docker(), BUILDER_IMAGE);
        *done = true;
    }
    BUILDER_IMAGE
}

/// The debootstrapped rootfs (made once per machine, cached under target/).
fn builder_rootfs() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = repo_root().join("target/dp-test-builder");
    let rootfs = cache.join(BUILDER_VERSION);
    if !rootfs.join(".dp-complete").exists() {
        require_tool("debootstrap", "apt-get install -y debootstrap");
        require_tool("flock", "apt-get install -y util-linux");
        std::fs::create_dir_all(&cache).unwrap();
        // One debootstrap per machine, even across test processes.
        let script = format!(
            r#"set -e
cd "$1"
[ -e "{v}/.dp-complete" ] && exit 0
rm -rf "{v}.partial"
start=$(date +%s)
debootstrap --variant=minbase --include={pkgs} bookworm "{v}.partial" http://deb.debian.org/debian
for junk in var/cache/apt/archives usr/share/doc usr/share/man usr/share/locale usr/share/info; do
  rm -rf "{v}.partial/$junk"
done
echo "debootstrap took $(( $(date +%s) - start )) s" > "{v}.partial/.dp-complete"
rm -rf "{v}"
mv "{v}.partial" "{v}"
"#,
            v = BUILDER_VERSION,
            pkgs = BUILDER_PACKAGES
        );
        run_ok(
            Command::new("flock")
                .arg(cache.join(".lock"))
                .args(["sh", "-c", &script, "sh"])
                .arg(&cache),
        );
    }
    rootfs
}

/// Imports the builder rootfs into `engine` as `name` unless it is there.
fn import_rootfs(engine: &engines::Engine, name: &str) {
    import_rootfs_with(&|| engine.cmd(), engine.name(), name);
}

/// [`import_rootfs`] with the engine command `engine` makes (`label` names it).
fn import_rootfs_with(engine: &dyn Fn() -> Command, label: &str, name: &str) {
    require_tool("tar", "apt-get install -y tar");
    let rootfs = builder_rootfs();
    let there = engine()
        .args(["image", "inspect", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if there {
        return;
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--exclude=./.dp-complete", "-c", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    let status = engine()
        .args(["import", "-", name])
        .stdin(tar.stdout.take().unwrap())
        .status()
        .expect("import");
    assert!(
        tar.wait().unwrap().success() && status.success(),
        "importing the builder rootfs into {label} failed"
    );
}

/// Builds `dir` in the builder container into a docker archive and loads it.
fn container_build_and_load(dir: &Path, name: &str) -> String {
    let image = builder_image();
    let t = tmp();
    let archive = t.path().join("image.tar");
    let tag = format!("dp-build-test/{name}-container:1");
    let out = run(dp_build(&docker_env())
        .arg(dir)
        .args([
            "--runner",
            "container",
            "--engine",
            "docker",
            "--builder-image",
            image,
            "--tag",
            &tag,
            "--json",
            "--output",
        ])
        .arg(format!("docker-archive:{}", archive.display())));
    assert!(
        out.status.success(),
        "container build failed\n{}",
        both(&out)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["images"][0]["build"]["runner"],
        format!("docker:{image}")
    );
    run_ok(docker().arg("load").arg("-i").arg(&archive));
    tag
}

#[test]
fn container_runner_builds_c_examples() {
    let (_t, hello) = example("c-hello");
    let image = container_build_and_load(&hello, "c-hello");
    assert_eq!(docker_run(&image).trim(), "hello from distroless-pack");
    let (_t2, libfoo) = example("c-libfoo");
    let image = container_build_and_load(&libfoo, "c-libfoo");
    assert_eq!(docker_run(&image).trim(), "add(2,3) = 5");
}

/// The caches of a container build belong to the user who builds: a build
/// as root, then one as another user (a CI runner in the docker group)
/// each write their own folder of the cache volume, and neither finds the
/// other's files, which it could not write (root's are root's only).
#[test]
fn container_runner_as_root_and_as_another_user_each_write_their_own_cache() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = require_tool("setpriv", "apt-get install -y util-linux");
    let image = builder_image();
    let engine = engines::docker();
    let sock = engine
        .envs()
        .iter()
        .find(|(k, _)| k == "DOCKER_HOST")
        .and_then(|(_, v)| v.strip_prefix("unix://"))
        .map(PathBuf::from)
        .expect("the test docker's DOCKER_HOST is a unix socket");
    let docker_gid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&sock).unwrap().gid()
    };
    const USER: u32 = 4242;
    let in_volume = |script: &str| {
        run_ok(docker().args([
            "run",
            "--rm",
            "--network=none",
            "--user",
            "0:0",
            "-v",
            "distroless-pack-cache:/cache",
            image,
            "sh",
            "-c",
            script,
        ]))
    };
    // what an earlier run of this test left
    in_volume(&format!("rm -rf /cache/uid-{USER}"));
    let (t, dir) = example("go-http");
    let build = |as_user: bool, out: &Path| {
        let mut c = if as_user {
            let mut c = Command::new(&setpriv);
            c.args([
                format!("--reuid={USER}"),
                format!("--regid={USER}"),
                format!("--groups={docker_gid}"),
            ])
            .arg(crate::util::bin());
            c.env("HOME", t.path().join("home"))
                .env("XDG_CACHE_HOME", t.path().join("home/.cache"));
            c
        } else {
            let mut c = dp();
            c.env("HOME", t.path().join("root-home"));
            c
        };
        for (k, v) in engine.envs() {
            c.env(k, v);
        }
        c.arg("build")
            .arg(&dir)
            .args(["--runner", "container", "--engine", "docker"])
            .args(["--builder-image", image, "--output"])
            .arg(format!("oci:{}", out.display()));
        let got = run(&mut c);
        assert!(
            got.status.success(),
            "build (as user: {as_user}): {}",
            both(&got)
        );
        String::from_utf8_lossy(&got.stdout).trim().to_string()
    };
    let as_root = build(false, &t.path().join("root-out"));
    // the user can read the project and write the output and its home
    for p in [t.path().to_path_buf(), t.path().join("home")] {
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    run_ok(Command::new("chmod").args(["-R", "a+rwX"]).arg(&dir));
    let as_user = build(true, &t.path().join("user-out"));
    assert_eq!(as_user, as_root, "the same image, whoever built it");
    // each wrote its own folder: Go's build cache is in both, and every
    // file in the user's belongs to the user
    let listing = in_volume(&format!(
        "stat -c '%u %n' /cache/uid-0 /cache/uid-{USER}; \
         echo root: $(find /cache/uid-0/go-build -type f | wc -l); \
         echo user: $(find /cache/uid-{USER}/go-build -type f | wc -l); \
         echo foreign: $(find /cache/uid-{USER} ! -user {USER} | wc -l)"
    ));
    let line = |prefix: &str| -> usize {
        listing
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {listing}"))
    };
    assert!(
        listing.contains(&format!("{USER} /cache/uid-{USER}")),
        "{listing}"
    );
    assert!(line("root:") > 0, "root's build cache is empty: {listing}");
    assert!(
        line("user:") > 0,
        "the user's build wrote no cache: {listing}"
    );
    assert_eq!(line("foreign:"), 0, "{listing}");
}

/// Rootless podman (`--userns=keep-id`): the build runs as the calling
/// user, whose files in the project stay theirs, and `--load=podman` puts
/// the image in that user's own storage, where it runs.
#[test]
fn container_runner_with_rootless_podman_runs_as_the_user_and_loads_into_their_storage() {
    use std::os::unix::fs::MetadataExt;
    let rootless = engines::rootless_podman();
    static IMPORTED: Mutex<bool> = Mutex::new(false);
    {
        let mut done = IMPORTED.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            import_rootfs_with(&|| rootless.podman(), "rootless podman", BUILDER_IMAGE);
            *done = true;
        }
    }
    let (t, dir) = example("c-hello");
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", rootless.uid, rootless.gid))
            .arg(t.path()),
    );
    let tag = "dp-rootless/c-hello:1";
    let out = run(rootless
        .command(crate::util::bin())
        .arg("build")
        .arg(&dir)
        .args(["--runner", "container", "--engine", "podman"])
        .args(["--builder-image", BUILDER_IMAGE, "--tag", tag])
        .args(["--load=podman", "--json", "--output"])
        .arg(format!("oci:{}", t.path().join("layout").display()))
        .env("XDG_CACHE_HOME", t.path().join(".cache")));
    assert!(out.status.success(), "rootless build: {}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(&out)));
    assert_eq!(
        doc["images"][0]["build"]["runner"],
        format!("podman:{BUILDER_IMAGE}"),
        "{doc:#}"
    );
    // everything the build wrote in the project is the user's
    for entry in walk(&dir) {
        let owner = std::fs::symlink_metadata(&entry).unwrap().uid();
        assert_eq!(
            owner,
            rootless.uid,
            "{} belongs to uid {owner}",
            entry.display()
        );
    }
    // the image is in the user's storage and runs there, and `run --engine
    // podman` of the layout runs it through the user's podman too
    let ran = run_ok(
        rootless
            .podman()
            .args(["run", "--rm", "--network=none", tag]),
    );
    assert_eq!(ran.trim(), "hello from distroless-pack");
    let ran = run_ok(
        rootless
            .command(crate::util::bin())
            .args(["run", "--engine", "podman"])
            .arg(t.path().join("layout")),
    );
    assert_eq!(ran.trim(), "hello from distroless-pack");
    // and the user's caches are in their folder of their own volume (read
    // on the host: one more container of the builder would copy all of it
    // in vfs storage)
    let volume = run_ok(rootless.podman().args([
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        "distroless-pack-cache",
    ]));
    let home = Path::new(volume.trim()).join(format!("uid-{}/home", rootless.uid));
    let owner = std::fs::metadata(&home)
        .unwrap_or_else(|e| panic!("{}: {e}", home.display()))
        .uid();
    assert_eq!(owner, rootless.uid, "{}", home.display());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn container_runner_builds_go_example() {
    let (_t, dir) = example("go-http");
    let image = container_build_and_load(&dir, "go-http");
    check_go_server(&image);
}

#[test]
fn container_runner_reports_a_tool_missing_in_the_image() {
    let image = builder_image();
    let (_t, dir) = example("rust-hello");
    let out = run(dp_build(&docker_env()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--builder-image",
        image,
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cargo not found in the builder image dp-test-builder:1"),
        "{err}"
    );
}

#[test]
fn builder_image_that_cannot_start_shows_the_engines_reason() {
    let (_t, dir) = example("c-hello");
    let out = run(dp_build(&docker_env()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--builder-image",
        "dp-test-no-such-builder:1",
    ]));
    assert_eq!(out.status.code(), Some(6), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("could not start the builder image"))
        .unwrap_or_else(|| panic!("no engine error: {err}"));
    // docker's own reason (the image is not there and cannot be pulled),
    // not the usage hint it prints last.
    assert!(
        line.contains("docker: Error response from daemon"),
        "{line}"
    );
    assert!(!line.contains("--help"), "{line}");
}

#[test]
fn container_runner_without_engine_is_an_engine_error() {
    let (_t, dir) = example("c-hello");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "container", "--engine", "docker"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
    assert_eq!(out.status.code(), Some(6), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--runner host"),
        "{}",
        both(&out)
    );
}

#[test]
fn container_runner_with_podman_gives_the_host_digest() {
    require_musl_and_make();
    let podman = engines::podman();
    // podman names an imported image localhost/NAME.
    import_rootfs(&podman, "localhost/dp-test-builder:1");
    let (_t, host_dir) = example("c-libfoo");
    let host = run_ok(dp_build(&[]).arg(&host_dir).args(["--runner", "host"]));
    let (_t2, dir) = example("c-libfoo");
    let out = run(dp_build(podman.envs()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "podman",
        "--builder-image",
        "localhost/dp-test-builder:1",
        "--json",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["images"][0]["build"]["runner"],
        "podman:localhost/dp-test-builder:1"
    );
    assert_eq!(
        doc["digest"].as_str().unwrap(),
        host.trim(),
        "the same sources give the same image on the host and in the container"
    );
}

#[test]
fn build_pushes_a_multi_platform_index_to_a_registry() {
    use crate::support::registry::{Auth, Registry};
    require_tool("go", "apt-get install -y golang-go");
    let reg = Registry::start(Auth::None);
    let (t, dir) = example("go-http");
    let reference = reg.reference("build/go-http:multi");
    let digest_file = t.path().join("digest");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args([
            "--runner",
            "host",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
        ])
        .args(["--push", &reference, "--digest-file"])
        .arg(&digest_file));
    assert!(out.status.success(), "{}", both(&out));
    // The digest, then the pushed NAME@sha256:... (as `push` prints it).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let digest = stdout.lines().next().unwrap_or("").to_string();
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        digest
    );
    let raw: serde_json::Value = serde_json::from_slice(&reg.raw_manifest(&reference)).unwrap();
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
}

#[test]
fn smoke_runs_the_built_image_before_writing() {
    require_musl_and_make();
    let (t, dir) = example("c-hello");
    let layout = t.path().join("layout");
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--smoke", "--output"])
        .arg(format!("oci:{}", layout.display())));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[ smoke]"),
        "{}",
        both(&out)
    );
    assert!(layout.join("index.json").is_file());
}

#[test]
fn cmake_project_builds_static_with_musl() {
    require_musl_and_make();
    require_tool("cmake", "apt-get install -y cmake");
    let t = tmp();
    let dir = t.path().join("cm");
    write_file(
        &dir,
        "CMakeLists.txt",
        b"cmake_minimum_required(VERSION 3.13)\nproject(cmhello C)\nadd_library(foo STATIC foo.c)\nadd_executable(cmhello main.c)\ntarget_link_libraries(cmhello foo)\n",
    );
    write_file(&dir, "foo.c", b"int add(int x, int y) { return x + y; }\n");
    write_file(
        &dir,
        "main.c",
        b"#include <stdio.h>\nint add(int, int);\nint main(void) { printf(\"cmake add(2,3) = %d\\n\", add(2, 3)); return 0; }\n",
    );
    let image = build_and_load(&dir, "cmhello", &[]);
    assert_eq!(docker_run(&image).trim(), "cmake add(2,3) = 5");
    // The build tree is build/distroless-pack-ARCH in the project, nothing else.
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["CMakeLists.txt", "build", "foo.c", "main.c"]);
    assert!(dir
        .join("build/distroless-pack-amd64/CMakeCache.txt")
        .is_file());
}

#[test]
fn cargo_without_the_musl_target_falls_back_to_static_glibc() {
    require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    let rustc = require_tool("rustc", "install Rust with rustup (https://rustup.rs)");
    // A rustc whose sysroot has no musl target: everything else passes through.
    let (t, dir) = example("rust-hello");
    let bin = t.path().join("no-musl-bin");
    let wrapper = write_file(
        &bin,
        "rustc",
        format!(
            "#!/bin/sh\nif [ \"$1\" = --print ] && [ \"$2\" = sysroot ]; then echo {}; exit 0; fi\nexec {} \"$@\"\n",
            t.path().join("empty-sysroot").display(),
            rustc.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let archive = t.path().join("image.tar");
    let tag = "dp-build-test/rust-glibc:1";
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--tag", tag, "--output"])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("PATH", path));
    assert!(out.status.success(), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x86_64-unknown-linux-gnu with -C target-feature=+crt-static"),
        "the fallback is announced: {err}"
    );
    run_ok(docker().arg("load").arg("-i").arg(&archive));
    assert_eq!(docker_run(tag).trim(), "hello from rust");
}

// ---------------------------------------------------------------------------
// Offline builds, pinned inputs, the C toolchain on make's command line,
// static C++, CMake failures, stripping.

/// Copies `tests/fixtures/NAME` into a fresh temp dir.
fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tmp();
    let dest = t.path().join(name);
    copy_tree(&repo_root().join("tests/fixtures").join(name), &dest);
    (t, dest)
}

/// `build --json` of `dir` on the host into an OCI layout; returns the
/// document and the layout's path.
fn build_json(dir: &Path, t: &Path, extra: &[&str], env: &[(&str, &Path)]) -> serde_json::Value {
    let layout = t.join("layout");
    let mut cmd = dp_build(&[]);
    cmd.arg(dir)
        .args(["--runner", "host", "--json", "--output"])
        .arg(format!("oci:{}:t", layout.display()))
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "build failed\n{}", both(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Extracts `/app/NAME` from the last layer of the image in `t/layout`.
fn packed_binary(t: &Path, name: &str) -> PathBuf {
    let layout = t.join("layout");
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    // The binary's layer is the last (opt-in files come first).
    let layers = manifest["layers"].as_array().unwrap();
    let layer = blob(layers.last().unwrap()["digest"].as_str().unwrap());
    let dest = t.join("extracted");
    std::fs::create_dir_all(&dest).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&layer)
            .arg("-C")
            .arg(&dest)
            .arg(format!("app/{name}")),
    );
    dest.join("app").join(name)
}

/// The section names of an ELF file (readelf -S).
fn sections(file: &Path) -> String {
    require_tool("readelf", "apt-get install -y binutils");
    run_ok(Command::new("readelf").arg("-SW").arg(file))
}

/// Asserts the file has neither debug info nor a symbol table.
#[track_caller]
fn assert_stripped(file: &Path) {
    let s = sections(file);
    assert!(
        !s.contains(".debug_info") && !s.contains(".debug_line") && !s.contains(".symtab"),
        "{} is not stripped:\n{s}",
        file.display()
    );
}

/// Asserts the file needs no interpreter and no shared library.
#[track_caller]
fn assert_static(file: &Path) {
    let d = run_ok(Command::new("readelf").arg("-ldW").arg(file));
    assert!(
        !d.contains("INTERP") && !d.contains("(NEEDED)"),
        "{} is not static:\n{d}",
        file.display()
    );
}

fn packages(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["images"][0]["build"]["inputs"]["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no inputs.packages in {doc}"))
        .iter()
        .map(|p| {
            (
                p["ecosystem"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn cargo_offline_build_lists_its_crates_and_strips_keeping_the_debug_file() {
    let cargo = require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    let (t, dir) = fixture("cargo-itoa");
    // Fill CARGO_HOME the way a user would before going offline (cargo
    // honours whatever source replacement the environment configures).
    run_ok(Command::new(&cargo).arg("fetch").current_dir(&dir));
    let debug = t.path().join("debug");
    let doc = build_json(
        &dir,
        t.path(),
        &["--offline", "--save-debug", debug.to_str().unwrap()],
        &[],
    );
    let build = &doc["images"][0]["build"];
    assert!(
        build["command"]
            .as_str()
            .unwrap()
            .contains("--locked --offline"),
        "{build}"
    );
    assert_eq!(
        packages(&doc),
        [("cargo".into(), "itoa".into(), "1.0.11".into())],
        "exactly the binary's crates: {build}"
    );
    let itoa = &build["inputs"]["packages"][0];
    assert_eq!(
        itoa["checksum"],
        "sha256:49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b"
    );
    assert!(
        build["inputs"]["toolchain"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc 1."),
        "{build}"
    );

    let bin = packed_binary(t.path(), "cargo-itoa");
    assert_stripped(&bin);
    let size = doc["images"][0]["binary"]["size"].as_u64().unwrap();
    let before = doc["images"][0]["binary"]["unstripped_size"]
        .as_u64()
        .unwrap();
    assert!(size < before, "{size} < {before}");
    let kept = debug.join("cargo-itoa.debug");
    assert!(
        sections(&kept).contains(".debug_info"),
        "--save-debug keeps the DWARF"
    );
    let link = run_ok(
        Command::new("readelf")
            .arg("--string-dump=.gnu_debuglink")
            .arg(&bin),
    );
    assert!(link.contains("cargo-itoa.debug"), "{link}");
    let out = run_ok(&mut Command::new(&bin));
    assert_eq!(out.trim(), "itoa formats 4096");
}

#[test]
fn cargo_offline_build_names_the_missing_crate_in_one_line() {
    require_tool("cargo", "install Rust with rustup (https://rustup.rs)");
    let (t, dir) = fixture("cargo-itoa");
    let empty_home = t.path().join("cargo-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--offline"])
        .env("CARGO_HOME", &empty_home));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        last.starts_with("distroless-pack: error: ")
            && last.contains("offline build: the crate `itoa")
            && last.contains("cargo vendor"),
        "{err}"
    );
}

#[test]
fn go_offline_build_uses_vendor_and_lists_its_modules() {
    require_tool("go", "apt-get install -y golang-go");
    let (t, dir) = fixture("go-vendored");
    let gomodcache = t.path().join("empty-modcache");
    let doc = build_json(
        &dir,
        t.path(),
        &["--offline"],
        &[("GOMODCACHE", &gomodcache)],
    );
    assert_eq!(
        packages(&doc),
        [(
            "golang".into(),
            "example.com/dp/greet".into(),
            "v0.1.0".into()
        )],
        "{doc}"
    );
    assert!(
        doc["images"][0]["build"]["inputs"]["toolchain"]["go"]
            .as_str()
            .unwrap()
            .starts_with("go"),
        "{doc}"
    );
    let bin = packed_binary(t.path(), "govendored");
    assert_eq!(
        run_ok(&mut Command::new(&bin)).trim(),
        "hello from vendored go"
    );
}

#[test]
fn go_offline_build_without_vendor_names_the_module_goproxy_off_cannot_get() {
    require_tool("go", "apt-get install -y golang-go");
    let (t, dir) = fixture("go-vendored");
    std::fs::remove_dir_all(dir.join("vendor")).unwrap();
    let out = run(dp_build(&[])
        .arg(&dir)
        .args(["--runner", "host", "--offline"])
        .env("GOMODCACHE", t.path().join("empty-modcache"))
        .env("GOFLAGS", "-modcacherw"));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        last.contains(
            "offline build: the Go module example.com/dp/greet@v0.1.0 is not available locally"
        ) && last.contains("go mod vendor"),
        "{err}"
    );
    assert!(err.contains("GOPROXY=off"), "go's own line is shown: {err}");
}

#[test]
fn container_offline_build_runs_without_a_network() {
    let image = builder_image();
    let (_t, dir) = fixture("go-vendored");
    let out = run(dp_build(&docker_env()).arg(&dir).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--builder-image",
        image,
        "--offline",
        "--json",
        "-v",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        packages(&doc),
        [(
            "golang".into(),
            "example.com/dp/greet".into(),
            "v0.1.0".into()
        )]
    );
    let inputs = &doc["images"][0]["build"]["inputs"];
    assert_eq!(inputs["builder_image"]["name"], image, "{inputs}");
    assert!(
        inputs["builder_image"]["id"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{inputs}"
    );
    // The script proves it had no network: only the loopback interface.
    let (_t2, probe) = example("c-hello");
    write_file(
        &probe,
        "distroless-pack.toml",
        b"pre_build = \"ls /sys/class/net > net.txt\"\n",
    );
    let out = run(dp_build(&docker_env()).arg(&probe).args([
        "--runner",
        "container",
        "--engine",
        "docker",
        "--builder-image",
        image,
        "--offline",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        std::fs::read_to_string(probe.join("net.txt"))
            .unwrap()
            .trim(),
        "lo"
    );
}

#[test]
fn dotnet_offline_plan_restores_from_the_local_feed_only() {
    let (_t, dir) = example("dotnet-console");
    std::fs::create_dir_all(dir.join("feed")).unwrap();
    let out = run(dp_build(&[])
        .arg(&dir)
        .args([
            "--runner",
            "host",
            "--dry-run",
            "--json",
            "--offline",
            "--nuget-source",
        ])
        .arg(dir.join("feed")));
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = words(&doc["builds"][0]);
    let at = w.iter().position(|x| x == "--source").expect("--source");
    assert_eq!(w[at + 1], dir.join("feed").display().to_string(), "{w:?}");
    assert_eq!(w.iter().filter(|x| *x == "--source").count(), 1, "{w:?}");
    assert!(w.contains(&"-p:NuGetAudit=false".to_string()), "{w:?}");

    // The config key does the same, relative to the project.
    let mut cfg = std::fs::read_to_string(dir.join("distroless-pack.toml")).unwrap();
    cfg = cfg.replacen("[dotnet]\n", "[dotnet]\nsource = \"feed\"\n", 1);
    cfg = format!("offline = true\n{cfg}");
    std::fs::write(dir.join("distroless-pack.toml"), cfg).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&run_ok(dp_build(&[]).arg(&dir).args([
        "--runner",
        "host",
        "--dry-run",
        "--json",
    ])))
    .unwrap();
    let w = words(&doc["builds"][0]);
    let at = w.iter().position(|x| x == "--source").expect("--source");
    assert_eq!(
        w[at + 1],
        format!("{}/feed", std::fs::canonicalize(&dir).unwrap().display())
    );

    // Offline without a feed: a usage error that says what to set.
    let (_t2, bare) = example("dotnet-console");
    let out = run(dp_build(&[])
        .arg(&bare)
        .args(["--runner", "host", "--dry-run", "--offline"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a local NuGet feed"),
        "{}",
        both(&out)
    );
}

#[test]
fn c_offline_build_links_a_static_library_built_beforehand() {
    require_musl_and_make();
    let (t, dir) = example("c-hello");
    let lib = t.path().join("libgreet");
    write_file(
        &lib,
        "greet.c",
        b"const char *greet(void) { return \"greetings from libgreet.a\"; }\n",
    );
    run_ok(
        Command::new("musl-gcc")
            .args(["-c", "-o"])
            .arg(lib.join("greet.o"))
            .arg(lib.join("greet.c")),
    );
    run_ok(
        Command::new("ar")
            .arg("rcs")
            .arg(dir.join("libgreet.a"))
            .arg(lib.join("greet.o")),
    );
    write_file(
        &dir,
        "main.c",
        b"#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n",
    );
    write_file(
        &dir,
        "Makefile",
        b"greeter: main.c libgreet.a\n\t$(CC) $(CFLAGS) -o greeter main.c -L. -lgreet\n",
    );
    std::fs::remove_file(dir.join("distroless-pack.toml")).ok();
    let doc = build_json(&dir, t.path(), &["--offline"], &[]);
    assert_eq!(packages(&doc), []);
    let bin = packed_binary(t.path(), "greeter");
    assert_static(&bin);
    assert_eq!(
        run_ok(&mut Command::new(&bin)).trim(),
        "greetings from libgreet.a"
    );
}

#[test]
fn makefile_with_hard_coded_cc_and_no_ldflags_still_links_static_and_stripped() {
    require_musl_and_make();
    let t = tmp();
    let dir = t.path().join("hardcc");
    write_file(
        &dir,
        "main.c",
        b"#include <stdio.h>\nint main(void) { puts(\"static despite the Makefile\"); return 0; }\n",
    );
    // Like kilo's and lua's: CC assigned, LDFLAGS never used.
    write_file(
        &dir,
        "Makefile",
        b"CC = gcc\nCFLAGS = -O2 -g\n\nhardcc: main.c\n\t$(CC) $(CFLAGS) -o hardcc main.c\n",
    );
    let doc = build_json(&dir, t.path(), &[], &[]);
    let build = &doc["images"][0]["build"];
    let command = build["command"].as_str().unwrap();
    assert!(command.starts_with("make -B -j"), "{command}");
    assert!(command.contains("CC=musl-gcc -static"), "{command}");
    let bin = packed_binary(t.path(), "hardcc");
    assert_static(&bin);
    assert_stripped(&bin);
    assert!(
        build["notes"].to_string().contains("-static"),
        "the note is there when -static worked: {build}"
    );
    assert_eq!(
        run_ok(&mut Command::new(&bin)).trim(),
        "static despite the Makefile"
    );
}

#[test]
fn makefile_that_links_dynamically_gets_no_static_note_and_a_settings_hint() {
    require_musl_and_make();
    require_tool("gcc", "apt-get install -y gcc");
    let t = tmp();
    let dir = t.path().join("dyn");
    write_file(&dir, "main.c", b"int main(void) { return 0; }\n");
    // It calls gcc by name: no CC override can reach it.
    write_file(&dir, "Makefile", b"dyn: main.c\n\tgcc -o dyn main.c\n");
    let out = run(dp_build(&[]).arg(&dir).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("note: C build with make"), "{err}");
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        last.contains("make_args") && last.contains("`cc` under [c]"),
        "{err}"
    );
}

#[test]
fn cmake_cxx_project_links_a_static_cxx_runtime() {
    require_tool("cmake", "apt-get install -y cmake");
    require_zig();
    let t = tmp();
    let dir = t.path().join("cxx");
    write_file(
        &dir,
        "CMakeLists.txt",
        b"cmake_minimum_required(VERSION 3.13)\nproject(cxxhello CXX)\nadd_executable(cxxhello main.cpp)\n",
    );
    write_file(
        &dir,
        "main.cpp",
        b"#include <iostream>\n#include <string>\nint main() { std::string s = \"hello from \"; s += \"static C++\"; std::cout << s << std::endl; return 0; }\n",
    );
    let doc = build_json(&dir, t.path(), &[], &[]);
    let notes = doc["images"][0]["build"]["notes"].to_string();
    assert!(
        notes.contains("zig c++"),
        "the C++ toolchain is named: {notes}"
    );
    let bin = packed_binary(t.path(), "cxxhello");
    assert_static(&bin);
    assert_eq!(
        run_ok(&mut Command::new(&bin)).trim(),
        "hello from static C++"
    );
}

#[test]
fn cmake_configure_failure_names_the_configure_step_and_keeps_its_log() {
    require_musl_and_make();
    require_tool("cmake", "apt-get install -y cmake");
    let t = tmp();
    let dir = t.path().join("broken");
    write_file(
        &dir,
        "CMakeLists.txt",
        b"cmake_minimum_required(VERSION 3.13)\nproject(broken C)\nfind_package(NoSuchPackageAnywhere REQUIRED)\n",
    );
    let out = run(dp_build(&[]).arg(&dir).args(["--runner", "host"]));
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(last.contains("running `cmake -S"), "{last}");
    assert!(!last.contains("cmake --build"), "{last}");
    // Every log cmake's output points at still exists.
    let build_dir = dir.join("build/distroless-pack-amd64");
    assert!(build_dir.is_dir(), "{err}");
    let mut named = 0;
    for l in err.lines() {
        if let Some(rest) = l.split("See also \"").nth(1) {
            let path = rest.split('"').next().unwrap();
            assert!(Path::new(path).is_file(), "{path} from: {l}");
            named += 1;
        }
    }
    assert!(named > 0, "cmake names its log: {err}");
}
