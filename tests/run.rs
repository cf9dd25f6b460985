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
    // and bare paths to them, as `inspect` reads them
    for src in [
        format!("oci-archive:{}", s(&oa)),
        format!("docker-archive:{}", s(&da)),
        s(&oa).to_string(),
        s(&da).to_string(),
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
    // The program (PID 1, no SIGINT handler) ignores SIGINT, as under
    // docker; the third Ctrl-C kills it.
    for _ in 0..3 {
        // SAFETY: signalling our own child.
        unsafe { libc_kill(child.id() as i32, 2) };
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // `--platform all` names the same two platforms (as ko's).
    let all = tmp();
    let arm64 = format!("linux/arm64={}", s(&zig_hello("arm64")));
    let layout = format!("oci:{}:multi", s(&all.path().join("layout")));
    let by_all = pack_ok(&[
        s(&zig_hello("amd64")),
        "--platform",
        "all",
        "--binary",
        &arm64,
        "--tag",
        "hello:multi",
        "--output",
        &layout,
    ]);
    assert_eq!(by_all, digest);

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

// ------------------------------------------------------------ signals, PID 1, orphans (issue 9, items 8-11)

/// A C program for the signal and trace cases; prints `ready pid=N` once
/// set up. `term`: SIGTERM exits 42, SIGINT exits 43; `segv`: raise(SIGSEGV)
/// then exit 0; `sleep`: waits; `crash`: a NULL write; `pw`: getpwnam and a
/// file in /tmp; `fork`: lookups in a child; `lookups N`: N failed stats.
const SIGNALS_C: &str = r#"#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_term(int s) { (void)s; write(1, "got SIGTERM\n", 12); _exit(42); }
static void on_int(int s) { (void)s; write(1, "got SIGINT\n", 11); _exit(43); }
static void ready(void) { printf("ready pid=%d\n", (int)getpid()); fflush(stdout); }
int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "term")) {
        signal(SIGTERM, on_term);
        signal(SIGINT, on_int);
        ready();
        for (;;) pause();
    }
    if (!strcmp(m, "segv")) { ready(); raise(SIGSEGV); puts("survived raise(SIGSEGV)"); return 0; }
    if (!strcmp(m, "sleep")) { ready(); for (;;) pause(); }
    if (!strcmp(m, "crash")) {
        open("/etc/before-the-crash", O_RDONLY);
        ready();
        volatile int *p = 0; *p = 1;
        return 0;
    }
    if (!strcmp(m, "pw")) {
        struct passwd *pw = getpwnam("nonroot");
        printf("getpwnam: %s\n", pw ? pw->pw_dir : "none");
        int fd = open("/tmp/scratch.txt", O_CREAT | O_WRONLY | O_TRUNC, 0600);
        printf("tmp file: %s\n", fd >= 0 ? "written" : "failed");
        return 0;
    }
    if (!strcmp(m, "fork")) {
        pid_t c = fork();
        if (c == 0) {
            open("/etc/child-config.conf", O_RDONLY);
            access("/var/lib/child-state", R_OK);
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
        puts("child done");
        return 0;
    }
    if (!strcmp(m, "lookups")) {
        long n = argc > 2 ? atol(argv[2]) : 100000;
        struct stat sb;
        char path[64];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "/data/missing-%ld", i % 16);
            stat(path, &sb);
        }
        printf("%ld lookups\n", n);
        return 0;
    }
    puts("hello from distroless-pack");
    return 0;
}
"#;

/// [`SIGNALS_C`], static (musl-gcc), built once per test process.
fn signals_program() -> PathBuf {
    static BUILT: Built = OnceLock::new();
    built_once(&BUILT, "amd64", "dp-run-signals-", |dir| {
        let src = write_file(dir, "signals.c", SIGNALS_C.as_bytes());
        let out = dir.join("signals");
        let cc = require_tool("musl-gcc", "apt-get install -y musl-tools");
        run_ok(
            Command::new(cc)
                .args(["-static", "-O2", "-o"])
                .arg(&out)
                .arg(&src),
        );
        out
    })
}

/// Starts `run ARGS` in a process group of its own (like a shell job),
/// stdout piped, and waits for the program's `ready` line.
fn start_ready(r: &Runner, args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = r
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready pid="), "no ready line: {line:?}");
    // Keep draining stdout so the program never blocks on it (the thread
    // ends when the pipe closes).
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, line)
}

/// Waits for `child` (at most 30 s), returning its exit code.
fn wait_code(child: &mut std::process::Child) -> Option<i32> {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "run did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_to_run_reaches_the_programs_handler_and_its_exit_code_comes_back() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "signals:1", &[]);
    let r = Runner::new();
    for extra in [
        &["--isolation", "bwrap"][..],
        &["--isolation", "chroot"],
        &["--isolation", "bwrap", "--trace"],
        &["--isolation", "chroot", "--trace"],
    ] {
        let mut args = extra.to_vec();
        args.extend([src.as_str(), "--", "term"]);
        let (mut child, line) = start_ready(&r, &args);
        assert_eq!(
            line.trim(),
            "ready pid=1",
            "{extra:?}: the program is PID 1"
        );
        // SAFETY: signalling our own child.
        unsafe { libc_kill(child.id() as i32, 15) };
        assert_eq!(wait_code(&mut child), Some(42), "{extra:?}");
    }
    r.assert_clean();
}

#[test]
fn ctrl_c_reaches_a_program_that_handles_sigint_instead_of_killing_it() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "signals:2", &[]);
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        let (mut child, _) = start_ready(&r, &["--isolation", isolation, &src, "--", "term"]);
        // What a terminal does on Ctrl-C: SIGINT to the whole foreground
        // process group (here the runner's own group).
        // SAFETY: signalling our own child's process group.
        unsafe { libc_kill(-(child.id() as i32), 2) };
        assert_eq!(wait_code(&mut child), Some(43), "{isolation}");
    }
    r.assert_clean();
}

#[test]
fn raise_sigsegv_in_pid_1_is_ignored_as_under_docker() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "signals:3", &[]);
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        let out = run(&mut r.cmd(&["--isolation", isolation, &src, "--", "segv"]));
        assert_eq!(out.status.code(), Some(0), "{isolation}: {}", both(&out));
        assert_eq!(
            stdout(&out),
            "ready pid=1\nsurvived raise(SIGSEGV)\n",
            "{isolation}"
        );
    }
    r.assert_clean();
}

/// Host pids of processes whose command line holds `marker`.
fn pids_with(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        // The program itself (argv[0] /app/signals), not the runner.
        if !zombie
            && argv.first().is_some_and(|a| a.ends_with(b"/app/signals"))
            && argv.contains(&marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn sigkill_of_the_runner_kills_the_program_in_every_mode() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "signals:4", &[]);
    let r = Runner::new();
    for extra in [
        &["--isolation", "bwrap"][..],
        &["--isolation", "chroot"],
        &["--isolation", "chroot", "--trace"],
    ] {
        let marker = format!("orphan-check-{}-{}", std::process::id(), extra.join(""));
        let mut args = extra.to_vec();
        args.extend([src.as_str(), "--", "sleep", &marker]);
        let (mut child, _) = start_ready(&r, &args);
        let before = pids_with(&marker);
        assert_eq!(before.len(), 1, "{extra:?}: the program runs: {before:?}");
        // SAFETY: killing our own child.
        unsafe { libc_kill(child.id() as i32, 9) };
        let _ = child.wait();
        let t = Instant::now();
        while !pids_with(&marker).is_empty() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            pids_with(&marker).is_empty(),
            "{extra:?}: the program (pid {before:?}) outlived its runner"
        );
    }
    // The runner was killed: its temporary roots stay (nothing can remove
    // them); the TMPDIR is private to this test.
}

#[test]
fn arm64_runs_by_starting_qemu_directly_when_binfmt_is_not_used() {
    let qemu = require_tool("qemu-aarch64-static", "apt-get install -y qemu-user-static");
    assert!(qemu.is_file());
    let dir = tmp();
    let (_, src) = pack_layout(
        dir.path(),
        &probe("arm64"),
        "probe-arm64:1",
        &["--platform", "linux/arm64"],
    );
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        // DISTROLESS_PACK_QEMU=direct: act as if binfmt_misc had no qemu
        // entry (unregistering it would break tests running in parallel).
        let out = run(r
            .cmd(&[
                "-v",
                "--isolation",
                isolation,
                "--platform",
                "linux/arm64",
                &src,
                "--",
                "a b",
            ])
            .env("DISTROLESS_PACK_QEMU", "direct"));
        assert!(out.status.success(), "{isolation}: {}", both(&out));
        assert!(
            stdout(&out).starts_with(&format!("{HELLO}\nuid=65532 gid=65532 cwd=/app\narg=a b\n")),
            "{isolation}: {}",
            both(&out)
        );
        assert!(
            stderr(&out).contains("qemu-aarch64-static (direct)"),
            "{isolation}: {}",
            both(&out)
        );
        let out = run(r
            .cmd(&[
                "--isolation",
                isolation,
                "--platform",
                "linux/arm64",
                &src,
                "--",
                "exit",
                "9",
            ])
            .env("DISTROLESS_PACK_QEMU", "direct"));
        assert_eq!(out.status.code(), Some(9), "{isolation}: {}", both(&out));
    }
    r.assert_clean();
}

#[test]
fn env_name_unset_on_the_host_is_dropped_as_docker_does() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &probe("amd64"), "probe:env", &[]);
    let r = Runner::new();
    let out = run(r
        .cmd(&["-e", "DP_SURELY_UNSET_VARIABLE", "-e", "GREETING", &src])
        .env_remove("DP_SURELY_UNSET_VARIABLE")
        .env("GREETING", "from-host"));
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        stdout(&out).contains("GREETING=from-host"),
        "{}",
        both(&out)
    );
    r.assert_clean();
}

// ------------------------------------------------------------ run --trace (issue 12)

/// `run --trace --json SOURCE -- ARGS`: the output and the report (the
/// last line of stderr).
#[track_caller]
fn trace_json(r: &Runner, src: &str, args: &[&str]) -> (std::process::Output, Value) {
    let mut a = vec!["--trace", "--json", src, "--"];
    a.extend_from_slice(args);
    let out = run(&mut r.cmd(&a));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    let doc: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", both(&out)));
    assert_eq!(doc["schema_version"], 1);
    (out, doc)
}

fn finding_ids(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// A Go program that loads a time zone and the system cert pool.
const TZ_CA_GO: &str = r#"package main

import (
	"crypto/x509"
	"fmt"
	"time"
)

func main() {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println("tz error:", err)
	} else {
		fmt.Println("tz:", time.Date(2024, 7, 14, 12, 0, 0, 0, time.UTC).In(loc).Format("15:04 MST"))
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		fmt.Println("certs error:", err)
	} else if pool.Equal(x509.NewCertPool()) {
		fmt.Println("certs: none")
	} else {
		fmt.Println("certs: loaded")
	}
}
"#;

fn go_tz_ca() -> PathBuf {
    static BUILT: Built = OnceLock::new();
    built_once(&BUILT, "amd64", "dp-run-go-tzca-", |dir| {
        let go = require_tool("go", "apt-get install -y golang-go");
        write_file(dir, "main.go", TZ_CA_GO.as_bytes());
        write_file(dir, "go.mod", b"module tzca\n\ngo 1.19\n");
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-corpus");
        let out = dir.join("tzca");
        run_ok(
            Command::new(go)
                .current_dir(dir)
                .env("CGO_ENABLED", "0")
                .env("GOOS", "linux")
                .env("GOARCH", "amd64")
                .env("GOCACHE", cache.join("go-build"))
                .env("GOPATH", cache.join("gopath"))
                .env("GOTOOLCHAIN", "local")
                .args(["build", "-trimpath", "-buildvcs=false", "-o"])
                .arg(&out)
                .arg("."),
        );
        out
    })
}

#[test]
fn trace_go_finds_missing_tzdata_and_ca_certs_and_nothing_once_they_are_added() {
    let dir = tmp();
    let bin = go_tz_ca();
    let (_, bare) = pack_layout(&dir.path().join("bare"), &bin, "tzca:1", &[]);
    let r = Runner::new();
    let (out, doc) = trace_json(&r, &bare, &[]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        stdout(&out),
        "tz error: unknown time zone Europe/Berlin\ncerts: none\n"
    );
    assert_eq!(
        finding_ids(&doc),
        ["missing-tzdata", "missing-ca-certs"],
        "{doc:#}"
    );
    let f = &doc["findings"].as_array().unwrap();
    assert!(
        f[0]["fix"].as_str().unwrap().contains("--tzdata"),
        "{doc:#}"
    );
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("/usr/share/zoneinfo/Europe/Berlin"));
    assert_eq!(f[0]["severity"], "warning");
    assert!(
        f[1]["fix"].as_str().unwrap().contains("--ca-certs"),
        "{doc:#}"
    );
    assert!(
        f[1]["lookups"].as_array().unwrap().len() > 1,
        "several CA paths probed, one finding: {doc:#}"
    );

    let (_, full) = pack_layout(
        &dir.path().join("full"),
        &bin,
        "tzca:2",
        &["--tzdata", "--ca-certs"],
    );
    let (out, doc) = trace_json(&r, &full, &[]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout(&out), "tz: 14:00 CEST\ncerts: loaded\n");
    assert_eq!(finding_ids(&doc), Vec::<String>::new(), "{doc:#}");
    // The human form says so too.
    let out = run(&mut r.cmd(&["--trace", &full]));
    assert!(
        stderr(&out).contains("trace: the program found every file it looked for"),
        "{}",
        both(&out)
    );
    r.assert_clean();
}

#[test]
fn trace_musl_getpwnam_and_a_tmp_file_need_passwd() {
    let dir = tmp();
    let bin = signals_program();
    let (_, bare) = pack_layout(&dir.path().join("bare"), &bin, "sig:1", &[]);
    let r = Runner::new();
    let (out, doc) = trace_json(&r, &bare, &["pw"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout(&out), "getpwnam: none\ntmp file: failed\n");
    assert_eq!(
        finding_ids(&doc),
        ["missing-passwd", "missing-tmp"],
        "{doc:#}"
    );
    let tmp_finding = &doc["findings"][1];
    assert!(tmp_finding["message"]
        .as_str()
        .unwrap()
        .contains("/tmp/scratch.txt"));
    assert_eq!(tmp_finding["lookups"][0]["create"], true);
    // Human output: verify's layout, with the fix.
    let out = run(&mut r.cmd(&["--trace", &bare, "--", "pw"]));
    let err = stderr(&out);
    assert!(
        err.contains("  warning [missing-passwd] ") && err.contains("fix: pack with --passwd"),
        "{err}"
    );

    let (_, full) = pack_layout(&dir.path().join("full"), &bin, "sig:2", &["--passwd"]);
    let (out, doc) = trace_json(&r, &full, &["pw"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(stdout(&out), "getpwnam: /home/nonroot\ntmp file: written\n");
    assert_eq!(finding_ids(&doc), Vec::<String>::new(), "{doc:#}");
    r.assert_clean();
}

#[test]
fn trace_follows_a_forked_child() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "sig:3", &[]);
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        let out = run(&mut r.cmd(&[
            "--isolation",
            isolation,
            "--trace",
            "--json",
            &src,
            "--",
            "fork",
        ]));
        assert!(out.status.success(), "{isolation}: {}", both(&out));
        let doc: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
        let paths: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["lookups"].as_array().unwrap())
            .map(|l| l["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["/etc/child-config.conf", "/var/lib/child-state"],
            "{isolation}: only the program's lookups, as it sees them: {doc:#}"
        );
    }
    r.assert_clean();
}

#[test]
fn trace_of_a_program_killed_by_a_signal_returns_its_status_and_leaves_no_tracer() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &signals_program(), "sig:4", &[]);
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        let marker = format!("crash-{}-{isolation}", std::process::id());
        let t = Instant::now();
        let out = run(&mut r.cmd(&[
            "--isolation",
            isolation,
            "--trace",
            "--json",
            &src,
            "--",
            "crash",
            &marker,
        ]));
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{isolation}: took {:?}",
            t.elapsed()
        );
        assert_eq!(out.status.code(), Some(139), "{isolation}: {}", both(&out));
        let doc: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
        assert_eq!(doc["exit_code"], 139);
        assert!(
            doc["findings"][0]["message"]
                .as_str()
                .unwrap()
                .contains("/etc/before-the-crash"),
            "{doc:#}"
        );
        assert!(pids_with(&marker).is_empty(), "{isolation}: left running");
    }
    r.assert_clean();
}

#[test]
fn trace_does_not_change_the_programs_output_or_exit_code() {
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &probe("amd64"), "probe:trace", &[]);
    let r = Runner::new();
    for isolation in ["bwrap", "chroot"] {
        let plain = run(&mut r.cmd(&["--isolation", isolation, &src, "--", "a", "b"]));
        let traced = run(&mut r.cmd(&["--isolation", isolation, "--trace", &src, "--", "a", "b"]));
        assert_eq!(plain.stdout, traced.stdout, "{isolation}");
        assert_eq!(plain.status.code(), Some(0));
        let plain = run(&mut r.cmd(&["--isolation", isolation, &src, "--", "exit", "3"]));
        let traced =
            run(&mut r.cmd(&["--isolation", isolation, "--trace", &src, "--", "exit", "3"]));
        assert_eq!(plain.stdout, traced.stdout, "{isolation}");
        assert_eq!(plain.status.code(), Some(3), "{isolation}");
        assert_eq!(traced.status.code(), Some(3), "{isolation}");
        assert!(
            stderr(&traced).starts_with("probe: exiting with 3\n"),
            "{}",
            both(&traced)
        );
    }
    r.assert_clean();
}

/// The real NativeAOT sample (globalization on, no ICU linked) in an image
/// without ICU: it aborts, and the trace names ICU with the fix. (No
/// "with the extra" half: this binary dlopens libicu*.so, which a scratch
/// image cannot give it; the fix is a rebuild.)
#[test]
fn trace_dotnet_without_icu_reports_the_missing_icu() {
    let bin =
        crate::util::repo_root().join("tests/fixtures/dotnet/console-static-needs-icu/icuneed");
    assert!(bin.is_file(), "{} is missing", bin.display());
    let dir = tmp();
    let (_, src) = pack_layout(dir.path(), &bin, "icuneed:1", &["--no-verify"]);
    let r = Runner::new();
    let (out, doc) = trace_json(&r, &src, &[]);
    assert_eq!(
        stdout(&out),
        "icu-needing app: formatting a date for fr-FR\n",
        "{}",
        both(&out)
    );
    assert!(
        stderr(&out).contains("Couldn't find a valid ICU package"),
        "{}",
        both(&out)
    );
    // As PID 1 (docker without --init gives the same) the abort ends in
    // SIGSEGV; outside a PID namespace it is SIGABRT (134).
    assert_eq!(out.status.code(), Some(139), "{}", both(&out));
    let ids = finding_ids(&doc);
    assert_eq!(
        ids.first().map(String::as_str),
        Some("missing-icu"),
        "{doc:#}"
    );
    let icu = &doc["findings"][0];
    assert!(
        icu["message"].as_str().unwrap().contains("libicuuc.so"),
        "{doc:#}"
    );
    assert!(
        icu["fix"].as_str().unwrap().contains("--globalization"),
        "{doc:#}"
    );
    assert!(
        !ids.iter().any(|i| i == "missing-library"),
        "ICU probing is one finding, not one per path: {doc:#}"
    );
    r.assert_clean();
}

#[test]
fn smoke_traces_and_smoke_strict_fails_on_warnings() {
    let dir = tmp();
    let bin = signals_program();
    let layout = dir.path().join("layout");
    let dest = format!("oci:{}:1", s(&layout));
    // --smoke traces and prints the findings; the pack still succeeds.
    let out = run(dp().args([
        "pack",
        s(&bin),
        "--tag",
        "sig:smoke",
        "--output",
        &dest,
        "--smoke=pw",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains("[missing-passwd]") && err.contains("[missing-tmp]"),
        "{err}"
    );
    // --smoke-strict: the warnings fail it (exit 7), nothing written.
    let strict_layout = dir.path().join("strict");
    let out = run(dp().args([
        "pack",
        s(&bin),
        "--tag",
        "sig:smoke",
        "--output",
        &format!("oci:{}:1", s(&strict_layout)),
        "--smoke=pw",
        "--smoke-strict",
    ]));
    assert_eq!(out.status.code(), Some(7), "{}", both(&out));
    assert!(stderr(&out).contains("missing-passwd"), "{}", both(&out));
    assert!(!strict_layout.exists(), "nothing written");
    // With the extra, strict passes.
    let out = run(dp().args([
        "pack",
        s(&bin),
        "--tag",
        "sig:smoke",
        "--passwd",
        "--output",
        &format!("oci:{}:1", s(&strict_layout)),
        "--smoke=pw",
        "--smoke-strict",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(!stderr(&out).contains("[missing-"), "{}", both(&out));
}

#[test]
fn trace_of_an_arm64_image_under_qemu_is_refused_with_the_reason() {
    let dir = tmp();
    let (_, src) = pack_layout(
        dir.path(),
        &probe("arm64"),
        "probe-arm64:trace",
        &["--platform", "linux/arm64"],
    );
    let r = Runner::new();
    let out = run(&mut r.cmd(&["--trace", "--platform", "linux/arm64", &src]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "running under qemu-user; tracing follows programs of the host's architecture only"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    r.assert_clean();
}
