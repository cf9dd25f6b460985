//! Fuzzes verify's entry points with arbitrary bytes: `verify_bytes`
//! (the whole file in memory) and, for inputs up to 64 KiB, `verify_file`
//! (the sparse reader), which must agree with it. Any panic is a bug, and
//! so is work above the bound tests/hostile.rs enforces (64 units a byte
//! plus 1 MiB; see crates/verify/src/work.rs).
#![no_main]

use std::path::PathBuf;

use distroless_pack_verify::{measure, verify_bytes, verify_file, Platform};
use libfuzzer_sys::fuzz_target;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("dp-fuzz-verify-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let platform = Platform::linux("amd64");
    let bound = 64 * data.len() as u64 + (1 << 20);
    let (whole, work) = measure(|| verify_bytes("fuzz", data, &platform));
    assert!(work <= bound, "{work} units for {} bytes", data.len());
    if let Ok(r) = &whole {
        let _ = r.render_human();
        let _ = r.to_json();
    }
    if data.len() <= 64 * 1024 {
        let path = scratch();
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, data).expect("scratch file");
        let (sparse, work) = measure(|| verify_file(&path, &platform));
        assert!(
            work <= bound,
            "sparse: {work} units for {} bytes",
            data.len()
        );
        let name = path.display().to_string();
        let sparse = sparse
            .map(|mut r| {
                r.path = "fuzz".into();
                r
            })
            .map_err(|e| e.to_string().replacen(&name, "fuzz", 1));
        assert_eq!(sparse, whole.map_err(|e| e.to_string()));
    }
});
