//! Layers are gzip streams of several members (one per 1 MiB chunk,
//! crates/assemble/src/gzip.rs). Every consumer must inflate all of them,
//! not only the first: each test packs a binary of several chunks, checks
//! that its layer really has several members, and hands it to one real
//! reader: Go's compress/gzip, containerd, docker, podman, skopeo, umoci.
//! A reader that stopped after the first member would see a short tar and a
//! wrong diff_id.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{corpus, engines};
use crate::util::{both, dp, require_tool, run, run_ok, tmp, write_file};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bytes appended to the static hello: 3.5 MB, so the layer has four
/// members (chunks of 1 MiB) and a short last one.
const PADDING: usize = 3_500_000;

/// The fixtures' folder (kept between runs under target/tmp).
fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gzip-members");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The musl static hello with PADDING bytes of text-like data after its
/// end: it still runs (the kernel maps only its segments) and prints
/// corpus::HELLO, and its layer spans several gzip members.
fn big_hello() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut bytes = std::fs::read(corpus::musl_static_hello()).unwrap();
        let mut x: u32 = 12345;
        bytes.extend((0..PADDING).map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            b'a' + (x >> 24) as u8 % 16
        }));
        let path = fixture_dir().join("big-hello");
        let tmp = fixture_dir().join(format!("big-hello.{}", std::process::id()));
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    })
}

/// `pack big-hello --tag TAG --output OUTPUT`, asserting success.
fn pack(tag: &str, output: &str) {
    run_ok(
        dp().arg("pack")
            .arg(big_hello())
            .args(["--tag", tag, "--output", output]),
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// The layer blob and the config's diff_id of the one image in `layout`.
fn layer_of(layout: &Path) -> (PathBuf, String) {
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = read_json(&blob(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{manifest}"
    );
    (
        blob(layout, layers[0]["digest"].as_str().unwrap()),
        config["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// Number of gzip members of `gz`, read one at a time with a
/// single-member decoder.
fn members(gz: &Path) -> usize {
    let mut r = BufReader::new(std::fs::File::open(gz).unwrap());
    let mut n = 0;
    while !r.fill_buf().unwrap().is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(r);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        r = d.into_inner();
        n += 1;
    }
    n
}

/// Packs the big hello into an OCI layout under `dir` and asserts its
/// layer has several members; returns the layout, layer and diff_id.
fn multi_member_layout(dir: &Path) -> (PathBuf, PathBuf, String) {
    let layout = dir.join("layout");
    pack("members:1", &format!("oci:{}:1", s(&layout)));
    let (layer, diff_id) = layer_of(&layout);
    let n = members(&layer);
    assert_eq!(
        n,
        PADDING.div_ceil(1 << 20),
        "members of {}",
        layer.display()
    );
    (layout, layer, diff_id)
}

fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    std::io::copy(&mut f, &mut h).unwrap();
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[track_caller]
fn assert_same_file(got: &Path, want: &Path) {
    let (a, b) = (std::fs::read(got).unwrap(), std::fs::read(want).unwrap());
    assert!(
        a == b,
        "{} ({} bytes) differs from {} ({} bytes)",
        got.display(),
        a.len(),
        want.display(),
        b.len()
    );
}

// ---------------------------------------------------------------- Go

const GZCHECK_GO: &str = r#"package main

// gzcheck FILE: reads FILE with compress/gzip, member by member, and prints
// "members N size BYTES sha256:HEX" of the whole inflated stream.

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

import "compress/gzip"

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := bufio.NewReader(f)
	h := sha256.New()
	zr, err := gzip.NewReader(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	members, size := 0, int64(0)
	for {
		zr.Multistream(false)
		n, err := io.Copy(h, zr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "member", members, err)
			os.Exit(1)
		}
		members++
		size += n
		if err := zr.Reset(r); err == io.EOF {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "member", members, err)
			os.Exit(1)
		}
	}
	fmt.Printf("members %d size %d sha256:%x\n", members, size, h.Sum(nil))

	// The default reader (Multistream on) must give the same stream.
	f.Seek(0, 0)
	all, err := gzip.NewReader(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h2 := sha256.New()
	if _, err := io.Copy(h2, all); err != nil {
		fmt.Fprintln(os.Stderr, "multistream:", err)
		os.Exit(1)
	}
	fmt.Printf("multistream sha256:%x\n", h2.Sum(nil))
}
"#;

/// The gzcheck tool, built once with Debian's go, offline.
fn gzcheck() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let go = require_tool("go", "apt-get install -y golang-go");
        let dir = fixture_dir().join("gzcheck-src");
        write_file(&dir, "main.go", GZCHECK_GO.as_bytes());
        write_file(&dir, "go.mod", b"module gzcheck\n\ngo 1.19\n");
        let out = fixture_dir().join("gzcheck");
        run_ok(
            Command::new(go)
                .current_dir(&dir)
                .env("CGO_ENABLED", "0")
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .env("GOTOOLCHAIN", "local")
                .env("GOCACHE", fixture_dir().join("go-build"))
                .env("GOPATH", fixture_dir().join("gopath"))
                .args(["build", "-trimpath", "-buildvcs=false", "-o"])
                .arg(&out)
                .arg("."),
        );
        out
    })
}

#[test]
fn go_compress_gzip_reads_every_member_of_a_layer() {
    let t = tmp();
    let (_, layer, diff_id) = multi_member_layout(t.path());
    let out = run_ok(Command::new(gzcheck()).arg(&layer));
    let want = format!(
        "members {} size {} {diff_id}\nmultistream {diff_id}\n",
        members(&layer),
        big_tar_size()
    );
    assert_eq!(out, want);
}

/// Size of the layer's tar: the directory /app, the file, their 512-byte
/// headers, the padding to 512 and the two zero blocks at the end.
fn big_tar_size() -> u64 {
    let len = std::fs::metadata(big_hello()).unwrap().len();
    512 + 512 + len.div_ceil(512) * 512 + 1024
}

// ---------------------------------------------------------------- containerd

/// A private containerd (its own root, state and socket under a temp dir),
/// stopped when dropped.
struct Containerd {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let bin = require_tool("containerd", "apt-get install -y containerd");
        require_tool("ctr", "apt-get install -y containerd");
        require_tool("runc", "apt-get install -y runc");
        let dir = tempfile::Builder::new()
            .prefix("dp-containerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let socket = dir.path().join("containerd.sock");
        let config = write_file(
            dir.path(),
            "config.toml",
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{}\"\n",
                s(&dir.path().join("root")),
                s(&dir.path().join("state")),
                s(&socket)
            )
            .as_bytes(),
        );
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if run(c.ctr().arg("version")).status.success() {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer on {} within 60 s; its log:\n{}",
                c.socket.display(),
                std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ctr` talking to this containerd, in namespace `dp-test`.
    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "dp-test"])
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_imports_unpacks_and_runs_a_multi_member_layer() {
    let t = tmp();
    multi_member_layout(t.path());
    let archive = t.path().join("members.oci.tar");
    pack("members:1", &format!("oci-archive:{}", s(&archive)));
    let ctd = Containerd::start();
    // Import unpacks the layer into the snapshotter, checking the inflated
    // stream against the config's diff_id.
    let out = run_ok(
        ctd.ctr()
            .args(["images", "import", "--snapshotter", "native"])
            .arg(&archive),
    );
    assert!(out.contains("unpacking members:1"), "{out}");
    // The unpacked file is the binary, byte for byte.
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run_ok(
        ctd.ctr()
            .args(["images", "mount", "--snapshotter", "native", "members:1"])
            .arg(&mnt),
    );
    let same =
        std::fs::read(mnt.join("app/big-hello")).map(|b| b == std::fs::read(big_hello()).unwrap());
    run_ok(ctd.ctr().args(["images", "unmount"]).arg(&mnt));
    assert!(
        matches!(same, Ok(true)),
        "/app/big-hello after unpack: {same:?}"
    );
    // And it runs.
    let out = run(ctd.ctr().args([
        "run",
        "--rm",
        "--snapshotter",
        "native",
        "members:1",
        "dp-members",
    ]));
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

// ---------------------------------------------------------------- docker, podman

#[test]
fn docker_loads_and_runs_a_multi_member_layer() {
    let docker = engines::docker();
    let t = tmp();
    let (_, _, diff_id) = multi_member_layout(t.path());
    let archive = t.path().join("members.docker.tar");
    pack(
        "gzip-members-docker:1",
        &format!("docker-archive:{}", s(&archive)),
    );
    let out = docker.run_ok(&["load", "-i", s(&archive)]);
    assert!(out.contains("Loaded image: gzip-members-docker:1"), "{out}");
    // docker inflated every member: its layer's digest is our diff_id.
    let layers = docker.run_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "gzip-members-docker:1",
    ]);
    assert_eq!(layers.trim(), format!("[\"{diff_id}\"]"));
    let out = docker.output(&[
        "run",
        "--rm",
        "--pull=never",
        "--network=none",
        "gzip-members-docker:1",
    ]);
    docker.remove_image("gzip-members-docker:1");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

#[test]
fn podman_loads_and_runs_a_multi_member_layer() {
    let podman = engines::podman();
    let t = tmp();
    let (_, _, diff_id) = multi_member_layout(t.path());
    let archive = t.path().join("members.oci.tar");
    pack(
        "gzip-members-podman:1",
        &format!("oci-archive:{}", s(&archive)),
    );
    let out = podman.run_ok(&["load", "-i", s(&archive)]);
    assert!(out.contains("Loaded image"), "{out}");
    let name = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or(l.strip_prefix("Loaded image(s): "))
        })
        .unwrap_or_else(|| panic!("podman load named no image: {out}"))
        .trim()
        .to_string();
    let layers = podman.run_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &name,
    ]);
    assert_eq!(layers.trim(), format!("[\"{diff_id}\"]"));
    let out = podman.output(&["run", "--rm", "--pull=never", "--network=none", &name]);
    podman.remove_image(&name);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
}

// ---------------------------------------------------------------- skopeo, umoci

#[test]
fn skopeo_copy_inflates_a_multi_member_layer_to_its_diff_id() {
    let skopeo = require_tool("skopeo", "apt-get install -y skopeo");
    let t = tmp();
    let (layout, _, diff_id) = multi_member_layout(t.path());
    // dir: with --dest-decompress stores the inflated tar under its own
    // digest, which must be the diff_id.
    let dir = t.path().join("dir");
    run_ok(
        Command::new(&skopeo)
            .args(["copy", "-q", "--dest-decompress"])
            .arg(format!("oci:{}:1", s(&layout)))
            .arg(format!("dir:{}", s(&dir))),
    );
    let manifest = read_json(&dir.join("manifest.json"));
    let layer = &manifest["layers"][0];
    assert_eq!(layer["digest"], diff_id.as_str(), "{manifest}");
    let tar = dir.join(diff_id.strip_prefix("sha256:").unwrap());
    assert_eq!(sha256_file(&tar), diff_id);
    assert_eq!(std::fs::metadata(&tar).unwrap().len(), big_tar_size());
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&root),
    );
    assert_same_file(&root.join("app/big-hello"), big_hello());
    // docker-archive: holds uncompressed layers: skopeo inflates and names
    // the layer by its digest too.
    let archive = t.path().join("copy.docker.tar");
    run_ok(
        Command::new(&skopeo)
            .args(["copy", "-q"])
            .arg(format!("oci:{}:1", s(&layout)))
            .arg(format!("docker-archive:{}:members:1", s(&archive))),
    );
    let listing = run_ok(Command::new("tar").arg("-tf").arg(&archive));
    let name = format!("{}.tar", diff_id.strip_prefix("sha256:").unwrap());
    assert!(
        listing.lines().any(|l| l == name),
        "no {name} in:\n{listing}"
    );
}

#[test]
fn umoci_unpacks_a_multi_member_layer() {
    let umoci = require_tool("umoci", "apt-get install -y umoci");
    let t = tmp();
    let (layout, _, _) = multi_member_layout(t.path());
    let bundle = t.path().join("bundle");
    run_ok(
        Command::new(umoci)
            .args(["unpack", "--image"])
            .arg(format!("{}:1", s(&layout)))
            .arg(&bundle),
    );
    assert_same_file(&bundle.join("rootfs/app/big-hello"), big_hello());
}
