//! The layer cache (`pack`/`build` reuse compressed layers; `cache` shows
//! and prunes it): same digests with and without it, corrupt entries
//! rebuilt, the size bound, concurrent runs, and `build --push` twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::util::{both, dp, repo_root, require_tool, run, run_ok, tmp, write_file};

/// A musl-static hello, and the same with 12 MB of incompressible bytes
/// appended (still a valid static executable), built once per run.
fn fixtures() -> &'static (PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        require_tool("musl-gcc", "apt-get install -y musl-tools");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let src = write_file(
            &dir,
            "hello.c",
            b"#include <stdio.h>\nint main(void){puts(\"hello from the cache test\");return 0;}\n",
        );
        let hello = dir.join("hello");
        run_ok(
            Command::new("musl-gcc")
                .args(["-static", "-O2", "-o"])
                .arg(&hello)
                .arg(&src),
        );
        let mut big = std::fs::read(&hello).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(12 << 20) / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.extend_from_slice(&x.to_le_bytes());
        }
        let big_path = write_file(&dir, "big", &big);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&big_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (hello, big_path)
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pack` with `XDG_CACHE_HOME=home` (and `env`), checked for success.
#[track_caller]
fn pack(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = dp();
    c.env("XDG_CACHE_HOME", home).arg("pack").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(&mut c);
    assert!(out.status.success(), "{}", both(&out));
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The entries of the cache under `home`, as files.
fn entries(home: &Path) -> Vec<PathBuf> {
    let dir = home.join("distroless-pack/layers-v1");
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// The layer blob of the image tagged `tag` in the OCI layout `dir`.
fn layer_of(dir: &Path) -> Vec<u8> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(m)).unwrap()).unwrap();
    std::fs::read(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap()
}

#[test]
fn repack_of_an_unchanged_binary_comes_from_the_cache_with_the_same_digests() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let first = pack(
        &home,
        &[s(hello), "--output", &format!("oci:{}:1", a.display())],
        &[],
    );
    assert!(
        stderr(&first).contains("layer: stored in the cache"),
        "{}",
        both(&first)
    );
    assert_eq!(entries(&home).len(), 1);
    let second = pack(
        &home,
        &[s(hello), "--output", &format!("oci:{}:1", b.display())],
        &[],
    );
    assert!(
        stderr(&second).contains("layer: cached"),
        "{}",
        both(&second)
    );
    let uncached = pack(
        &home,
        &[
            s(hello),
            "--no-cache",
            "--output",
            &format!("oci:{}:1", c.display()),
        ],
        &[],
    );
    assert_eq!(stdout(&first), stdout(&second));
    assert_eq!(stdout(&first), stdout(&uncached));
    assert_eq!(layer_of(&a), layer_of(&b));
    assert_eq!(layer_of(&a), layer_of(&c));
    // The binary's bytes are the key, not its name or metadata.
    let copy = t.path().join("elsewhere/hello");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(hello, &copy).unwrap();
    let moved = pack(&home, &[s(&copy)], &[]);
    assert!(stderr(&moved).contains("layer: cached"), "{}", both(&moved));
    // A setting that changes the layer bytes is a miss, not a stale hit.
    let epoch = pack(&home, &[s(hello)], &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert!(
        stderr(&epoch).contains("layer: stored in the cache"),
        "{}",
        both(&epoch)
    );
    assert_ne!(stdout(&epoch), stdout(&first));
    let path = pack(&home, &[s(hello), "--path", "/bin/hello"], &[]);
    assert!(
        stderr(&path).contains("stored in the cache"),
        "{}",
        both(&path)
    );
    assert_eq!(entries(&home).len(), 3);
}

#[test]
fn no_cache_neither_reads_nor_writes_the_cache() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let out = pack(&home, &[s(hello), "--no-cache"], &[]);
    assert!(!home.exists(), "--no-cache created {}", home.display());
    assert!(!mentions_cache(&stderr(&out)), "{}", both(&out));
    // With an entry there (made corrupt, so a read would be seen): not read,
    // not touched, not replaced.
    pack(&home, &[s(hello)], &[]);
    let entry = entries(&home).remove(0);
    let mut bytes = std::fs::read(&entry).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = pack(&home, &[s(hello), "--no-cache"], &[]);
    assert!(!mentions_cache(&stderr(&out)), "{}", both(&out));
    assert_eq!(std::fs::read(&entry).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&entry).unwrap().modified().unwrap(), old);
    // `[cache] enabled = false` in a project file does the same for build
    // (settings precedence is unit-tested in pipeline::settings).
}

#[test]
fn a_corrupted_cache_entry_is_dropped_and_rebuilt_with_a_warning() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let good = stdout(&pack(&home, &[s(hello)], &[]));
    let entry = entries(&home).remove(0);
    let mut bytes = std::fs::read(&entry).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&entry, &bytes).unwrap();
    let out = pack(&home, &[s(hello)], &[]);
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("dropped a bad entry") && err.contains("rebuilt"),
        "{}",
        both(&out)
    );
    assert!(!err.contains("layer: cached"), "{}", both(&out));
    assert_eq!(stdout(&out), good);
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        bytes,
        "the entry was replaced"
    );
    let again = pack(&home, &[s(hello)], &[]);
    assert!(stderr(&again).contains("layer: cached"), "{}", both(&again));
    assert_eq!(stdout(&again), good);
}

#[test]
fn lru_eviction_keeps_the_cache_under_its_bound() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    pack(&home, &[s(hello), "--path", "/a/hello"], &[]);
    let one = std::fs::metadata(&entries(&home)[0]).unwrap().len();
    // Room for two entries, not three.
    let bound = (one * 5 / 2).to_string();
    let env = [("DISTROLESS_PACK_CACHE_MAX_SIZE", bound.as_str())];
    let hit =
        |p: &str| stderr(&pack(&home, &[s(hello), "--path", p], &env)).contains("layer: cached");
    assert!(!hit("/b/hello"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(
        hit("/a/hello"),
        "a is used again: b is now the least recent"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!hit("/c/hello"), "stores c and evicts b");
    assert_eq!(entries(&home).len(), 2);
    let total: u64 = entries(&home)
        .iter()
        .map(|e| std::fs::metadata(e).unwrap().len())
        .sum();
    assert!(total <= one * 5 / 2, "{total} bytes over the bound");
    assert!(hit("/a/hello"));
    assert!(hit("/c/hello"));
    assert!(!hit("/b/hello"), "b was evicted");
}

#[test]
fn cache_dir_ls_and_prune() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let cache = |args: &[&str]| run_ok(dp().env("XDG_CACHE_HOME", &home).arg("cache").args(args));
    assert_eq!(cache(&["dir"]).trim(), s(&home.join("distroless-pack")));
    assert!(cache(&["ls"]).contains("0 layers"));
    let digest_of_layer = |p: &str| {
        let d = t.path().join(p.trim_start_matches('/').replace('/', "-"));
        pack(
            &home,
            &[
                s(hello),
                "--path",
                p,
                "--output",
                &format!("oci:{}:1", d.display()),
            ],
            &[],
        );
        format!("sha256:{}", sha256_hex(&layer_of(&d)))
    };
    let a = digest_of_layer("/a/hello");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = digest_of_layer("/b/hello");
    let ls = cache(&["ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(
        lines[0].ends_with(&a) && lines[1].ends_with(&b),
        "least recent first:\n{ls}"
    );
    assert!(lines[2].starts_with("2 layers"), "{ls}");
    let one = std::fs::metadata(&entries(&home)[0]).unwrap().len();
    let pruned = cache(&["prune", "--max-size", &(one + one / 2).to_string()]);
    assert!(pruned.starts_with("removed 1 layer"), "{pruned}");
    assert!(
        cache(&["ls"]).lines().next().unwrap().ends_with(&b),
        "the older went"
    );
    let pruned = cache(&["prune", "--all"]);
    assert!(pruned.starts_with("removed 1 layer"), "{pruned}");
    assert!(entries(&home).is_empty());
    let out = run(dp()
        .env("XDG_CACHE_HOME", &home)
        .args(["cache", "prune", "--max-size", "lots"]));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

/// Whether a progress text says anything the layer cache did.
fn mentions_cache(err: &str) -> bool {
    err.contains("layer: ") || err.contains("layers: ") || err.contains("layer cache")
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn concurrent_packs_sharing_one_cache_agree_and_never_see_half_an_entry() {
    let (_, big) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let expected: Vec<String> = ["/a/big", "/b/big"]
        .iter()
        .map(|p| stdout(&pack(&home, &[s(big), "--no-cache", "--path", p], &[])))
        .collect();
    // A bound of about one entry: the runs evict each other's entries while
    // others read them.
    let bound = "14MB";
    for round in 0..2 {
        let children: Vec<(usize, std::process::Child, PathBuf)> = (0..6)
            .map(|i| {
                let out = t.path().join(format!("out-{round}-{i}"));
                let child = dp()
                    .env("XDG_CACHE_HOME", &home)
                    .env("DISTROLESS_PACK_CACHE_MAX_SIZE", bound)
                    .args(["pack", s(big), "--path", ["/a/big", "/b/big"][i % 2]])
                    .arg("--output")
                    .arg(format!("oci:{}:1", out.display()))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (i, child, out)
            })
            .collect();
        for (i, child, out) in children {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "run {i}: {}", both(&o));
            assert_eq!(stdout(&o), expected[i % 2], "run {i}: {}", both(&o));
            assert!(!stderr(&o).contains("warning"), "run {i}: {}", both(&o));
            // Every blob in the layout is what its name says.
            for e in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                assert_eq!(
                    sha256_hex(&std::fs::read(e.path()).unwrap()),
                    name,
                    "run {i}"
                );
            }
        }
    }
    assert!(
        std::fs::read_dir(home.join("distroless-pack/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "temp files left in the cache"
    );
}

#[test]
fn build_of_an_unchanged_project_pushed_twice_is_cached_and_uploads_nothing() {
    use crate::support::registry::{Auth, Registry};
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    require_tool("make", "apt-get install -y make");
    let reg = Registry::start(Auth::None);
    let t = tmp();
    let dir = t.path().join("c-hello");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["Makefile", "hello.c", "distroless-pack.toml"] {
        std::fs::copy(repo_root().join("images/c-hello").join(f), dir.join(f)).unwrap();
    }
    let home = t.path().join("xdg");
    let reference = reg.reference("cache/c-hello:1");
    let build = || {
        let out = run(dp()
            .env("XDG_CACHE_HOME", &home)
            .arg("build")
            .arg(&dir)
            .args(["--runner", "host", "--push", &reference]));
        assert!(out.status.success(), "{}", both(&out));
        out
    };
    let first = build();
    assert!(
        stderr(&first).contains("layer: stored in the cache"),
        "{}",
        both(&first)
    );
    let second = build();
    let err = stderr(&second);
    assert_eq!(stdout(&first), stdout(&second));
    assert!(
        err.contains("[ build]"),
        "each stage still says how long it took:\n{err}"
    );
    assert!(err.contains("layer: cached"), "{}", both(&second));
    let pushed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("[  push]") && l.contains(": sha256:"))
        .collect();
    assert!(pushed.len() >= 2, "config and layer lines: {err}");
    assert!(
        pushed.iter().all(|l| l.contains("already there")),
        "every blob skipped:\n{err}"
    );
    assert!(err.contains(", 0 B uploaded"), "{err}");
}

/// Unmounts a test mount when dropped (also when the test fails).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_cache_disk_still_packs_with_a_warning_and_the_same_digest() {
    let (_, big) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    std::fs::create_dir(&home).unwrap();
    // A 1 MiB tmpfs for the cache (the tests run as root, as CI does); the
    // 12 MB layer cannot fit.
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&home),
    );
    let _guard = Mount(home.clone());
    let expected = stdout(&pack(&t.path().join("other"), &[s(big), "--no-cache"], &[]));
    let out = pack(&home, &[s(big)], &[]);
    let err = stderr(&out);
    assert_eq!(stdout(&out), expected, "{}", both(&out));
    assert!(
        err.contains("warning")
            && err.contains("not stored")
            && err.contains("No space left on device"),
        "{}",
        both(&out)
    );
    assert!(entries(&home).is_empty());
    assert!(
        std::fs::read_dir(home.join("distroless-pack/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temp file left in the cache"
    );
}

#[test]
fn cache_enabled_false_in_the_project_file_turns_the_cache_off_for_build() {
    require_tool("musl-gcc", "apt-get install -y musl-tools");
    require_tool("make", "apt-get install -y make");
    let t = tmp();
    let dir = t.path().join("c-hello");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["Makefile", "hello.c", "distroless-pack.toml"] {
        std::fs::copy(repo_root().join("images/c-hello").join(f), dir.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(dir.join("distroless-pack.toml")).unwrap();
    std::fs::write(
        dir.join("distroless-pack.toml"),
        format!("{toml}\n[cache]\nenabled = false\n"),
    )
    .unwrap();
    let home = t.path().join("xdg");
    let out = run(dp()
        .env("XDG_CACHE_HOME", &home)
        .arg("build")
        .arg(&dir)
        .args(["--runner", "host"]));
    assert!(out.status.success(), "{}", both(&out));
    assert!(!mentions_cache(&stderr(&out)), "{}", both(&out));
    assert!(!home.exists(), "the cache was written: {}", home.display());
}

/// Every blob of the layout `dir`, by name, checked against its name.
fn blobs_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(sha256_hex(&bytes), name, "{}", e.path().display());
        out.insert(name, bytes);
    }
    out
}

/// skopeo sees `digest` in the layout `dir` (tag 1), and umoci unpacks the
/// program `hello` (its bytes) from it.
fn consumers_read(dir: &Path, digest: &str, hello: &Path) {
    let skopeo = require_tool("skopeo", "apt-get install -y skopeo");
    let info = run_ok(
        Command::new(skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:1", dir.display())),
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Digest"], digest, "{}", dir.display());
    let umoci = require_tool("umoci", "apt-get install -y umoci");
    let bundle = dir.with_extension("bundle");
    run_ok(
        Command::new(umoci)
            .args(["unpack", "--image"])
            .arg(format!("{}:1", dir.display()))
            .arg(&bundle),
    );
    let name = hello.file_name().unwrap();
    assert_eq!(
        std::fs::read(bundle.join("rootfs/app").join(name)).unwrap(),
        std::fs::read(hello).unwrap(),
        "{}",
        dir.display()
    );
}

#[test]
fn layouts_from_a_cached_and_a_fresh_layer_hold_identical_blobs_read_by_skopeo_and_umoci() {
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let out = |n: &str| t.path().join(n);
    let to = |p: &Path| format!("oci:{}:1", p.display());
    // A fresh layer (a temp file: linked into the layout), the first pack
    // (the layer written into the cache: the entry's region copied), the
    // re-pack (a hit: copied again from the entry).
    let fresh = pack(
        &home,
        &[s(hello), "--no-cache", "--output", &to(&out("fresh"))],
        &[],
    );
    let first = pack(&home, &[s(hello), "--output", &to(&out("first"))], &[]);
    let cached = pack(&home, &[s(hello), "--output", &to(&out("cached"))], &[]);
    assert!(
        stderr(&cached).contains("layer: cached"),
        "{}",
        both(&cached)
    );
    let digest = stdout(&fresh);
    assert_eq!(stdout(&first), digest);
    assert_eq!(stdout(&cached), digest);
    let blobs = blobs_of(&out("fresh"));
    let layer = layer_of(&out("fresh"));
    assert!(blobs.contains_key(&sha256_hex(&layer)));
    assert!(layer.len() > 4096, "a layer of the 24 KiB program");
    assert_eq!(blobs_of(&out("first")), blobs);
    assert_eq!(blobs_of(&out("cached")), blobs);
    for n in ["fresh", "first", "cached"] {
        consumers_read(&out(n), &digest, hello);
    }

    // The layout's layer is not the cache entry: writing over it in place
    // leaves the entry whole, and the next pack still hits it.
    let entry = entries(&home);
    assert_eq!(entry.len(), 1);
    let before = std::fs::read(&entry[0]).unwrap();
    let layer_path = out("cached").join("blobs/sha256").join(sha256_hex(&layer));
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&layer_path)
            .unwrap();
        f.write_all(&vec![0u8; layer.len().min(4096)]).unwrap();
    }
    assert_eq!(std::fs::read(&entry[0]).unwrap(), before);
    let again = pack(&home, &[s(hello), "--output", &to(&out("again"))], &[]);
    assert!(stderr(&again).contains("layer: cached"), "{}", both(&again));
    assert!(!stderr(&again).contains("warning"), "{}", both(&again));
    assert_eq!(blobs_of(&out("again")), blobs);
}

#[test]
fn a_layout_on_another_filesystem_gets_the_same_bytes_from_a_fresh_and_a_cached_layer() {
    // /dev/shm is tmpfs: the temp layer and the cache (on the test's temp
    // dir) cannot be linked or kernel-copied there, so the copy fallback
    // writes it.
    assert!(
        Path::new("/dev/shm").is_dir(),
        "/dev/shm (tmpfs) is needed: mount a tmpfs there"
    );
    let (hello, _) = fixtures();
    let t = tmp();
    let home = t.path().join("xdg");
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let to = |p: &Path| format!("oci:{}:1", p.display());
    let here = t.path().join("here");
    let (fresh, cold, cached) = (
        shm.path().join("fresh"),
        shm.path().join("cold"),
        shm.path().join("cached"),
    );
    let d0 = stdout(&pack(
        &home,
        &[s(hello), "--no-cache", "--output", &to(&here)],
        &[],
    ));
    let d1 = stdout(&pack(
        &home,
        &[s(hello), "--no-cache", "--output", &to(&fresh)],
        &[],
    ));
    let d2 = stdout(&pack(&home, &[s(hello), "--output", &to(&cold)], &[]));
    let o3 = pack(&home, &[s(hello), "--output", &to(&cached)], &[]);
    assert!(stderr(&o3).contains("layer: cached"), "{}", both(&o3));
    assert_eq!(d1, d0);
    assert_eq!(d2, d0);
    assert_eq!(stdout(&o3), d0);
    let blobs = blobs_of(&here);
    for dir in [&fresh, &cold, &cached] {
        assert_eq!(blobs_of(dir), blobs, "{}", dir.display());
    }
    consumers_read(&cached, &d0, hello);
    consumers_read(&fresh, &d0, hello);
}
