//! Every format writes the same artifact and reads it back unchanged
//! (same digests, same bytes), with the layout guarantees of docs/outputs.md.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use distroless_pack_image::{
    spec::ImageConfiguration, Artifact, Blob, Image, Index, Platform, MEDIA_TYPE_LAYER_GZIP,
};
use distroless_pack_ship::{list_layer, read, write_sink, ShipError, Sink, WriteOptions};

fn layer(files: &[(&str, &[u8], u32)]) -> Blob {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw).unwrap();
    Blob::from_bytes(MEDIA_TYPE_LAYER_GZIP, gz.finish().unwrap())
}

fn image(arch: &str, text: &str) -> Image {
    let l = layer(&[("app/hello", text.as_bytes(), 0o755)]);
    let diff = {
        let gz = l.read_all().unwrap();
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        distroless_pack_image::Digest::sha256_of(&v)
    };
    let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": ["/app/hello"], "User": "65532:65532", "Env": ["A=b"]},
        "rootfs": {"type": "layers", "diff_ids": [diff.as_str()]},
        "created": "1970-01-01T00:00:00Z",
    }))
    .unwrap();
    Image::new(&config, vec![l], &BTreeMap::new()).unwrap()
}

fn opts(name: &str) -> WriteOptions {
    WriteOptions {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn sink(s: String) -> Sink {
    s.parse().unwrap()
}

fn same(a: &Artifact, b: &Artifact) {
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.images().len(), b.images().len());
    for (x, y) in a.images().iter().zip(b.images()) {
        assert_eq!(x.digest(), y.digest());
        assert_eq!(x.config.read_all().unwrap(), y.config.read_all().unwrap());
        for (l, m) in x.layers.iter().zip(&y.layers) {
            assert_eq!(l.digest, m.digest);
            assert_eq!(l.read_all().unwrap(), m.read_all().unwrap());
            m.verify().unwrap();
        }
    }
}

#[test]
fn every_sink_round_trips_an_image() {
    let d = tempfile::tempdir().unwrap();
    let a = Artifact::Image(image("amd64", "hello"));
    for s in [
        "oci:{}/lay",
        "oci:{}/lay2:v1",
        "oci-archive:{}/a.tar",
        "docker-archive:{}/d.tar",
    ] {
        let s = sink(s.replace("{}", d.path().to_str().unwrap()));
        write_sink(&a, &s, &opts("hello:latest")).unwrap();
        same(&a, &read(&s).unwrap());
    }
}

#[test]
fn archives_are_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let a = Artifact::Image(image("amd64", "hello"));
    for kind in ["oci-archive", "docker-archive"] {
        let p1 = d.path().join(format!("{kind}1.tar"));
        let p2 = d.path().join(format!("{kind}2.tar"));
        write_sink(
            &a,
            &sink(format!("{kind}:{}", p1.display())),
            &opts("hello:1"),
        )
        .unwrap();
        write_sink(
            &a,
            &sink(format!("{kind}:{}", p2.display())),
            &opts("hello:1"),
        )
        .unwrap();
        assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap());
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp-")),
            "temp file left: {names:?}"
        );
    }
}

#[test]
fn layout_keeps_other_tags_and_replaces_the_same_tag() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("lay");
    let one = Artifact::Image(image("amd64", "one"));
    let two = Artifact::Image(image("amd64", "two"));
    let three = Artifact::Image(image("amd64", "three"));
    write_sink(
        &one,
        &sink(format!("oci:{}:v1", dir.display())),
        &WriteOptions::default(),
    )
    .unwrap();
    write_sink(
        &two,
        &sink(format!("oci:{}", dir.display())),
        &opts("x/hello:v2"),
    )
    .unwrap();
    assert_eq!(
        distroless_pack_ship::layout::layout_tags(&dir).unwrap(),
        vec!["v1", "v2"]
    );
    same(
        &one,
        &read(&sink(format!("oci:{}:v1", dir.display()))).unwrap(),
    );
    same(
        &two,
        &read(&sink(format!("oci:{}:v2", dir.display()))).unwrap(),
    );
    write_sink(
        &three,
        &sink(format!("oci:{}:v1", dir.display())),
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(
        distroless_pack_ship::layout::layout_tags(&dir).unwrap(),
        vec!["v2", "v1"]
    );
    same(
        &three,
        &read(&sink(format!("oci:{}:v1", dir.display()))).unwrap(),
    );
    // No tag and several images: the error lists them.
    let e = read(&sink(format!("oci:{}", dir.display())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("v2, v1") && e.contains("holds 2 images"), "{e}");
    let e = read(&sink(format!("oci:{}:nope", dir.display())))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no image tagged \"nope\"") && e.contains("v2, v1"),
        "{e}"
    );
    // The full name is recorded for containerd/podman.
    let idx = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(
        idx.contains(r#""io.containerd.image.name":"x/hello:v2""#),
        "{idx}"
    );
}

#[test]
fn refuses_a_directory_that_is_not_a_layout() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
    let a = Artifact::Image(image("amd64", "hello"));
    let e = write_sink(
        &a,
        &sink(format!("oci:{}", d.path().display())),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ShipError::NotALayout { .. }), "{e}");
    assert!(e.to_string().contains("is not an OCI image layout"), "{e}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    let f = d.path().join("notes.txt");
    let e = write_sink(
        &a,
        &sink(format!("oci:{}", f.display())),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn a_failed_write_leaves_the_existing_layout_intact() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("lay");
    let one = Artifact::Image(image("amd64", "one"));
    write_sink(
        &one,
        &sink(format!("oci:{}:v1", dir.display())),
        &WriteOptions::default(),
    )
    .unwrap();
    let before = snapshot(&dir);
    // A directory where the new layer must go makes the rename fail midway.
    let two = image("amd64", "two");
    std::fs::create_dir_all(
        dir.join("blobs/sha256")
            .join(two.layers[0].digest.hex())
            .join("x"),
    )
    .unwrap();
    let e = write_sink(
        &Artifact::Image(two),
        &sink(format!("oci:{}:v2", dir.display())),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
    // Every file is still there, unchanged (a blob written before the
    // failure may be added: unreferenced, harmless).
    let after = snapshot(&dir);
    for (name, bytes) in &before {
        assert!(after.get(name) == Some(bytes), "{name} changed or vanished");
    }
    let names: Vec<_> = after.keys().collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp-")),
        "temp file left: {names:?}"
    );
    same(
        &one,
        &read(&sink(format!("oci:{}:v1", dir.display()))).unwrap(),
    );
}

#[test]
fn a_failed_archive_write_keeps_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.tar");
    std::fs::write(&p, b"old").unwrap();
    let mut img = image("amd64", "hello");
    // A blob whose bytes do not match its size: the write fails mid-stream.
    img.layers[0].size += 10;
    let e = write_sink(
        &Artifact::Image(img),
        &sink(format!("oci-archive:{}", p.display())),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("a.tar"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "temp file left behind"
    );
}

#[test]
fn an_index_goes_to_oci_sinks_and_one_platform_to_docker_archive() {
    let d = tempfile::tempdir().unwrap();
    let idx = Artifact::Index(
        Index::new(
            vec![image("amd64", "a"), image("arm64", "b")],
            &BTreeMap::new(),
        )
        .unwrap(),
    );
    for s in [
        format!("oci:{}/lay", d.path().display()),
        format!("oci-archive:{}/a.tar", d.path().display()),
    ] {
        write_sink(&idx, &sink(s.clone()), &opts("multi:1")).unwrap();
        let back = read(&sink(s)).unwrap();
        assert!(matches!(back, Artifact::Index(_)));
        same(&idx, &back);
    }
    let da = sink(format!("docker-archive:{}/d.tar", d.path().display()));
    let e = write_sink(&idx, &da, &opts("multi:1"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux/amd64, linux/arm64") && e.contains("--platform"),
        "{e}"
    );
    let o = WriteOptions {
        name: Some("multi:1".into()),
        platform: Some(Platform::linux("arm64")),
        ..Default::default()
    };
    write_sink(&idx, &da, &o).unwrap();
    let back = read(&da).unwrap();
    assert_eq!(back.digest(), idx.images()[1].digest());
}

#[test]
fn docker_archive_has_a_manifest_json_docker_20_can_load() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("d.tar");
    let img = image("amd64", "hello");
    write_sink(
        &Artifact::Image(img.clone()),
        &sink(format!("docker-archive:{}", p.display())),
        &opts("hello"),
    )
    .unwrap();
    let mut ar = tar::Archive::new(std::fs::File::open(&p).unwrap());
    let mut names = Vec::new();
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        assert_eq!(
            (e.header().mtime().unwrap(), e.header().uid().unwrap()),
            (0, 0)
        );
        if name == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(s);
        }
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let m: serde_json::Value = serde_json::from_str(&manifest.unwrap()).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "hello:latest");
    assert_eq!(
        m[0]["Config"],
        format!("blobs/sha256/{}", img.config.digest.hex())
    );
    assert_eq!(
        m[0]["Layers"][0],
        format!("blobs/sha256/{}", img.layers[0].digest.hex())
    );
    assert!(names.contains(&"oci-layout".to_string()) && names.contains(&"index.json".to_string()));
}

#[test]
fn reads_a_plain_docker_save_tar() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("save.tar");
    // Uncompressed layer, docker save layout.
    let mut lt = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    lt.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
    let layer_bytes = lt.into_inner().unwrap();
    let diff = distroless_pack_image::Digest::sha256_of(&layer_bytes);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff.as_str()]}, "container_config": {"Hostname": "x"}
    }))
    .unwrap();
    let cdig = distroless_pack_image::Digest::sha256_of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{}.json", cdig.hex()), "RepoTags": ["old:1"], "Layers": ["abc/layer.tar", "def/layer.tar"]
    }]))
    .unwrap();
    let mut t = tar::Builder::new(std::fs::File::create(&p).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", &manifest);
    add(&format!("{}.json", cdig.hex()), &config);
    add("abc/layer.tar", &layer_bytes);
    // docker save links identical layers.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    t.append_link(&mut h, "def/layer.tar", "../abc/layer.tar")
        .unwrap();
    t.finish().unwrap();
    drop(t);

    let a = read(&sink(format!("docker-archive:{}", p.display()))).unwrap();
    let img = &a.images()[0];
    assert_eq!(img.config.digest, cdig);
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0].digest, diff);
    assert_eq!(img.layers[1].digest, diff);
    assert_eq!(
        img.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    let entries = list_layer(&img.layers[0]).unwrap();
    assert_eq!(entries[0].path, "/hello");
    // And it can be written on as an OCI layout.
    let out = sink(format!("oci:{}/lay", d.path().display()));
    write_sink(&a, &out, &WriteOptions::default()).unwrap();
    same(&a, &read(&out).unwrap());
}

#[test]
fn lists_layer_entries() {
    let l = layer(&[
        ("app/hello", b"12345", 0o755),
        ("etc/passwd", b"root", 0o644),
    ]);
    let e = list_layer(&l).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].path.as_str(), e[0].mode, e[0].size, e[0].kind),
        ("/app/hello", 0o755, 5, "file")
    );
    assert_eq!(
        (e[1].path.as_str(), e[1].mode, e[1].size),
        ("/etc/passwd", 0o644, 4)
    );
}

#[test]
fn zstd_layers_are_listed_kept_through_every_sink_and_typed_in_docker_save_tars() {
    let d = tempfile::tempdir().unwrap();
    let mut lt = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    lt.append_data(&mut h, "app/hello", &b"12345"[..]).unwrap();
    let raw = lt.into_inner().unwrap();
    let zst = zstd::stream::encode_all(&raw[..], 3).unwrap();
    let l = Blob::from_bytes(distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD, zst.clone());
    let e = list_layer(&l).unwrap();
    assert_eq!(
        (e[0].path.as_str(), e[0].mode, e[0].size),
        ("/app/hello", 0o755, 5)
    );
    // An OCI layout and archive keep the layer and its media type.
    let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [distroless_pack_image::Digest::sha256_of(&raw).as_str()]},
    }))
    .unwrap();
    let a = Artifact::Image(Image::new(&config, vec![l], &BTreeMap::new()).unwrap());
    for s in ["oci:{}/lay", "oci-archive:{}/a.tar"] {
        let s = sink(s.replace("{}", d.path().to_str().unwrap()));
        write_sink(&a, &s, &opts("z:1")).unwrap();
        let back = read(&s).unwrap();
        same(&a, &back);
        assert_eq!(
            back.images()[0].layers[0].media_type,
            distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD
        );
    }
    // A docker-save style tar (manifest.json only) with a zstd layer file:
    // the layer is typed by its magic bytes.
    let p = d.path().join("save.tar");
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    let cdig = distroless_pack_image::Digest::sha256_of(&cfg);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("{}.json", cdig.hex()), "RepoTags": ["z:1"], "Layers": ["abc/layer.tar"]
    }]))
    .unwrap();
    let mut t = tar::Builder::new(std::fs::File::create(&p).unwrap());
    for (name, data) in [
        ("manifest.json", &manifest[..]),
        (&format!("{}.json", cdig.hex())[..], &cfg[..]),
        ("abc/layer.tar", &zst[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, name, data).unwrap();
    }
    t.finish().unwrap();
    drop(t);
    let a = read(&sink(format!("docker-archive:{}", p.display()))).unwrap();
    let layer = &a.images()[0].layers[0];
    assert_eq!(
        layer.media_type,
        distroless_pack_image::MEDIA_TYPE_LAYER_ZSTD
    );
    assert_eq!(list_layer(layer).unwrap()[0].path, "/app/hello");
}

#[test]
fn bad_sources_give_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar at all, not at all").unwrap();
    for s in [
        format!("oci-archive:{}", junk.display()),
        format!("docker-archive:{}", junk.display()),
        format!("oci:{}", d.path().display()),
        format!("oci:{}/missing", d.path().display()),
        format!("oci-archive:{}/missing.tar", d.path().display()),
    ] {
        let e = read(&sink(s.clone())).unwrap_err().to_string();
        assert!(
            !e.contains('\n') && e.contains(d.path().to_str().unwrap()),
            "{s}: {e}"
        );
    }
}
