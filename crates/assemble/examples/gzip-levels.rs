//! Measures the layer compressor on one file for a grid of levels and
//! chunk sizes (docs/design.md, docs/benchmarks.md):
//!
//!   cargo run --release -p distroless-pack-assemble --example gzip-levels -- FILE [LEVELS [CHUNK_KIB [THREADS]]]
//!
//! LEVELS and CHUNK_KIB are comma-separated lists (default 6 and 1024);
//! THREADS defaults to the number of CPUs. Prints one line per setting:
//! level, chunk size, compressed bytes, wall seconds.

use std::io::{Read, Write};
use std::time::Instant;

use distroless_pack_assemble::gzip::{compress, GzipOptions};

fn list(arg: Option<&String>, default: &str) -> Vec<usize> {
    arg.map(String::as_str)
        .unwrap_or(default)
        .split(',')
        .map(|v| v.trim().parse().expect("a number"))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: gzip-levels FILE [LEVELS [CHUNK_KIB [THREADS]]]");
        std::process::exit(2);
    };
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .unwrap_or_else(|e| {
            eprintln!("gzip-levels: {path}: {e}");
            std::process::exit(1)
        });
    let levels = list(args.get(2), "6");
    let chunks = list(args.get(3), "1024");
    let threads = args
        .get(4)
        .map(|t| t.parse().expect("a number"))
        .unwrap_or_else(|| GzipOptions::default().threads);
    for &level in &levels {
        for &chunk in &chunks {
            let opts = GzipOptions {
                level: level as u32,
                threads,
                chunk_size: chunk * 1024,
            };
            let t = Instant::now();
            let (sum, _) = compress(std::io::sink(), opts, |w| w.write_all(&data)).unwrap();
            println!(
                "level {level:2} chunk {chunk:5} KiB threads {threads}: {:>10} bytes {:.3} s",
                sum.compressed_size,
                t.elapsed().as_secs_f64()
            );
        }
    }
}
