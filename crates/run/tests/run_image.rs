//! The run crate against real images built here: a static C program
//! (musl-gcc) packed into an in-memory image with hand-made layers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use distroless_pack_image::{Blob, Image, MEDIA_TYPE_LAYER_GZIP};
use distroless_pack_run::{
    run, smoke, unpack_layers, Isolation, RunError, RunOptions, SmokeOptions, Status,
};

const HELLO_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    char cwd[256];
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) { sleep(100); return 0; }
    if (argc > 1 && strcmp(argv[1], "crash") == 0) { volatile int *p = 0; return *p; }
    printf("hello uid=%d gid=%d cwd=%s\n", (int)getuid(), (int)getgid(), getcwd(cwd, sizeof cwd));
    for (int i = 1; i < argc; i++) printf("arg=%s\n", argv[i]);
    for (char **e = environ; *e; e++) printf("env=%s\n", *e);
    fprintf(stderr, "to stderr\n");
    if (argc > 2 && strcmp(argv[1], "exit") == 0) return atoi(argv[2]);
    return 0;
}
"#;

fn require(tool: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "required tool `{tool}` is not installed: run `{install}`"
    );
}

fn hello(dir: &Path, static_: bool) -> PathBuf {
    let (cc, install) = if static_ {
        ("musl-gcc", "apt-get install -y musl-tools")
    } else {
        ("gcc", "apt-get install -y gcc")
    };
    require(cc, install);
    let src = dir.join("hello.c");
    std::fs::write(&src, HELLO_C).unwrap();
    let out = dir.join(if static_ { "hello" } else { "hello-dyn" });
    let mut c = Command::new(cc);
    if static_ {
        c.arg("-static");
    }
    let st = c.arg("-O2").arg("-o").arg(&out).arg(&src).status().unwrap();
    assert!(st.success());
    out
}

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, Vec<u8>),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    RawPath(&'a [u8], Vec<u8>),
}

fn layer(entries: &[E<'_>]) -> Blob {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                tar.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, m, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, p, &data[..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, p, target).unwrap();
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_link(&mut h, p, target).unwrap();
            }
            E::RawPath(p, data) => {
                // Bypass the tar crate's own `..` check to make a hostile layer.
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let name = &mut h.as_old_mut().name;
                name[..p.len()].copy_from_slice(p);
                h.set_cksum();
                tar.append(&h, &data[..]).unwrap();
            }
        }
    }
    let bytes = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    Blob::from_bytes(MEDIA_TYPE_LAYER_GZIP, gz.finish().unwrap())
}

fn image(layers: Vec<Blob>, config: serde_json::Value) -> Image {
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let mut cfg = serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": config,
    });
    cfg["created"] = "1970-01-01T00:00:00Z".into();
    let cfg = serde_json::from_value(cfg).unwrap();
    Image::new(&cfg, layers, &BTreeMap::new()).unwrap()
}

fn hello_image(bin: &Path, config: serde_json::Value) -> Image {
    let data = std::fs::read(bin).unwrap();
    image(
        vec![layer(&[
            E::Dir("app", 0o755),
            E::File("app/hello", 0o755, data),
        ])],
        config,
    )
}

fn captured(isolation: Isolation, args: Option<Vec<String>>, temp: &Path) -> RunOptions {
    RunOptions {
        args,
        isolation,
        capture: Some(1 << 20),
        timeout: Some(Duration::from_secs(30)),
        temp_dir: Some(temp.to_path_buf()),
        ..RunOptions::default()
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn check_hello(isolation: Isolation) {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), true);
    let img = hello_image(
        &bin,
        serde_json::json!({
            "Entrypoint": ["/app/hello"], "Cmd": ["default"],
            "Env": ["GREETING=hi there", "PATH=/app"],
            "User": "65532:65532", "WorkingDir": "/work/dir",
        }),
    );
    let temp = d.path().join("temp");
    std::fs::create_dir(&temp).unwrap();

    // The image's cmd, env, user and workdir.
    let out = run(&img, &captured(isolation, None, &temp)).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status, Status::Exited(0), "{text}");
    assert_eq!(out.isolation, isolation);
    assert!(
        text.contains("hello uid=65532 gid=65532 cwd=/work/dir"),
        "{text}"
    );
    assert!(text.contains("arg=default\n"), "{text}");
    assert!(text.contains("env=GREETING=hi there\n"), "{text}");
    assert!(text.contains("env=PATH=/app\n"), "{text}");
    assert!(text.contains("env=HOME=/\n"), "{text}");
    assert!(!text.contains("env=CARGO"), "host env leaked: {text}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to stderr\n");

    // Args replace the cmd; the exit code comes back.
    let out = run(
        &img,
        &captured(isolation, Some(strings(&["exit", "42"])), &temp),
    )
    .unwrap();
    assert_eq!(out.status, Status::Exited(42));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("arg=exit\narg=42\n") && !text.contains("arg=default"),
        "{text}"
    );

    // A crash is reported as a signal (128+11 under bubblewrap).
    let out = run(&img, &captured(isolation, Some(strings(&["crash"])), &temp)).unwrap();
    assert_eq!(out.status.code(), 139, "{:?}", out.status);
    assert_eq!(out.status.signal(), Some(11));

    // Nothing is left behind.
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "temporary root left behind"
    );
}

#[test]
fn runs_with_bubblewrap() {
    require("bwrap", "apt-get install -y bubblewrap");
    check_hello(Isolation::Bwrap);
}

#[test]
fn runs_with_chroot() {
    check_hello(Isolation::Chroot);
}

#[test]
fn smoke_passes_servers_and_fails_bad_exits() {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), true);
    let img = hello_image(&bin, serde_json::json!({"Entrypoint": ["/app/hello"]}));
    let smoke_opts = |args: Option<&[&str]>, timeout: Duration| SmokeOptions {
        args: args.map(strings),
        timeout,
        trace: true,
    };
    let ok = smoke(&img, &smoke_opts(None, Duration::from_secs(20))).unwrap();
    assert!(ok.passed(), "{}", ok.describe());
    let bad = smoke(
        &img,
        &smoke_opts(Some(&["exit", "3"]), Duration::from_secs(20)),
    )
    .unwrap();
    assert!(!bad.passed());
    assert!(
        bad.describe().contains("exited with code 3"),
        "{}",
        bad.describe()
    );
    assert!(bad.describe().contains("to stderr"), "{}", bad.describe());
    let crash = smoke(&img, &smoke_opts(Some(&["crash"]), Duration::from_secs(20))).unwrap();
    assert!(!crash.passed());
    assert!(crash.describe().contains("SIGSEGV"), "{}", crash.describe());
    let t = std::time::Instant::now();
    let server = smoke(
        &img,
        &smoke_opts(Some(&["sleep"]), Duration::from_millis(700)),
    )
    .unwrap();
    assert!(server.passed(), "{}", server.describe());
    assert_eq!(server.outcome.status, Status::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn dynamic_binary_reports_the_missing_interpreter() {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), false);
    let img = hello_image(&bin, serde_json::json!({"Entrypoint": ["/app/hello"]}));
    let err = run(&img, &captured(Isolation::Auto, None, d.path())).unwrap_err();
    assert!(matches!(err, RunError::MissingInterpreter { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "the program needs /lib64/ld-linux-x86-64.so.2, which the image does not have"
        ) || msg.contains("ld-linux-aarch64"),
        "{msg}"
    );
    assert!(msg.contains("dynamically linked"), "{msg}");
}

#[test]
fn missing_program_script_and_no_command() {
    let d = tempfile::tempdir().unwrap();
    let img = image(
        vec![layer(&[
            E::File("run.sh", 0o755, b"#!/bin/sh\necho hi\n".to_vec()),
            E::File("data", 0o644, b"x".to_vec()),
        ])],
        serde_json::json!({"Entrypoint": ["/nope"]}),
    );
    let opts = |args: &[&str]| RunOptions {
        entrypoint: Some(strings(args)),
        ..captured(Isolation::Auto, None, d.path())
    };
    let e = run(&img, &opts(&["/nope"])).unwrap_err().to_string();
    assert!(e.contains("/nope: not in the image"), "{e}");
    let e = run(&img, &opts(&["nope"])).unwrap_err().to_string();
    assert!(e.contains("looked in PATH="), "{e}");
    let e = run(&img, &opts(&["/run.sh"])).unwrap_err().to_string();
    assert!(e.contains("script for /bin/sh"), "{e}");
    let e = run(&img, &opts(&["/data"])).unwrap_err().to_string();
    assert!(e.contains("not executable"), "{e}");
    let empty = image(vec![layer(&[E::Dir("x", 0o755)])], serde_json::json!({}));
    let e = run(&empty, &captured(Isolation::Auto, None, d.path())).unwrap_err();
    assert!(matches!(e, RunError::NoCommand), "{e}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn unpack_stays_inside_the_root_and_applies_whiteouts() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out_abs = outside.to_str().unwrap().to_string();

    // Symlinks pointing outside (absolute and via ..) are resolved inside.
    let lower = layer(&[
        E::Link("etc", &out_abs),
        E::Link("up", "../../../../.."),
        E::Dir("keep", 0o755),
        E::File("keep/a", 0o644, b"a".to_vec()),
        E::File("keep/b", 0o644, b"b".to_vec()),
        E::Dir("opaque", 0o755),
        E::File("opaque/old", 0o644, b"old".to_vec()),
        E::Dir("ro", 0o555),
        E::File("ro/inside", 0o444, b"ro".to_vec()),
    ]);
    let upper = layer(&[
        E::File("etc/passwd", 0o644, b"root".to_vec()),
        E::File("up/escaped", 0o644, b"x".to_vec()),
        E::File("keep/.wh.a", 0o644, Vec::new()),
        E::File("opaque/new", 0o644, b"new".to_vec()),
        E::File("opaque/.wh..wh..opq", 0o644, Vec::new()),
        E::Hard("keep/b2", "keep/b"),
    ]);
    unpack_layers(&[lower, upper], &root, false, &|| false).unwrap();
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the root"
    );
    assert!(!d.path().join("escaped").exists());
    let inner = root.join(outside.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inner.join("passwd")).unwrap(), b"root");
    assert_eq!(std::fs::read(root.join("escaped")).unwrap(), b"x");
    assert!(!root.join("keep/a").exists());
    assert_eq!(std::fs::read(root.join("keep/b2")).unwrap(), b"b");
    assert!(!root.join("opaque/old").exists());
    assert_eq!(std::fs::read(root.join("opaque/new")).unwrap(), b"new");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(root.join("ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );

    // `..` in an entry name is refused outright.
    let root2 = d.path().join("root2");
    std::fs::create_dir(&root2).unwrap();
    let evil = layer(&[E::RawPath(b"a/../../evil", b"x".to_vec())]);
    let err = unpack_layers(&[evil], &root2, false, &|| false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("leaves the image root"), "{err}");
    assert!(!d.path().join("evil").exists());

    // A hard link may not reach outside either.
    let root3 = d.path().join("root3");
    std::fs::create_dir(&root3).unwrap();
    let evil = layer(&[E::Hard("h", "../outside/x")]);
    assert!(unpack_layers(&[evil], &root3, false, &|| false).is_err());

    // A corrupted layer (digest mismatch) is refused.
    let mut bad = layer(&[E::File("f", 0o644, b"f".to_vec())]);
    bad.digest = Blob::from_bytes("x", b"other".to_vec()).digest;
    let root4 = d.path().join("root4");
    std::fs::create_dir(&root4).unwrap();
    let err = unpack_layers(&[bad], &root4, false, &|| false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match its digest"), "{err}");
}

#[test]
fn read_only_image_directories_are_cleaned_up() {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), true);
    let data = std::fs::read(&bin).unwrap();
    let img = image(
        vec![layer(&[
            E::Dir("app", 0o555),
            E::File("app/hello", 0o555, data),
            E::Dir("locked", 0o500),
            E::Dir("locked/deeper", 0o000),
        ])],
        serde_json::json!({"Entrypoint": ["/app/hello"], "User": "1000"}),
    );
    for iso in [Isolation::Auto, Isolation::Chroot] {
        let out = run(&img, &captured(iso, None, d.path())).unwrap();
        assert_eq!(
            out.status,
            Status::Exited(0),
            "{iso}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("distroless-pack-run-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_layer_with_one_flipped_byte_is_reported_as_corrupt_not_as_a_bad_tar_entry() {
    let d = tempfile::tempdir().unwrap();
    let good = layer(&[
        E::Dir("etc", 0o755),
        E::File("etc/data", 0o644, vec![7u8; 4096]),
    ]);
    let mut bytes = good.read_all().unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x55;
    let mut bad = Blob::from_bytes(MEDIA_TYPE_LAYER_GZIP, bytes);
    let actual = bad.digest.clone();
    bad.digest = good.digest.clone();
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let err = unpack_layers(&[bad], &root, false, &|| false).unwrap_err();
    assert!(matches!(err, RunError::Mismatch(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not match its digest"), "{text}");
    assert!(
        text.contains(good.digest.as_str()) && text.contains(actual.as_str()),
        "{text}"
    );
    assert!(
        !text.contains("bad tar entry") && !text.contains("deflate"),
        "{text}"
    );
}

/// Traced runs wait for their tracees with `__WNOTHREAD`: runs on other
/// threads of the same process (traced or not) keep their own children.
#[test]
fn traced_runs_in_parallel_threads_keep_their_own_children() {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), true);
    let img = hello_image(&bin, serde_json::json!({"Entrypoint": ["/app/hello"]}));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let img = img.clone();
            let temp = d.path().to_path_buf();
            std::thread::spawn(move || {
                let opts = RunOptions {
                    trace: i % 2 == 0,
                    ..captured(
                        if i < 2 {
                            Isolation::Bwrap
                        } else {
                            Isolation::Chroot
                        },
                        Some(strings(&["exit", &(10 + i).to_string()])),
                        &temp,
                    )
                };
                (i, run(&img, &opts).unwrap())
            })
        })
        .collect();
    for h in handles {
        let (i, o) = h.join().unwrap();
        assert_eq!(o.status, Status::Exited(10 + i), "run {i}");
        assert_eq!(o.trace.is_some(), i % 2 == 0);
        assert!(String::from_utf8_lossy(&o.stdout).contains("hello uid="));
    }
}

/// `layer`'s tar recompressed as zstd (what `pack --compression zstd` writes).
fn zstd_layer(entries: &[E<'_>]) -> Blob {
    let gz = layer(entries).read_all().unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
    Blob::from_bytes(distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD, zst)
}

#[test]
fn a_zstd_layer_is_unpacked_and_its_program_runs() {
    let d = tempfile::tempdir().unwrap();
    let bin = hello(d.path(), true);
    let data = std::fs::read(&bin).unwrap();
    let img = image(
        vec![
            zstd_layer(&[E::Dir("etc", 0o755), E::File("etc/x", 0o644, b"x".to_vec())]),
            zstd_layer(&[E::Dir("app", 0o755), E::File("app/hello", 0o755, data)]),
        ],
        serde_json::json!({"Entrypoint": ["/app/hello"], "Cmd": ["default"]}),
    );
    let temp = d.path().join("temp");
    std::fs::create_dir(&temp).unwrap();
    let out = run(&img, &captured(Isolation::Chroot, None, &temp)).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status, Status::Exited(0), "{text}");
    assert!(text.contains("arg=default\n"), "{text}");
}
