//! Proves that an ELF executable will run in an empty (FROM scratch) image.
//!
//! [`verify_file`] reads a file, checks it against the image platform and
//! returns a [`Report`]: the [`BinaryFacts`] read from the file (linkage,
//! libc, toolchain, build id, ...) and a list of [`Finding`]s. Each finding
//! has a stable `id`, a [`Severity`], what was found, what the user would see
//! in a scratch container because of it, and how to fix it. A report with an
//! error-level finding ([`Report::has_errors`]) describes a program that will
//! not start (or will crash) in a scratch image.
//!
//! Only the parts of the file the checks look at are held in memory (see
//! sparse.rs), so verifying a large binary takes little memory.
//!
//! Everything is read from the file with goblin; nothing is executed and no
//! external tool (`readelf`, `file`, `ldd`) is run, so cross-architecture
//! binaries are checked the same way. Input that is not a readable ELF file
//! gives a [`VerifyError`], never a panic: the header and every table are
//! checked against the file size before parsing, and the parser runs under
//! `catch_unwind` as a last guard.
//!
//! The checks and the JSON schema are documented in docs/commands/verify.md.

mod checks;
mod dotnet;
mod error;
mod fingerprint;
mod notes;
mod parse;
mod report;
mod sparse;
mod work;

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use error::Problem;
use fingerprint::Strings;
use sparse::SparseFile;

pub use distroless_pack_image::Platform;
pub use dotnet::DotnetInfo;
pub use error::VerifyError;
pub use fingerprint::{GoInfo, Libc, Toolchain};
pub use report::{
    json_document, BinaryFacts, Finding, Linkage, Relro, Report, Severity, SCHEMA_VERSION,
};
pub use work::measure;

/// Files larger than this are refused.
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Reads and verifies the file at `path` for `platform`.
pub fn verify_file(path: &Path, platform: &Platform) -> Result<Report, VerifyError> {
    verify_file_paged(path, platform, sparse::PAGE, &mut |_| {})
}

/// [`verify_file`], handing every byte of the file to `tap`, in order and
/// each once, as the string scan streams it: a caller that needs another
/// pass over the bytes (the SBOM's hashes) gets it without reading the
/// file again. When verify fails before the scan (not a regular file, not
/// ELF), `tap` may have seen none or part of it.
pub fn verify_file_tapped(
    path: &Path,
    platform: &Platform,
    tap: &mut dyn FnMut(&[u8]),
) -> Result<Report, VerifyError> {
    verify_file_paged(path, platform, sparse::PAGE, tap)
}

/// The platform an ELF file's header names (`linux` and the OCI
/// architecture of its class and machine), read from its first 20 bytes
/// only: for `pack --no-verify`, which checks nothing else. Files that are
/// not ELF get the same errors as from [`verify_file`].
pub fn header_platform(path: &Path) -> Result<Platform, VerifyError> {
    let name = error::display(path);
    regular_file(path, &name)?;
    let mut head = Vec::with_capacity(20);
    File::open(path)
        .and_then(|f| f.take(20).read_to_end(&mut head))
        .map_err(|source| VerifyError::Io {
            path: name.clone(),
            source,
        })?;
    let problem = if head.is_empty() {
        Some(Problem::Empty)
    } else if !head.starts_with(b"\x7fELF") && !b"\x7fELF".starts_with(&head) {
        Some(Problem::NotElf(parse::guess_non_elf(&head)))
    } else if head.len() < 20 {
        Some(Problem::Truncated(format!(
            "only {} bytes, the ELF header needs at least 52",
            head.len()
        )))
    } else {
        None
    };
    if let Some(p) = problem {
        return Err(p.at(&name));
    }
    let little = head[5] != 2;
    let machine = if little {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    };
    Ok(Platform::linux(checks::oci_arch(
        machine,
        head[4] == 2,
        little,
    )))
}

/// Checks `path` is a regular file of a size we read; its metadata.
fn regular_file(path: &Path, name: &str) -> Result<fs::Metadata, VerifyError> {
    let meta = fs::metadata(path).map_err(|source| VerifyError::Io {
        path: name.to_string(),
        source,
    })?;
    if meta.is_dir() {
        return Err(VerifyError::Directory { path: name.into() });
    }
    if !meta.is_file() {
        return Err(VerifyError::NotRegular { path: name.into() });
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(VerifyError::TooLarge {
            path: name.into(),
            size: meta.len(),
            limit: MAX_FILE_SIZE,
        });
    }
    Ok(meta)
}

/// [`verify_file`], loading the file `page` bytes at a time.
fn verify_file_paged(
    path: &Path,
    platform: &Platform,
    page: u64,
    tap: &mut dyn FnMut(&[u8]),
) -> Result<Report, VerifyError> {
    let name = error::display(path);
    let meta = regular_file(path, &name)?;
    let io = |source| VerifyError::Io {
        path: name.clone(),
        source,
    };
    // The file is streamed once for the string scan; then only the parts
    // parsing and the checks read are loaded (sparse.rs).
    let mut file = SparseFile::new(File::open(path).map_err(io)?, meta.len(), page).map_err(io)?;
    let strings = file.scan(tap).map_err(io)?;
    sparse::load(&mut file, &strings).map_err(io)?;
    let mut ev = parse::parse(file.bytes()).map_err(|p| p.at(&name))?;
    ev.loaded = file.loaded();
    Ok(report(&name, &ev, &strings, platform))
}

/// Verifies an ELF image held in memory; `name` is used in the report and
/// in error messages.
pub fn verify_bytes(name: &str, bytes: &[u8], platform: &Platform) -> Result<Report, VerifyError> {
    let ev = parse::parse(bytes).map_err(|p| p.at(name))?;
    Ok(report(name, &ev, &Strings::of(bytes), platform))
}

fn report(name: &str, ev: &parse::Evidence<'_>, strings: &Strings, platform: &Platform) -> Report {
    let (summary, findings) = checks::run(ev, strings, platform);
    Report {
        path: name.to_string(),
        platform: platform.clone(),
        summary,
        findings,
    }
}

/// The platform a verified binary is built for: `linux` and the OCI
/// architecture of its e_machine (`amd64`, `arm64`, or e.g. `386`, `arm`,
/// `riscv64`, `unknown` for others).
pub fn platform_of(report: &Report) -> Platform {
    let s = &report.summary;
    Platform::linux(checks::oci_arch(
        s.e_machine,
        s.class == "elf64",
        s.endianness == "little",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let e = verify_bytes("app", b"#!/bin/sh\n", &Platform::host()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "app: not an ELF file (starts with #! \u{2014} a script?)"
        );
        assert_eq!(
            e.problem(),
            "not an ELF file (starts with #! \u{2014} a script?)"
        );
        assert_eq!(e.path(), "app");
    }

    #[test]
    fn the_tap_sees_every_byte_once_in_order_and_the_report_is_unchanged() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/dotnet/console-static/console-static");
        let platform = Platform::linux("amd64");
        let mut seen = Vec::new();
        let tapped =
            verify_file_tapped(&path, &platform, &mut |b| seen.extend_from_slice(b)).unwrap();
        assert_eq!(seen, std::fs::read(&path).unwrap());
        assert_eq!(
            format!("{tapped:?}"),
            format!("{:?}", verify_file(&path, &platform).unwrap())
        );
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let d = std::env::temp_dir();
        assert!(matches!(
            verify_file(&d, &Platform::host()),
            Err(VerifyError::Directory { .. })
        ));
        assert!(matches!(
            verify_file(Path::new("/dev/zero"), &Platform::host()),
            Err(VerifyError::NotRegular { .. })
        ));
        assert!(matches!(
            verify_file(Path::new("/nonexistent/x"), &Platform::host()),
            Err(VerifyError::Io { .. })
        ));
    }

    /// A minimal ELF64 little-endian executable: header, program headers
    /// (`(p_type, p_flags, bytes)`, placed one after another) and no sections.
    fn synthetic(e_type: u16, machine: u16, segments: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let phoff = 64usize;
        let data_start = phoff + 56 * segments.len();
        let mut b = vec![0u8; data_start];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&0x401000u64.to_le_bytes()); // entry
        b[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        b[58..60].copy_from_slice(&64u16.to_le_bytes());
        for (i, (p_type, flags, data)) in segments.iter().enumerate() {
            let at = phoff + 56 * i;
            let off = b.len() as u64;
            b[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            b[at + 16..at + 24].copy_from_slice(&(0x400000 + off).to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            b[at + 40..at + 48].copy_from_slice(&(data.len() as u64).to_le_bytes());
            b[at + 48..at + 56].copy_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(data);
        }
        b
    }

    const LOAD: u32 = 1;
    const INTERP: u32 = 3;
    const GNU_STACK: u32 = 0x6474_e551;
    const R: u32 = 4;
    const W: u32 = 2;
    const X: u32 = 1;

    fn ids_of(bytes: &[u8], arch: &str) -> Vec<&'static str> {
        verify_bytes("t", bytes, &Platform::linux(arch))
            .unwrap()
            .ids()
    }

    #[test]
    fn synthetic_static_executable_passes() {
        let b = synthetic(
            2,
            62,
            &[(LOAD, R | X, &[0xc3; 16]), (GNU_STACK, R | W, &[])],
        );
        let r = verify_bytes("t", &b, &Platform::linux("amd64")).unwrap();
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.summary.linkage, Linkage::Static);
        assert_eq!(r.verdict(), "pass");
        assert_eq!(platform_of(&r), Platform::linux("amd64"));
        let arm = synthetic(2, 183, &[(LOAD, R | X, &[0; 16]), (GNU_STACK, R | W, &[])]);
        assert_eq!(ids_of(&arm, "arm64"), Vec::<&str>::new());
        assert_eq!(ids_of(&arm, "amd64"), vec!["wrong-architecture"]);
    }

    #[test]
    fn synthetic_interpreter_stack_and_rwx_are_errors() {
        let b = synthetic(
            2,
            62,
            &[
                (INTERP, R, b"/lib/ld-musl-x86_64.so.1\0"),
                (LOAD, R | X, &[0; 8]),
            ],
        );
        let r = verify_bytes("t", &b, &Platform::linux("amd64")).unwrap();
        assert_eq!(
            r.summary.interpreter.as_deref(),
            Some("/lib/ld-musl-x86_64.so.1")
        );
        assert_eq!(r.summary.libc, Libc::Musl);
        assert_eq!(r.ids(), vec!["interpreter", "executable-stack"]);
        let b = synthetic(
            2,
            62,
            &[(LOAD, R | W | X, &[0; 8]), (GNU_STACK, R | W | X, &[])],
        );
        assert_eq!(
            ids_of(&b, "amd64"),
            vec!["executable-stack", "writable-executable-segment"]
        );
    }

    #[test]
    fn synthetic_odd_file_types_are_errors() {
        let seg: &[(u32, u32, &[u8])] = &[(LOAD, R | X, &[0; 8]), (GNU_STACK, R | W, &[])];
        assert_eq!(ids_of(&synthetic(1, 62, seg), "amd64"), vec!["object-file"]);
        assert_eq!(ids_of(&synthetic(4, 62, seg), "amd64"), vec!["core-dump"]);
        assert_eq!(
            ids_of(&synthetic(9, 62, seg), "amd64"),
            vec!["unknown-file-type"]
        );
        let mut freebsd = synthetic(2, 62, seg);
        freebsd[7] = 9;
        assert_eq!(ids_of(&freebsd, "amd64"), vec!["wrong-os"]);
    }

    /// Loading the file byte by byte (so nothing is loaded that was not
    /// asked for) gives the report of reading the whole file, for dynamic
    /// programs with and without section headers (then goblin finds the
    /// dynamic tables by address, through sparse::load_dynamic).
    #[test]
    fn sparse_reading_matches_reading_the_whole_file() {
        let tmp = std::env::temp_dir().join(format!("dp-verify-sparse-{}", std::process::id()));
        fs::create_dir_all(&tmp).unwrap();
        let me = std::env::current_exe().unwrap();
        let mut files = vec![me];
        for p in ["/bin/sh", "/usr/bin/env", "/bin/ls"] {
            if Path::new(p).is_file() {
                files.push(p.into());
            }
        }
        let mut checked = 0;
        for (i, file) in files.iter().enumerate() {
            let whole = fs::read(file).unwrap();
            let mut stripped = whole.clone();
            stripped[40..48].fill(0); // e_shoff
            stripped[60..64].fill(0); // e_shnum, e_shstrndx
            let copy = tmp.join(format!("stripped-{i}"));
            fs::write(&copy, &stripped).unwrap();
            for (path, bytes) in [(file, &whole), (&copy, &stripped)] {
                let name = error::display(path);
                for platform in [Platform::linux("amd64"), Platform::linux("arm64")] {
                    let full = verify_bytes(&name, bytes, &platform).unwrap();
                    assert!(
                        !full.summary.needed.is_empty(),
                        "{name}: test needs a dynamic program"
                    );
                    for page in [1, 7, 4096] {
                        let sparse = verify_file_paged(path, &platform, page, &mut |_| {}).unwrap();
                        assert_eq!(sparse, full, "{name}, {page}-byte pages");
                        checked += 1;
                    }
                }
            }
        }
        fs::remove_dir_all(&tmp).unwrap();
        assert!(checked >= 12);
    }

    /// The same on damaged files: random bytes of a small dynamic program
    /// changed (mostly in its headers and tables), loaded byte by byte.
    #[test]
    fn sparse_reading_matches_on_damaged_files() {
        let Ok(base) = fs::read("/usr/bin/true") else {
            return;
        };
        let tmp = std::env::temp_dir().join(format!("dp-verify-damaged-{}", std::process::id()));
        fs::create_dir_all(&tmp).unwrap();
        let path = tmp.join("true");
        let platform = Platform::linux("amd64");
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let mut b = base.clone();
            for _ in 0..1 + round % 8 {
                let r = next();
                let at = if r % 4 == 0 {
                    (r >> 8) as usize % b.len()
                } else {
                    (r >> 8) as usize % 4096.min(b.len())
                };
                b[at] = (r >> 40) as u8;
            }
            fs::write(&path, &b).unwrap();
            let full = verify_bytes("f", &b, &platform).map_err(|e| e.to_string());
            let sparse = verify_file_paged(&path, &platform, 1, &mut |_| {})
                .map(|mut r| {
                    r.path = "f".into();
                    r
                })
                .map_err(|e| e.to_string().replacen(&error::display(&path), "f", 1));
            assert_eq!(sparse, full, "round {round}");
        }
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn the_test_binary_itself_is_dynamic() {
        // The unit-test executable is a normal dynamically linked program.
        let me = std::env::current_exe().unwrap();
        let r = verify_file(&me, &Platform::host()).unwrap();
        assert_eq!(r.summary.linkage, Linkage::Dynamic);
        assert!(r.has_errors());
        assert!(r.ids().contains(&"interpreter"), "{:?}", r.ids());
        assert_eq!(platform_of(&r), Platform::host());
        let other = if Platform::host().architecture == "amd64" {
            "arm64"
        } else {
            "amd64"
        };
        let r2 = verify_file(&me, &Platform::linux(other)).unwrap();
        assert!(r2.ids().contains(&"wrong-architecture"));
        assert!(r
            .render_human()
            .contains("in a scratch container: exec /app: no such file or directory"));
    }
}
