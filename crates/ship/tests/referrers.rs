//! Referrers (artifacts attached to an image) in OCI layouts and archives:
//! written beside the image, found again by the readers, never changing a
//! digest, and left out of docker archives.

use std::collections::BTreeMap;
use std::path::Path;

use distroless_pack_image::{
    spec::ImageConfiguration, Artifact, Blob, Image, Index, Referrer, MEDIA_TYPE_LAYER_GZIP,
};
use distroless_pack_ship::{read, write_sink, Sink, WriteOptions};

fn image(arch: &str) -> Image {
    let layer = Blob::from_bytes(MEDIA_TYPE_LAYER_GZIP, format!("layer-{arch}").into_bytes());
    let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [distroless_pack_image::Digest::sha256_of(arch.as_bytes()).as_str()]},
    }))
    .unwrap();
    Image::new(&config, vec![layer], &BTreeMap::new()).unwrap()
}

fn attached(mut img: Image, text: &str) -> Image {
    let payload = Blob::from_bytes("application/spdx+json", text.as_bytes().to_vec());
    let r = Referrer::new(&img, "application/spdx+json", payload, &BTreeMap::new()).unwrap();
    img.attach(r).unwrap();
    img
}

fn sink(s: String) -> Sink {
    s.parse().unwrap()
}

fn opts() -> WriteOptions {
    WriteOptions {
        name: Some("hello:1".into()),
        ..Default::default()
    }
}

fn index_json_entries(dir: &Path) -> usize {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    v["manifests"].as_array().unwrap().len()
}

fn check_back(written: &Artifact, back: &Artifact) {
    assert_eq!(back.digest(), written.digest());
    for (a, b) in written.images().iter().zip(back.images()) {
        assert_eq!(a.digest(), b.digest());
        let want: Vec<_> = a.referrers.iter().map(|r| r.digest().clone()).collect();
        let got: Vec<_> = b.referrers.iter().map(|r| r.digest().clone()).collect();
        assert_eq!(got, want, "referrers of {}", a.platform);
        for (r, s) in a.referrers.iter().zip(&b.referrers) {
            assert_eq!(s.artifact_type, r.artifact_type);
            assert_eq!(s.subject.digest, *a.digest());
            assert_eq!(
                s.layers[0].read_all().unwrap(),
                r.layers[0].read_all().unwrap()
            );
            s.layers[0].verify().unwrap();
        }
    }
}

#[test]
fn a_layout_keeps_referrers_out_of_index_json_and_reads_them_back() {
    let t = tempfile::tempdir().unwrap();
    let plain = image("amd64");
    let img = attached(plain.clone(), "sbom-a");
    assert_eq!(img.digest(), plain.digest());
    let a = Artifact::Image(img);
    let dir = t.path().join("lay");
    write_sink(&a, &sink(format!("oci:{}", dir.display())), &opts()).unwrap();
    // one manifest listed: skopeo's `oci:DIR` (no tag) still reads it
    assert_eq!(index_json_entries(&dir), 1);
    for src in [
        format!("oci:{}", dir.display()),
        format!("oci:{}:1", dir.display()),
    ] {
        check_back(&a, &read(&sink(src)).unwrap());
    }
    // the same image written without its referrers has the same digests
    let d2 = t.path().join("plain");
    write_sink(
        &Artifact::Image(plain),
        &sink(format!("oci:{}", d2.display())),
        &opts(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.join("index.json")).unwrap(),
        std::fs::read(d2.join("index.json")).unwrap()
    );
}

#[test]
fn an_index_keeps_one_set_of_referrers_per_platform_image() {
    let t = tempfile::tempdir().unwrap();
    let plain = Index::new(vec![image("amd64"), image("arm64")], &BTreeMap::new()).unwrap();
    let x = Index::new(
        vec![
            attached(image("amd64"), "sbom-amd64"),
            attached(image("arm64"), "sbom-arm64"),
        ],
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(x.digest(), plain.digest());
    let a = Artifact::Index(x);
    for s in [
        format!("oci:{}", t.path().join("lay").display()),
        format!("oci-archive:{}", t.path().join("a.tar").display()),
    ] {
        write_sink(&a, &sink(s.clone()), &opts()).unwrap();
        let back = read(&sink(s)).unwrap();
        check_back(&a, &back);
        assert_eq!(back.referrers().count(), 2);
    }
}

#[test]
fn a_round_trip_through_a_second_layout_keeps_the_referrers() {
    let t = tempfile::tempdir().unwrap();
    let img = attached(attached(image("amd64"), "one"), "two");
    assert_eq!(img.referrers.len(), 2);
    let a = Artifact::Image(img);
    let first = sink(format!("oci-archive:{}", t.path().join("a.tar").display()));
    write_sink(&a, &first, &opts()).unwrap();
    let back = read(&first).unwrap();
    let second = sink(format!("oci:{}:v2", t.path().join("b").display()));
    write_sink(&back, &second, &opts()).unwrap();
    check_back(&a, &read(&second).unwrap());
}

#[test]
fn a_docker_archive_holds_no_referrers() {
    let t = tempfile::tempdir().unwrap();
    let a = Artifact::Image(attached(image("amd64"), "sbom"));
    let s = sink(format!(
        "docker-archive:{}",
        t.path().join("d.tar").display()
    ));
    write_sink(&a, &s, &opts()).unwrap();
    let back = read(&s).unwrap();
    assert_eq!(back.digest(), a.digest());
    assert_eq!(back.referrers().count(), 0);
}

#[test]
fn referrers_listed_in_index_json_as_oras_does_are_found_and_not_taken_for_the_image() {
    let t = tempfile::tempdir().unwrap();
    let img = attached(image("amd64"), "sbom");
    let r = img.referrers[0].clone();
    let a = Artifact::Image(img);
    let dir = t.path().join("lay");
    write_sink(&a, &sink(format!("oci:{}", dir.display())), &opts()).unwrap();
    // list the referrer in index.json as `oras attach --oci-layout` does
    let p = dir.join("index.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["manifests"]
        .as_array_mut()
        .unwrap()
        .push(r.descriptor_json());
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let back = read(&sink(format!("oci:{}", dir.display()))).unwrap();
    check_back(&a, &back);
}
