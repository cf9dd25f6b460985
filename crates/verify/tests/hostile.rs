//! Verify on hostile input (issue 9, items 12-14): the reproducers the
//! fuzzers found, and a bounded, seeded mutation run over small crafted
//! files and real NativeAOT binaries.
//!
//! Nothing here is timed. Work is counted instead
//! (`distroless_pack_verify::measure`, see src/work.rs): every input must
//! cost at most `WORK_PER_BYTE * len + WORK_FIXED` units, on every machine.
//! The reproducers of the quadratic cases cost about 1.5 units a byte now;
//! the bound leaves room, and a quadratic loop over 100k entries would
//! exceed it by orders of magnitude. Wall-clock numbers are measured by
//! `cargo run --release -p distroless-pack-verify --example work`.
//!
//! The small reproducers are checked in under fuzz/corpus/verify/ (they seed
//! `cargo fuzz run verify`); the big ones are generated here from a seed.

#[path = "hostile/elf.rs"]
mod elf;

use std::fs;
use std::path::{Path, PathBuf};

use distroless_pack_verify::{measure, verify_bytes, verify_file, Platform, Report, VerifyError};

const WORK_PER_BYTE: u64 = 64;
const WORK_FIXED: u64 = 1 << 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus_dir() -> PathBuf {
    root().join("fuzz/corpus/verify")
}

fn dotnet_fixture(rel: &str) -> Vec<u8> {
    let p = root().join("tests/fixtures/dotnet").join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A scratch directory for this test process.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("dp-verify-hostile-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    d
}

type Outcome = Result<Report, String>;

/// Verifies `bytes` in memory, checks the work bound, and returns the
/// outcome with errors as strings.
#[track_caller]
fn in_memory(name: &str, bytes: &[u8]) -> (Outcome, u64) {
    let platform = Platform::linux("amd64");
    let (r, work) = measure(|| verify_bytes(name, bytes, &platform));
    let bound = WORK_PER_BYTE * bytes.len() as u64 + WORK_FIXED;
    assert!(
        work <= bound,
        "{name}: {work} units of work for {} bytes (bound {bound})",
        bytes.len()
    );
    if let Ok(r) = &r {
        // Rendering must cope with whatever was read.
        let _ = r.render_human();
        let _ = r.to_json();
    }
    (r.map_err(|e: VerifyError| e.to_string()), work)
}

/// The same through a file (the sparse reader), which must agree with the
/// in-memory result and stay within the same bound.
#[track_caller]
fn through_file(path: &Path, bytes: &[u8]) -> Outcome {
    // A new file each time: truncating one in place makes ext4 flush it
    // (auto_da_alloc), 5 ms a write.
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
    let name = path.display().to_string();
    let (whole, _) = in_memory(&name, bytes);
    let platform = Platform::linux("amd64");
    let (sparse, work) = measure(|| verify_file(path, &platform));
    let bound = WORK_PER_BYTE * bytes.len() as u64 + WORK_FIXED;
    assert!(
        work <= bound,
        "{name} (sparse): {work} units, bound {bound}"
    );
    let sparse = sparse.map_err(|e| e.to_string());
    assert_eq!(sparse, whole, "{name}: the sparse reader disagrees");
    sparse
}

// ------------------------------------------------------ the reproducers

#[test]
fn gnu_hash_table_at_the_top_of_the_address_space_is_refused_without_overflow() {
    let bytes = elf::gnu_hash_overflow();
    let path = scratch().join("gnu-hash-overflow");
    let err = through_file(&path, &bytes).unwrap_err();
    assert!(
        err.contains("malformed ELF file: the GNU hash table (DT_GNU_HASH) at offset 18446744073709551613 extends past the end of the file"),
        "{err}"
    );
}

#[test]
fn hundred_thousand_comment_strings_take_linear_work() {
    let bytes = elf::many_comments(100_000, 0x5eed_0013);
    assert!(bytes.len() > 900_000, "{}", bytes.len());
    let (r, work) = in_memory("comments", &bytes);
    let r = r.unwrap();
    assert_eq!(r.summary.compiler.len(), 32, "at most 32 are reported");
    assert_eq!(r.summary.compiler[0], "GCC 0.ac698");
    assert!(work < 8 * bytes.len() as u64, "{work} for {}", bytes.len());
    through_file(&scratch().join("comments"), &bytes).unwrap();
}

#[test]
fn hundred_thousand_notes_take_linear_work() {
    let bytes = elf::many_notes(100_000, 0x5eed_0014);
    let (r, work) = in_memory("notes", &bytes);
    assert_eq!(r.unwrap().verdict(), "pass");
    assert!(work < 8 * bytes.len() as u64, "{work} for {}", bytes.len());
    through_file(&scratch().join("notes"), &bytes).unwrap();
}

/// The sections of a file all naming the same megabyte of names without a
/// NUL, and all being notes over the same megabyte: both cost linear work.
#[test]
fn overlapping_sections_take_linear_work() {
    let mut secs = Vec::new();
    for _ in 0..2000 {
        secs.push(elf::Sec {
            name: "",
            sh_type: elf::SHT_NOTE,
            data: Vec::new(),
            align: 4,
            size: Some(0),
        });
    }
    let mut b = elf::build(2, &elf::code(), &secs);
    let area_at = b.len() as u64;
    b.extend(std::iter::repeat_n(b'A', 1 << 20));
    let shoff = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
    for i in 1..=2000 {
        let h = shoff + 64 * i;
        b[h..h + 4].copy_from_slice(&0u32.to_le_bytes());
        b[h + 24..h + 32].copy_from_slice(&area_at.to_le_bytes());
        b[h + 32..h + 40].copy_from_slice(&(1u64 << 20).to_le_bytes());
    }
    // The name table is the same megabyte of 'A's.
    let names = shoff + 64 * 2001;
    b[names + 24..names + 32].copy_from_slice(&area_at.to_le_bytes());
    b[names + 32..names + 40].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let (r, _) = in_memory("overlap", &b);
    assert!(r.is_ok(), "{r:?}");
    through_file(&scratch().join("overlap"), &b).unwrap();
}

/// The small reproducers checked in for the fuzzer are what the generators
/// here make (regenerate them with `DP_WRITE_CORPUS=1 cargo test -p
/// distroless-pack-verify --test hostile`).
#[test]
fn checked_in_reproducers_are_current() {
    let want = [
        ("gnu-hash-overflow", elf::gnu_hash_overflow()),
        ("comments-1k", elf::many_comments(1000, 0x5eed_0013)),
        ("notes-1k", elf::many_notes(1000, 0x5eed_0014)),
    ];
    let dir = corpus_dir();
    for (name, bytes) in &want {
        let p = dir.join(name);
        if std::env::var_os("DP_WRITE_CORPUS").is_some() {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&p, bytes).unwrap();
        }
        let have = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(&have == bytes, "{} differs from its generator", p.display());
    }
}

// ------------------------------------------------------ mutation

/// Values that break size and offset arithmetic.
fn interesting(len: u64, rng: &mut elf::Rng) -> u64 {
    let v = [
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        15,
        16,
        0x7f,
        0xff,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        len.saturating_sub(1),
        len,
        len + 1,
        len.saturating_sub(16),
        u64::MAX,
        u64::MAX - 1,
        u64::MAX - 3,
        u64::MAX - 15,
        1 << 62,
        i64::MAX as u64,
    ];
    v[rng.below(v.len() as u64) as usize]
}

/// Offsets of the fields that matter: the header, and the program and
/// section header tables the header names.
fn hot_offsets(b: &[u8]) -> Vec<usize> {
    let mut out: Vec<usize> = (0..64).collect();
    if b.len() >= 64 && b[4] == 2 && b[5] == 1 {
        let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
        let shoff = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
        let shnum = u16::from_le_bytes([b[60], b[61]]) as usize;
        out.extend((phoff..phoff.saturating_add(56 * phnum)).filter(|i| *i < b.len()));
        out.extend((shoff..shoff.saturating_add(64 * shnum)).filter(|i| *i < b.len()));
    }
    out
}

fn mutate(base: &[u8], hot: &[usize], rng: &mut elf::Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    let len = b.len() as u64;
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            // An interesting value in a header field.
            0..=2 => {
                let at = hot[rng.below(hot.len() as u64) as usize] & !7;
                let width = [2usize, 4, 8][rng.below(3) as usize];
                let v = interesting(len, rng).to_le_bytes();
                if at + width <= b.len() {
                    b[at..at + width].copy_from_slice(&v[..width]);
                }
            }
            // A random byte in a header field.
            3..=4 => {
                let at = hot[rng.below(hot.len() as u64) as usize];
                if at < b.len() {
                    b[at] = rng.next() as u8;
                }
            }
            // A random byte anywhere (notes, .comment, dynamic table, ...).
            5 => {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next() as u8;
            }
            // Truncated.
            6 => b.truncate(rng.below(b.len() as u64) as usize),
            // A block copied over another place.
            _ => {
                let n = 1 + rng.below(256) as usize;
                let from = rng.below(b.len() as u64) as usize;
                let to = rng.below(b.len() as u64) as usize;
                if from + n <= b.len() && to + n <= b.len() {
                    b.copy_within(from..from + n, to);
                }
            }
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

/// Issue 9, item 14: a fixed-seed mutation run (a few seconds in a debug
/// build). No input may panic, every input stays within the work bound,
/// and small ones give the same result through the sparse reader.
#[test]
fn mutated_inputs_never_panic_and_take_linear_work() {
    let seeds: Vec<(&str, Vec<u8>, usize)> = vec![
        ("gnu-hash-overflow", elf::gnu_hash_overflow(), 800),
        ("comments", elf::many_comments(200, 7), 800),
        ("notes", elf::many_notes(200, 7), 800),
        ("static", elf::build(2, &elf::code(), &[]), 800),
        (
            "console-dynamic",
            dotnet_fixture("console-dynamic/console-dynamic"),
            100,
        ),
        (
            "console-static",
            dotnet_fixture("console-static/console-static"),
            100,
        ),
    ];
    let dir = scratch();
    let mut rng = elf::Rng(0x0009_0014_5eed_0001);
    let (mut ok, mut refused) = (0, 0);
    for (name, base, rounds) in &seeds {
        let hot = hot_offsets(base);
        for round in 0..*rounds {
            let b = mutate(base, &hot, &mut rng);
            let label = format!("{name} round {round}");
            let r = if b.len() <= 64 * 1024 || round % 25 == 0 {
                through_file(&dir.join(name), &b)
            } else {
                in_memory(&label, &b).0
            };
            match r {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
        }
    }
    // The run exercises both outcomes.
    assert!(
        ok > 500 && refused > 500,
        "{ok} verified, {refused} refused"
    );
}
