//! The SBOM's reading of a binary on damaged input (issue 10: "a corrupt or
//! unreadable build info section gives a warning and an SBOM without those
//! components, never a failure or a panic"). Two crafted binaries hold every
//! record the SBOM reads: an ELF file with a `.comment` (GCC, rustc and
//! NativeAOT lines) and a cargo-auditable `.dep-v0` section, and one with
//! Go build info. A seeded mutation run damages them a few thousand ways;
//! each must give an SBOM that is JSON in both formats, and the same scan
//! however its bytes are cut into pieces. The same checks are the `sbom`
//! fuzz target (fuzz/fuzz_targets/sbom.rs), which these seeds start
//! (`DP_WRITE_SBOM_SEEDS=DIR` writes them there: fuzz/corpus/sbom/).

#[path = "../../verify/tests/hostile/elf.rs"]
#[allow(dead_code)]
mod elf;

use std::io::Write;
use std::path::Path;

use distroless_pack_image::{Digest, Platform};
use distroless_pack_sbom::{describe, Binary, Format, Input, Sbom, Scanner, Subject};
use elf::{Rng, Sec, SHT_PROGBITS};

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

fn sbom_of(bytes: &[u8]) -> Sbom {
    let binary = Binary::from_bytes(bytes.to_vec());
    describe(&Input {
        binary: &binary,
        binary_path: "/app/hostile".into(),
        subject: Subject {
            name: "hostile:1".into(),
            digest: Digest::sha256_of(b"hostile"),
            platform: Platform::linux("amd64"),
            is_image: true,
        },
        files: Vec::new(),
        built: None,
        created: 0,
    })
}

/// cargo-auditable's `.dep-v0`: its JSON, zlib-compressed.
fn dep_v0() -> Vec<u8> {
    let json = br#"{"packages":[
        {"name":"hostile","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},
        {"name":"itoa","version":"1.0.11","source":"crates.io"},
        {"name":"memchr","version":"2.7.4","source":"crates.io","kind":"build"}
    ]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json).unwrap();
    z.finish().unwrap()
}

/// An ELF file with the compilers' `.comment` lines and a `.dep-v0`.
fn rust_seed() -> Vec<u8> {
    let comment = b"GCC: (Alpine 14.2.0) 14.2.0\0rustc version 1.95.0 (59807616e 2026-04-14)\0.NET: ilc 10.0.12-servicing.25609.104+abcdef\0".to_vec();
    elf::build(
        2,
        &elf::code(),
        &[
            Sec {
                name: ".comment",
                sh_type: SHT_PROGBITS,
                data: comment,
                align: 1,
                size: None,
            },
            Sec {
                name: ".dep-v0",
                sh_type: SHT_PROGBITS,
                data: dep_v0(),
                align: 1,
                size: None,
            },
        ],
    )
}

/// Go's build info as Go 1.18+ writes it: the 32-byte header (pointer size
/// 8, flags 2: strings inline), then the version and the module info, each
/// after its uvarint length, the module info between 16 sentinel bytes.
fn go_build_info() -> Vec<u8> {
    let modinfo = "path\texample.com/hostile\nmod\texample.com/hostile\t(devel)\t\n\
                   dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n\
                   dep\tgolang.org/x/text\tv0.21.0\th1:4BsPl+xs8/6nJ2WHKYrhTwm9TchAoA2SxeAvqRWTbOM=\n\
                   build\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\n";
    let mut b = vec![0u8; 32];
    b[..GO_MAGIC.len()].copy_from_slice(GO_MAGIC);
    b[14] = 8;
    b[15] = 2;
    let mut put = |s: &[u8]| {
        let mut n = s.len();
        while n >= 0x80 {
            b.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        b.push(n as u8);
        b.extend_from_slice(s);
    };
    put(b"go1.22.5");
    let mut m = vec![0x30u8; 16];
    m.extend_from_slice(modinfo.as_bytes());
    m.extend_from_slice(&[0xf9u8; 16]);
    put(&m);
    b
}

/// An ELF file whose `.go.buildinfo` section (16-byte aligned) holds it.
fn go_seed() -> Vec<u8> {
    elf::build(
        2,
        &elf::code(),
        &[Sec {
            name: ".go.buildinfo",
            sh_type: SHT_PROGBITS,
            data: go_build_info(),
            align: 16,
            size: None,
        }],
    )
}

fn purls(s: &Sbom) -> Vec<String> {
    s.components.iter().filter_map(|c| c.purl.clone()).collect()
}

/// What every input must give: no panic (a panic fails the test), an SBOM
/// that is JSON in both formats, and one scan whatever the piece size.
fn check(bytes: &[u8], step: usize) -> Sbom {
    let sbom = sbom_of(bytes);
    for format in [Format::Spdx, Format::CycloneDx] {
        let out = format.write(&sbom);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
            panic!(
                "{} of a {}-byte input is not JSON: {e}",
                format.name(),
                bytes.len()
            );
        }
    }
    let whole = Binary::from_bytes(bytes.to_vec());
    let mut pieces = Scanner::new();
    for p in bytes.chunks(step) {
        pieces.update(p);
    }
    assert_eq!(&pieces.finish(), whole.scan(), "pieces of {step}");
    sbom
}

#[test]
fn the_seeds_give_every_record_they_hold() {
    let rust = check(&rust_seed(), 7);
    assert_eq!(rust.warnings, Vec::<String>::new());
    // the crate and the NativeAOT compiler the records name; memchr is a
    // build-only dependency, not in the binary
    assert_eq!(
        purls(&rust),
        [
            "pkg:cargo/itoa@1.0.11",
            "pkg:nuget/Microsoft.DotNet.ILCompiler@10.0.12"
        ]
    );

    let go = check(&go_seed(), 16);
    assert_eq!(go.warnings, Vec::<String>::new());
    let p = purls(&go);
    for want in [
        "pkg:golang/github.com/google/uuid@v1.6.0",
        "pkg:golang/golang.org/x/text@v0.21.0",
    ] {
        assert!(p.iter().any(|x| x == want), "{want} not in {p:?}");
    }
    assert_eq!(go.application.toolchain.as_deref(), Some("go go1.22.5"));

    if let Some(dir) = std::env::var_os("DP_WRITE_SBOM_SEEDS") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("elf-comment-dep-v0"), rust_seed()).unwrap();
        std::fs::write(dir.join("elf-go-buildinfo"), go_seed()).unwrap();
    }
}

/// The seeds in fuzz/corpus/sbom/ are the ones this file makes, so the
/// fuzzer starts from every record (and a reproducer added there later is
/// checked here too).
#[test]
fn the_fuzz_corpus_holds_these_seeds_and_every_file_in_it_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sbom");
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!("fuzz/corpus/sbom/{name}: {e} (DP_WRITE_SBOM_SEEDS=fuzz/corpus/sbom cargo test -p distroless-pack-sbom --test hostile writes it)")
        })
    };
    assert_eq!(read("elf-comment-dep-v0"), rust_seed());
    assert_eq!(read("elf-go-buildinfo"), go_seed());
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        check(&bytes, 1 + bytes.len() % 31);
        n += 1;
    }
    assert!(n >= 2);
}

/// Damage of the kinds a broken build or a hostile file shows: a byte
/// changed, a run overwritten with 0x00 or 0xff (lengths and offsets
/// become huge or zero), the file cut short, bytes inserted. Each seed
/// 1,500 ways, from a fixed seed; the runs that break a record must say so
/// in a warning, not fail.
#[test]
fn damaged_records_give_warnings_and_an_sbom_never_a_panic() {
    let mut rng = Rng(0x5eed_0f5b_0a17);
    let mut warned = 0;
    for seed in [rust_seed(), go_seed()] {
        for _ in 0..1500 {
            let mut m = seed.clone();
            match rng.below(4) {
                0 => {
                    let at = rng.below(m.len() as u64) as usize;
                    m[at] = rng.next() as u8;
                }
                1 => {
                    let at = rng.below(m.len() as u64) as usize;
                    let len = (1 + rng.below(8) as usize).min(m.len() - at);
                    let v = if rng.below(2) == 0 { 0 } else { 0xff };
                    m[at..at + len].fill(v);
                }
                2 => m.truncate(rng.below(m.len() as u64) as usize),
                _ => {
                    let at = rng.below(m.len() as u64) as usize;
                    let extra: Vec<u8> = (0..1 + rng.below(32)).map(|_| rng.next() as u8).collect();
                    m.splice(at..at, extra);
                }
            }
            let step = 1 + rng.below(64) as usize;
            let sbom = check(&m, step);
            if !sbom.warnings.is_empty() {
                warned += 1;
            }
        }
    }
    // Many of the 3,000 damage a record; none of those is a failure.
    assert!(warned > 100, "only {warned} mutants gave a warning");
}
