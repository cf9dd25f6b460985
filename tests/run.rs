//! `distroless-pack run`, `--smoke` and multi-platform images (`pack
//! --platform A,B --binary P=PATH`): images made by `pack`, run without an
//! engine (bubblewrap and the unshare+chroot fallback), through qemu-user
//! for arm64, and checked by skopeo, podman and a registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{corpus, engines};
use crate::util::{both, dp, require_tool, run, run_ok, tmp, write_file};

/// A C program for every case: prints HELLO, its uid/gid, cwd, args and
/// $GREETING; `exit N` exits N (after a line on stderr), `sleep` sleeps.
const PROBE_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[512];
    if (argc > 1 && !strcmp(argv[1], "sleep")) { sleep(120); return 0; }
    if (argc > 2 && !strcmp(argv[1], "exit")) {
        fprintf(stderr, "probe: exiting with %s\n", argv[2]);
        return atoi(argv[2]);
    }
    puts("hello from distroless-pack");
    printf("uid=%d gid=%d cwd=%s\n", (int)getuid(), (int)getgid(), getcwd(cwd, sizeof cwd));
    for (int i = 1; i < argc; i++) printf("arg=%s\n", argv[i]);
    const char *g = getenv("GREETING");
    if (g) printf("GREETING=%s\n", g);
    const char *home = getenv("HOME");
    if (home) printf("HOME=%s\n", home);
    if (getenv("CARGO")) puts("LEAKED host environment");
    return 0;
}
"#;

const HELLO: &str = corpus::HELLO;

/// The probe, static, for `arch` (amd64: musl-gcc; arm64: zig cc), built
/// once per test process.
fn probe(arch: &str) -> PathBuf {
    static BUILT: Built = OnceLock::new();
    built_once(&BUILT, arch, "dp-run-probe-", |dir| {
        let src = write_file(dir, "probe.c", PROBE_C.as_bytes());
        let out = dir.join(format!("probe-{arch}"));
        match arch {
            "amd64" => {
                let cc = require_tool("musl-gcc", "apt-get install -y musl-tools");
                run_ok(
                    Command::new(cc)
                        .args(["-static", "-O2", "-o"])
                        .arg(&out)
                        .arg(&src),
                );
            }
            _ => zig_cc("aarch64-linux-musl", &src, &out),
        }
        out
    })
}

/// Programs built once per test process, by architecture.
type Built = OnceLock<Mutex<HashMap<String, PathBuf>>>;

/// The program `build` makes for `arch` in a kept temporary directory
/// (named `prefix...`), built on the first call and remembered in `cache`.
fn built_once(
    cache: &Built,
    arch: &str,
    prefix: &str,
    build: impl FnOnce(&Path) -> PathBuf,
) -> PathBuf {
    let mut built = cache
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(arch) {
        return p.clone();
    }
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap()
        .keep();
    let out = build(&dir);
    built.insert(arch.to_string(), out.clone());
    out
}

/// `python3 -m ziglang cc -target TARGET -static` (the first build of a
/// target takes about a minute; zig caches it).
fn zig_cc(target: &str, src: &Path, out: &Path) {
    let python = require_tool("python3", "apt-get install -y python3");
    let ok = Command::new(&python)
        .args(["-m", "ziglang", "version"])
        .output()
        .map(|o| o.status.success());
    assert!(
        ok.unwrap_or(false),
        "required tool `zig` is not installed: run `pip install ziglang` (scripts/install-deps.sh installs every test dependency)"
    );
    run_ok(
        Command::new(python)
            .args([
                "-m", "ziglang", "cc", "-target", target, "-static", "-O2", "-o",
            ])
            .arg(out)
            .arg(src),
    );
}

/// A C hello built with zig cc for both architectures (the issue's "C
/// example, zig cc").
fn zig_hello(arch: &str) -> PathBuf {
    static BUILT: Built = OnceLock::new();
    built_once(&BUILT, arch, "dp-run-zig-", |dir| {
        let src = write_file(dir, "hello.c", corpus::HELLO_C.as_bytes());
        let out = dir.join("hello");
        zig_cc(
            if arch == "amd64" {
                "x86_64-linux-musl"
            } else {
                "aarch64-linux-musl"
            },
            &src,
            &out,
        );
        out
    })
}

/// A temporary directory whose path is all lowercase (podman derives an
/// image name from an `oci:` path).
fn lowercase_tmp() -> tempfile::TempDir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "dp-run-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let base = std::env::temp_dir();
    assert_eq!(
        base.to_string_lossy(),
        base.to_string_lossy().to_lowercase(),
        "TMPDIR must be lowercase for podman"
    );
    tempfile::Builder::new()
        .prefix(&name)
        .rand_bytes(0)
        .tempdir_in(base)
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pack` with `args`, asserting success; returns the digest it printed.
#[track_caller]
fn pack_ok(args: &[&str]) -> String {
    run_ok(dp().arg("pack").args(args)).trim().to_string()
}

/// `pack BIN --tag TAG --output oci:DIR/layout:1 EXTRA...`, asserting
/// success; returns the layout and that `oci:` reference.
#[track_caller]
fn pack_layout(dir: &Path, bin: &Path, tag: &str, extra: &[&str]) -> (PathBuf, String) {
    let layout = dir.join("layout");
    let src = format!("oci:{}:1", s(&layout));
    let mut args = vec![s(bin), "--tag", tag, "--output", &src];
    args.extend_from_slice(extra);
    pack_ok(&args);
    (layout, src)
}

/// `distroless-pack run` with a private TMPDIR (checked empty afterwards).
struct Runner {
    tmpdir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        Runner { tmpdir: tmp() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = dp();
        c.arg("run")
            .args(args)
            .env("TMPDIR", self.tmpdir.path())
            .stdin(Stdio::null());
        c
    }

    #[track_caller]
    fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(self.tmpdir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "temporary roots left behind: {left:?}");
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn skopeo_raw(reference: &str) -> Value {
    let skopeo = require_tool("skopeo", "apt-get install -y skopeo");
    let out = run_ok(Command::new(skopeo).args(["inspect", "--raw", reference]));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("skopeo inspect --raw {reference}: {e}\n{out}"))
}

/// The `os/architecture` of each manifest in an index, in order.
fn index_platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

// ------------------------------------------------------------ run

#[test]
fn run_uses_the_image_config_passes_args_and_returns_the_exit_code() {
    let dir = tmp();
    let (_, src) = pack_layout(
        dir.path(),
        &probe("amd64"),
        "probe:1",
        &[
            "--env",
            "GREETING=hi there",
            "--workdir",
            "/srv/app",
            "--",
            "from-cmd",
        ],
    );
    for isolation in ["bwrap", "chroot"] {
        if isolation == "bwrap" {
            require_tool("bwrap", "apt-get install -y bubblewrap");
        }
        let r = Runner::new();
        // The image's cmd, env, default non-root user and workdir.
        let out = run(&mut r.cmd(&["--isolation", isolation, &src]));
        let text = stdout(&out);
        assert!(out.status.success(), "{isolation}: {}", both(&out));
        assert!(
            text.starts_with(&format!("{HELLO}\n")),
            "{isolation}: {text}"
        );
        assert!(
            text.contains("uid=65532 gid=65532 cwd=/srv/app\n"),
            "{isolation}: {text}"
        );
        assert!(text.contains("arg=from-cmd\n"), "{isolation}: {text}");
        assert!(
            text.contains("GREETING=hi there\n") && text.contains("HOME=/\n"),
            "{isolation}: {text}"
        );
        assert!(
            !text.contains("LEAKED"),
            "{isolation}: the host environment reached the program: {text}"
        );

        // Args after `--` replace the cmd; the program's exit code and
        // stderr come back unchanged.
        let out = run(&mut r.cmd(&["--isolation", isolation, &src, "--", "exit", "42"]));
        assert_eq!(out.status.code(), Some(42), "{isolation}: {}", both(&out));
        assert_eq!(stderr(&out), "probe: exiting with 42\n", "{isolation}");
        let out = run(&mut r.cmd(&[
            "--isolation",
            isolation,
            "-e",
            "GREETING=override",
            "--user",
            "1234:5678",
            &src,
            "--",
            "a b",
            "c",
        ]));
        let text = stdout(&out);
        assert!(out.status.success(), "{isolation}: {}", both(&out));
        assert!(
            text.contains("arg=a b\narg=c\n") && !text.contains("from-cmd"),
            "{isolation}: {text}"
        );
        assert!(
            text.contains("uid=1234 gid=5678") && text.contains("GREETING=override\n"),
            "{isolation}: {text}"
        );
        r.assert_clean();
    }
}

#[test]
fn run_reads_every_source_format() {
    let dir = tmp();
    let bin = probe("amd64");
    let oa = dir.path().join("probe.oci.tar");
    let da = dir.path().join("probe.docker.tar");
    pack_ok(&[
        s(&bin),
        "--tag",
        "probe:2",
        "--output",
        &format!("oci-archive:{}", s(&oa)),
        "--output",
        &format!("docker-archive:{}", s(&da)),
    ]);
    let r = Runner::new();
    for src in [
        format!("oci-archive:{}", s(&oa)),
        format!("docker-archive:{}", s(&da)),
    ] {
        let out = run(&mut r.cmd(&[&src, "--", "x"]));
        assert!(
            out.status.success() && stdout(&out).contains("arg=x\n"),
            "{src}: {}",
            both(&out)
        );
    }
    r.assert_clean();
    // A source that is not there is a usage error naming it.
    let out = run(&mut r.cmd(&[&format!("oci:{}:nope", s(&dir.path().join("missing")))]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains("missing"), "{}", both(&out));
}

#[test]
fn run_reports_the_missing_interpreter_of_a_dynamic_binary() {
    let dir = tmp();
    let dynamic = corpus::glibc_dynamic_hello();
    let (_, src) = pack_layout(dir.path(), &dynamic, "dyn:1", &["--no-verify"]);
    let r = Runner::new();
    let out = run(&mut r.cmd(&[&src]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(127), "{}", both(&out));
    assert!(
        err.contains(
            "the program needs /lib64/ld-linux-x86-64.so.2, which the image does not have"
        ),
        "{}",
        both(&out)
    );
    assert!(err.contains("dynamically linked"), "{}", both(&out));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    r.assert_clean();
}

#[test]
fn run_cleans_up_when_interrupted() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &probe("amd64"), "probe:3", &[]);
    let r = Runner::new();
    let mut child = r.cmd(&[&src, "--", "sleep"]).spawn().unwrap();
    // Wait until the root exists and the program runs, then interrupt.
    let t = Instant::now();
    while std::fs::read_dir(r.tmpdir.path()).unwrap().count() == 0
        && t.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "run did not end after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    r.assert_clean();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn run_timeout_kills_the_program() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &probe("amd64"), "probe:4", &[]);
    let r = Runner::new();
    let t = Instant::now();
    let out = run(&mut r.cmd(&["--timeout", "1", &src, "--", "sleep"]));
    assert_eq!(out.status.code(), Some(137), "{}", both(&out));
    assert!(t.elapsed() < Duration::from_secs(20));
    r.assert_clean();
}

/// Without root: bubblewrap and the chroot fallback both use a user
/// namespace (run as uid 1000 through setpriv when the tests run as root).
#[test]
fn run_works_without_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp();
    let (layout, src) = pack_layout(dir.path(), &probe("amd64"), "probe:5", &[]);
    let r = Runner::new();
    for p in [dir.path(), r.tmpdir.path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&layout));
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc_geteuid() } == 0;
    for isolation in ["bwrap", "chroot"] {
        let mut c = if root {
            let setpriv = require_tool("setpriv", "apt-get install -y util-linux");
            let mut c = Command::new(setpriv);
            c.args(["--reuid=1000", "--regid=1000", "--clear-groups"])
                .arg(crate::util::bin());
            c
        } else {
            Command::new(crate::util::bin())
        };
        c.args(["run", "--isolation", isolation, &src, "--", "x"])
            .env("TMPDIR", r.tmpdir.path())
            .stdin(Stdio::null());
        let out = run(&mut c);
        assert!(out.status.success(), "{isolation}: {}", both(&out));
        assert!(
            stdout(&out).contains("uid=65532 gid=65532 cwd=/app\narg=x\n"),
            "{isolation}: {}",
            both(&out)
        );
    }
    r.assert_clean();
}

// ------------------------------------------------------------ --smoke

#[test]
fn smoke_stops_a_pack_whose_program_fails_and_writes_nothing() {
    let dir = tmp();
    let bin = probe("amd64");
    let layout = dir.path().join("layout");
    let archive = dir.path().join("image.tar");
    let outputs = [
        "--output".to_string(),
        format!("oci:{}:1", s(&layout)),
        "--output".into(),
        format!("oci-archive:{}", s(&archive)),
    ];
    // The program exits 3 at start: exit code 7, its stderr shown, no output.
    let out = run(dp()
        .arg("pack")
        .arg(&bin)
        .args(["--tag", "bad:1"])
        .args(&outputs)
        .args(["--smoke=exit 3", "--", "ignored"]));
    assert_eq!(out.status.code(), Some(7), "{}", both(&out));
    assert!(
        stderr(&out).contains("exited with code 3"),
        "{}",
        both(&out)
    );
    assert!(
        stderr(&out).contains("probe: exiting with 3"),
        "{}",
        both(&out)
    );
    assert!(
        !layout.exists() && !archive.exists(),
        "output written despite the failed smoke test"
    );

    // A dynamic binary forced in cannot start.
    let dynamic = corpus::glibc_dynamic_hello();
    let out = run(dp()
        .arg("pack")
        .arg(&dynamic)
        .args(["--no-verify", "--tag", "dyn:1", "--smoke"])
        .args(&outputs));
    assert_eq!(out.status.code(), Some(7), "{}", both(&out));
    assert!(
        stderr(&out).contains("which the image does not have"),
        "{}",
        both(&out)
    );
    assert!(!layout.exists() && !archive.exists());

    // The image's own cmd passes; so does a server still running at the limit.
    let out = run(dp()
        .arg("pack")
        .arg(&bin)
        .args(["--tag", "good:1", "--smoke"])
        .args(&outputs));
    assert!(out.status.success(), "{}", both(&out));
    assert!(layout.join("index.json").exists() && archive.exists());
    let t = Instant::now();
    let out = run(dp().arg("pack").arg(&bin).args([
        "--tag",
        "server:1",
        "--smoke=sleep",
        "--smoke-timeout=1",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(t.elapsed() < Duration::from_secs(30));
}

// ------------------------------------------------------------ multi-platform

/// Packs the zig C hello for amd64 and arm64 into an index in `dir`.
fn pack_multi(dir: &Path, extra: &[&str]) -> String {
    let layout = dir.join("layout");
    let mut args = vec![
        s(&zig_hello("amd64")).to_string(),
        "--platform".into(),
        "linux/arm64,linux/amd64".into(),
        "--binary".into(),
        format!("linux/arm64={}", s(&zig_hello("arm64"))),
        "--tag".into(),
        "hello:multi".into(),
        "--output".into(),
        format!("oci:{}:multi", s(&layout)),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    pack_ok(&refs)
}

#[test]
fn multi_platform_index_runs_on_both_platforms() {
    let dir = tmp();
    let archive = dir.path().join("multi.tar");
    let digest = pack_multi(
        dir.path(),
        &["--output", &format!("oci-archive:{}", s(&archive))],
    );
    let src = format!("oci:{}:multi", s(&dir.path().join("layout")));

    // skopeo sees an index with both platforms, in a fixed order.
    let index = skopeo_raw(&src);
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    assert_eq!(
        index_platforms(&index),
        ["linux/amd64", "linux/arm64"],
        "{index}"
    );
    let from_archive = skopeo_raw(&format!("oci-archive:{}", s(&archive)));
    assert_eq!(from_archive, index);
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The same inputs give the same index digest.
    let again = tmp();
    assert_eq!(pack_multi(again.path(), &[]), digest);

    // distroless-pack run picks the host's image by default, arm64 on request
    // (qemu-user through binfmt_misc).
    engines::ensure_binfmt_arm64();
    let r = Runner::new();
    for platform in [None, Some("linux/amd64"), Some("linux/arm64")] {
        let mut args = vec![];
        if let Some(p) = platform {
            args.extend(["--platform", p]);
        }
        args.push(&src);
        let out = run(&mut r.cmd(&args));
        assert!(out.status.success(), "{platform:?}: {}", both(&out));
        assert_eq!(stdout(&out), format!("{HELLO}\n"), "{platform:?}");
    }
    let out = run(&mut r.cmd(&["--platform", "linux/arm64", "--verbose", &src]));
    assert!(stderr(&out).contains("qemu-aarch64"), "{}", both(&out));
    r.assert_clean();

    // podman runs the arm64 image of the layout (it names the image after
    // the layout path, which must then be lowercase).
    let lower = lowercase_tmp();
    let layout = lower.path().join("layout");
    std::fs::rename(dir.path().join("layout"), &layout).unwrap();
    let src = format!("oci:{}:multi", s(&layout));
    let out = run(engines::podman().cmd().args([
        "run",
        "--rm",
        "--network=none",
        "--arch",
        "arm64",
        &src,
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout(&out), format!("{HELLO}\n"));

    // docker-archive holds one platform: it needs a --platform pick.
    let da = dir.path().join("one.tar");
    let out = run(dp().args([
        "pack",
        s(&zig_hello("amd64")),
        "--platform",
        "linux/amd64,linux/arm64",
        "--binary",
        &format!("linux/arm64={}", s(&zig_hello("arm64"))),
        "--output",
        &format!("docker-archive:{}", s(&da)),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stderr(&out).contains("--platform"), "{}", both(&out));
    assert!(!da.exists());
}

#[test]
fn multi_platform_go_images_run_on_both_platforms() {
    let dir = tmp();
    let layout = dir.path().join("go");
    let amd = corpus::go_static_hello();
    let arm = corpus::go_arm64_hello();
    pack_ok(&[
        s(&amd),
        "--platform",
        "linux/amd64,linux/arm64",
        "--binary",
        &format!("linux/arm64={}", s(&arm)),
        "--binary",
        &format!("linux/amd64={}", s(&amd)),
        "--tag",
        "go-hello:1",
        "--output",
        &format!("oci:{}:1", s(&layout)),
        "--smoke",
    ]);
    let src = format!("oci:{}:1", s(&layout));
    assert_eq!(
        index_platforms(&skopeo_raw(&src)),
        ["linux/amd64", "linux/arm64"]
    );
    engines::ensure_binfmt_arm64();
    let r = Runner::new();
    for p in ["linux/amd64", "linux/arm64"] {
        let out = run(&mut r.cmd(&["--platform", p, &src]));
        assert!(out.status.success(), "{p}: {}", both(&out));
        assert_eq!(stdout(&out), format!("{HELLO}\n"), "{p}");
    }
    r.assert_clean();
}

#[test]
fn a_binary_for_the_wrong_platform_is_refused() {
    let dir = tmp();
    let layout = dir.path().join("layout");
    // FILE serves every platform without --binary: the amd64 hello as arm64.
    let out = run(dp().args([
        "pack",
        s(&probe("amd64")),
        "--platform",
        "linux/amd64,linux/arm64",
        "--output",
        &format!("oci:{}:x", s(&layout)),
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("linux/arm64"), "{}", both(&out));
    assert!(!layout.exists());
    // Also with --no-verify: the ELF says amd64.
    let out = run(dp().args([
        "pack",
        s(&probe("amd64")),
        "--no-verify",
        "--platform",
        "linux/amd64,linux/arm64",
        "--output",
        &format!("oci:{}:x", s(&layout)),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("linux/amd64") && stderr(&out).contains("linux/arm64"),
        "{}",
        both(&out)
    );
    assert!(!layout.exists());
    // A --binary for a platform not asked for.
    let out = run(dp().args([
        "pack",
        s(&probe("amd64")),
        "--platform",
        "linux/amd64",
        "--binary",
        &format!("linux/arm64={}", s(&zig_hello("arm64"))),
        "--output",
        &format!("oci:{}:x", s(&layout)),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(!layout.exists());
}

#[test]
fn multi_platform_index_pushes_and_resolves_per_architecture() {
    use crate::support::registry::{Auth, Registry};
    let reg = Registry::start(Auth::None);
    let dir = tmp();
    let reference = reg.reference("hello-multi:1");
    // The digest, then the pushed NAME@sha256:... (as `push` prints it).
    let printed = pack_multi(dir.path(), &["--push", &reference]);
    let digest = printed.lines().next().unwrap_or("").to_string();
    let skopeo = require_tool("skopeo", "apt-get install -y skopeo");
    // `skopeo inspect --raw` of a reference in the plain-HTTP registry.
    let raw = |reference: &str| {
        run_ok(Command::new(&skopeo).args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]))
    };
    let index: Value = serde_json::from_str(&raw(&reference)).unwrap();
    assert_eq!(
        index_platforms(&index),
        ["linux/amd64", "linux/arm64"],
        "{index}"
    );
    let arm_digest = index["manifests"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let text = run_ok(Command::new(&skopeo).args([
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        "--override-os",
        "linux",
        &format!("docker://{reference}"),
    ]));
    let inspected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(inspected["Architecture"], "arm64", "{inspected}");
    // skopeo reports the index digest; the layers are the arm64 manifest's.
    assert_eq!(inspected["Digest"], digest.as_str(), "{inspected}");
    let repo = reference.rsplit_once(':').unwrap().0;
    let arm_manifest: Value = serde_json::from_str(&raw(&format!("{repo}@{arm_digest}"))).unwrap();
    assert_eq!(
        inspected["Layers"][0], arm_manifest["layers"][0]["digest"],
        "{inspected}\n{arm_manifest}"
    );
    // The registry holds the index under the digest pack printed.
    let raw_by_digest = raw(&format!("{repo}@{digest}"));
    assert_eq!(
        serde_json::from_str::<Value>(&raw_by_digest).unwrap(),
        index
    );
}

#[test]
fn run_in_podman_and_docker() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &probe("amd64"), "probe:engine", &[]);
    for engine in [engines::podman(), engines::docker()] {
        let name = engine.name();
        // `distroless-pack run --engine NAME ARGS...`
        let run_in_engine = |args: &[&str]| {
            run(engine
                .apply(&mut dp())
                .args(["run", "--engine", name])
                .args(args)
                .stdin(Stdio::null()))
        };
        let out = run_in_engine(&[&src, "--", "exit", "5"]);
        assert_eq!(out.status.code(), Some(5), "{name}: {}", both(&out));
        let out = run_in_engine(&["-e", "GREETING=engine", &src, "--", "x"]);
        assert!(out.status.success(), "{name}: {}", both(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("{HELLO}\n")) && text.contains("arg=x\n"),
            "{name}: {}",
            both(&out)
        );
        assert!(
            text.contains("uid=65532 gid=65532") && text.contains("GREETING=engine\n"),
            "{name}: {}",
            both(&out)
        );
        // --timeout stops the container.
        let t = Instant::now();
        let out = run_in_engine(&["--timeout", "2", &src, "--", "sleep"]);
        assert_eq!(out.status.code(), Some(137), "{name}: {}", both(&out));
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{name}: took {:?}",
            t.elapsed()
        );
        let running = engine.run_ok(&["ps", "-a", "--format", "{{.Names}}"]);
        assert!(
            !running.contains("distroless-pack-run"),
            "{name} kept the container: {running}"
        );
        // Only our own name was loaded, and it is gone again.
        let images = engine.run_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(
            !images.contains("distroless-pack-run"),
            "{name} kept the run image: {images}"
        );
    }
}

/// A C project (`kind = "c"`, make) whose program is the probe.
fn c_project(dir: &Path) -> PathBuf {
    let project = dir.join("probe-project");
    write_file(&project, "probe.c", PROBE_C.as_bytes());
    write_file(
        &project,
        "Makefile",
        b"CFLAGS ?= -O2\nprobe: probe.c\n\t$(CC) $(CFLAGS) -o $@ probe.c $(LDFLAGS)\n",
    );
    write_file(
        &project,
        "distroless-pack.toml",
        b"kind = \"c\"\nname = \"probe\"\n\n[c]\nbuild = \"make\"\n",
    );
    project
}

#[test]
fn smoke_stops_a_build_whose_program_fails_and_passes_both_platforms() {
    let dir = tmp();
    let project = c_project(dir.path());
    let layout = dir.path().join("layout");
    let output = format!("oci:{}:1", s(&layout));
    // The built program exits 5 at start: exit code 7, nothing written.
    let out = run(dp().arg("build").arg(&project).args([
        "--runner",
        "host",
        "--tag",
        "probe:1",
        "--output",
        &output,
        "--smoke=exit 5",
    ]));
    assert_eq!(out.status.code(), Some(7), "{}", both(&out));
    assert!(
        stderr(&out).contains("exited with code 5")
            && stderr(&out).contains("probe: exiting with 5"),
        "{}",
        both(&out)
    );
    assert!(
        !layout.exists(),
        "output written despite the failed smoke test"
    );

    // Cross-built for both platforms (zig cc for arm64), each smoke-run
    // (arm64 through qemu-user), then written as one index.
    engines::ensure_binfmt_arm64();
    let out = run(dp().arg("build").arg(&project).args([
        "--runner",
        "host",
        "--platform",
        "linux/amd64,linux/arm64",
        "--tag",
        "probe:1",
        "--output",
        &output,
        "--smoke=smoke-arg",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(stderr(&out).contains("linux/arm64"), "{}", both(&out));
    assert_eq!(
        index_platforms(&skopeo_raw(&output)),
        ["linux/amd64", "linux/arm64"]
    );
    let r = Runner::new();
    let out = run(&mut r.cmd(&["--platform", "linux/arm64", &output]));
    assert!(
        out.status.success() && stdout(&out).starts_with(&format!("{HELLO}\n")),
        "{}",
        both(&out)
    );
}

#[test]
fn run_resolves_user_names_from_the_image() {
    let dir = tmp();
    let (_, src) = pack_layout(
        dir.path(),
        &probe("amd64"),
        "probe:6",
        &["--passwd", "--user", "nonroot"],
    );
    let r = Runner::new();
    let out = run(&mut r.cmd(&[&src]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        stdout(&out).contains("uid=65532 gid=65532")
            && stdout(&out).contains("HOME=/home/nonroot\n"),
        "{}",
        both(&out)
    );
    let out = run(&mut r.cmd(&["--user", "nobody", &src]));
    assert!(
        stdout(&out).contains("uid=65534 gid=65534"),
        "{}",
        both(&out)
    );
    let out = run(&mut r.cmd(&["--user", "bogus", &src]));
    assert_eq!(out.status.code(), Some(125), "{}", both(&out));
    assert!(
        stderr(&out).contains("no user \"bogus\" in the image's /etc/passwd"),
        "{}",
        both(&out)
    );
    r.assert_clean();
}
