//! Work units and wall time of verifying files, for the speed targets of
//! issue 9 (any input under 10 MB verifies in well under a second):
//!
//! ```sh
//! cargo run --release -p distroless-pack-verify --example work -- FILE...
//! cargo run --release -p distroless-pack-verify --example work -- --reproducers
//! ```
//!
//! `--reproducers` generates the crafted inputs of tests/hostile.rs (100k
//! `.comment` strings, 100k notes, a GNU hash table at the top of the
//! address space, 10 MB of overlapping note sections) and measures them.
use std::time::Instant;

use distroless_pack_verify::{measure, verify_bytes, Platform};

#[path = "../tests/hostile/elf.rs"]
#[allow(dead_code)]
mod elf;

fn one(name: &str, bytes: &[u8]) {
    let t = Instant::now();
    let (r, work) = measure(|| verify_bytes(name, bytes, &Platform::linux("amd64")));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let verdict = match &r {
        Ok(r) => r.verdict().to_string(),
        Err(e) => e.to_string(),
    };
    println!(
        "{name}: {} bytes, {work} units ({:.2}/byte), {ms:.1} ms: {verdict}",
        bytes.len(),
        work as f64 / bytes.len().max(1) as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--reproducers") {
        one("gnu-hash-overflow", &elf::gnu_hash_overflow());
        one("comments-100k", &elf::many_comments(100_000, 0x5eed_0013));
        one("notes-100k", &elf::many_notes(100_000, 0x5eed_0014));
        one("comments-700k", &elf::many_comments(700_000, 1));
        one("notes-500k", &elf::many_notes(500_000, 1));
        return;
    }
    for path in args {
        let bytes = std::fs::read(&path).expect("readable file");
        one(&path, &bytes);
    }
}
