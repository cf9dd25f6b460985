//! Packs one file into a layer with a given level and thread count and
//! prints the time and sizes: `cargo run --release --example layer_bench -- FILE [LEVEL] [THREADS]`.
//! Used to choose the level documented in docs/reproducibility.md.

use std::time::Instant;

use distroless_pack_assemble::{GzipOptions, LayerWriter, MODE_EXEC};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .expect("usage: layer_bench FILE [LEVEL] [THREADS]");
    let level = args
        .get(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(distroless_pack_assemble::gzip::DEFAULT_LEVEL);
    let threads = args
        .get(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or_else(|| GzipOptions::default().threads);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut w = LayerWriter::new(0).with_gzip(GzipOptions {
        level,
        threads,
        ..GzipOptions::default()
    });
    w.add_file("/app/bin", std::path::Path::new(file), MODE_EXEC)
        .unwrap();
    let layer = w.finish(dir.path()).unwrap();
    println!(
        "level {level} threads {threads}: {:.3}s, {} bytes compressed, {} uncompressed, {}",
        t.elapsed().as_secs_f64(),
        layer.blob.size,
        layer.uncompressed_size,
        layer.blob.digest
    );
}
