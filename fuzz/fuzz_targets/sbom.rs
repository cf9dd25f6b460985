//! Fuzzes what the SBOM reads from a binary (issue 10): the ELF headers,
//! the `.comment` lines, the Go build info and cargo-auditable's
//! `.dep-v0` section, from arbitrary bytes. Any panic is a bug. So is an
//! SBOM that is not JSON, and a [`Scan`] that depends on how the bytes
//! were cut into pieces (a tar entry streams in pieces of any size).
//! Seeded with fuzz/corpus/sbom/ (crates/sbom/tests/hostile.rs makes and
//! checks the same seeds).
#![no_main]

use distroless_pack_image::{Digest, Platform};
use distroless_pack_sbom::{describe, Binary, Format, Input, Scanner, Subject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let binary = Binary::from_bytes(data.to_vec());

    // The same scan whatever the piece size (1 to 256 bytes, from the
    // first byte).
    let step = data.first().map_or(1, |b| usize::from(*b) + 1);
    let mut pieces = Scanner::new();
    for piece in data.chunks(step) {
        pieces.update(piece);
    }
    assert_eq!(&pieces.finish(), binary.scan(), "pieces of {step}");

    let sbom = describe(&Input {
        binary: &binary,
        binary_path: "/app/fuzz".into(),
        subject: Subject {
            name: "fuzz:1".into(),
            digest: Digest::sha256_of(b"fuzz"),
            platform: Platform::linux("amd64"),
            is_image: true,
        },
        files: Vec::new(),
        built: None,
        created: 0,
    });
    for format in [Format::Spdx, Format::CycloneDx] {
        let bytes = format.write(&sbom);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            panic!("{} is not JSON: {e}", format.name());
        }
    }
});
