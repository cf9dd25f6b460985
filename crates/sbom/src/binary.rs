//! What a binary records about itself: its hashes, the `.comment` lines
//! compilers leave (GCC, clang, rustc, `.NET: ilc VERSION`), the Go build
//! info and the `cargo auditable` dependency list (`.dep-v0`).

use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::go::{BuildInfo, ReadAt};

/// The Rust packages `cargo auditable` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustPackage {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` or another.
    pub source: String,
    /// Build-time only (a build script's or proc macro's dependency).
    pub build_only: bool,
    /// The root package (the binary's own crate).
    pub root: bool,
}

/// Facts read from the binary alone.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    /// The `.comment` strings, in order.
    pub comments: Vec<String>,
    pub go: Option<BuildInfo>,
    /// `cargo auditable`'s packages (`None`: no `.dep-v0` section).
    pub rust: Option<Vec<RustPackage>>,
    /// The .NET runtime version (`.NET: ilc 10.0.12-servicing...+hash` ->
    /// `10.0.12`), and the full ilc string.
    pub dotnet: Option<(String, String)>,
    /// `rustc version 1.95.0 (...)` -> `1.95.0`.
    pub rustc: Option<String>,
    /// Problems reading the records (the SBOM is made without them).
    pub warnings: Vec<String>,
}

/// The `.dep-v0` section's size limit once decompressed (the
/// auditable-info default).
const AUDIT_JSON_LIMIT: usize = 8 * 1024 * 1024;

/// The largest `.comment` section read (compilers write a few lines).
const COMMENT_LIMIT: u64 = 1 << 20;

/// Bytes hashed and searched at a time: the binary is never held whole.
const CHUNK: usize = 4 << 20;

/// What one pass over a binary's bytes learns: its hashes and size, and
/// where the Go build info header is (the first 16-byte aligned
/// [`go::MAGIC`](crate::go::MAGIC), as Go's `debug/buildinfo` finds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    pub go_header: Option<u64>,
}

/// Makes a [`Scan`] from the bytes in order, in pieces of any size (a tar
/// entry as it streams, a file read a chunk at a time).
#[derive(Clone, Debug, Default)]
pub struct Scanner {
    sha256: Sha256,
    sha1: Sha1,
    size: u64,
    go_header: Option<u64>,
    /// The last bytes seen (fewer than the magic's length), for a magic
    /// that spans two pieces.
    tail: Vec<u8>,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    pub fn update(&mut self, piece: &[u8]) {
        if piece.is_empty() {
            return;
        }
        // The two hashes of a large piece on two cores.
        let (sha256, sha1) = (&mut self.sha256, &mut self.sha1);
        if piece.len() >= 1 << 20 {
            std::thread::scope(|s| {
                s.spawn(|| sha1.update(piece));
                sha256.update(piece);
            });
        } else {
            sha256.update(piece);
            sha1.update(piece);
        }
        if self.go_header.is_none() {
            self.find_go_header(piece);
        }
        self.size += piece.len() as u64;
    }

    fn find_go_header(&mut self, piece: &[u8]) {
        let magic = crate::go::MAGIC;
        let aligned = |at: u64| at.is_multiple_of(16);
        // A magic starting in the tail and ending in this piece.
        if !self.tail.is_empty() {
            let base = self.size - self.tail.len() as u64;
            let mut joined = self.tail.clone();
            joined.extend_from_slice(&piece[..piece.len().min(magic.len() - 1)]);
            if let Some(i) = memchr::memmem::find_iter(&joined, magic)
                .find(|&i| i < self.tail.len() && aligned(base + i as u64))
            {
                self.go_header = Some(base + i as u64);
                return;
            }
        }
        if let Some(i) =
            memchr::memmem::find_iter(piece, magic).find(|&i| aligned(self.size + i as u64))
        {
            self.go_header = Some(self.size + i as u64);
            return;
        }
        let keep = magic.len() - 1;
        if piece.len() >= keep {
            self.tail = piece[piece.len() - keep..].to_vec();
        } else {
            self.tail.extend_from_slice(piece);
            let cut = self.tail.len().saturating_sub(keep);
            self.tail.drain(..cut);
        }
    }

    pub fn finish(self) -> Scan {
        Scan {
            sha256: hex::encode(self.sha256.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            size: self.size,
            go_header: self.go_header,
        }
    }
}

/// Where a binary's bytes are.
#[derive(Debug)]
enum Source {
    Memory(Vec<u8>),
    File(std::fs::File),
}

/// A binary to describe: read once, a chunk at a time, for its [`Scan`],
/// then only the headers and the few sections that record what it is made
/// of, by offset. Memory stays flat whatever the binary's size.
#[derive(Debug)]
pub struct Binary {
    source: Source,
    scan: Scan,
}

impl ReadAt for Binary {
    fn size(&self) -> u64 {
        self.scan.size
    }

    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if offset.checked_add(len)? > self.scan.size {
            return None;
        }
        match &self.source {
            Source::Memory(b) => b.as_slice().read_at(offset, len),
            Source::File(f) => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; usize::try_from(len).ok()?];
                f.read_exact_at(&mut buf, offset).ok()?;
                Some(buf)
            }
        }
    }
}

impl Binary {
    /// A binary held in memory (tests, small inputs).
    pub fn from_bytes(bytes: Vec<u8>) -> Binary {
        let mut s = Scanner::new();
        for piece in bytes.chunks(CHUNK) {
            s.update(piece);
        }
        Binary {
            scan: s.finish(),
            source: Source::Memory(bytes),
        }
    }

    /// The file at `path`, scanned a chunk at a time.
    pub fn open(path: &std::path::Path) -> std::io::Result<Binary> {
        Binary::scan_file(std::fs::File::open(path)?)
    }

    /// `file`, read from its start a chunk at a time for its [`Scan`].
    pub fn scan_file(mut file: std::fs::File) -> std::io::Result<Binary> {
        use std::io::{Read, Seek};
        file.rewind()?;
        let mut s = Scanner::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            s.update(&buf[..n]);
        }
        Ok(Binary::from_scanned(file, s.finish()))
    }

    /// A file whose bytes were already scanned (as a tar entry streamed).
    pub fn from_scanned(file: std::fs::File, scan: Scan) -> Binary {
        Binary {
            source: Source::File(file),
            scan,
        }
    }

    pub fn scan(&self) -> &Scan {
        &self.scan
    }

    /// Reads everything the binary records; never fails: what cannot be
    /// read becomes a warning.
    pub fn facts(&self, what: &str) -> Facts {
        let mut f = Facts {
            sha256: self.scan.sha256.clone(),
            sha1: self.scan.sha1.clone(),
            size: self.scan.size,
            ..Facts::default()
        };
        let elf = ElfIndex::read(self);
        let section = |name: &str, limit: u64| -> Result<Option<Vec<u8>>, String> {
            let Some(sh) = elf.as_ref().and_then(|e| e.section(name)) else {
                return Ok(None);
            };
            if sh.size > limit {
                return Err(format!("{} bytes, more than the {limit} read", sh.size));
            }
            self.read_at(sh.offset, sh.size)
                .map(Some)
                .ok_or_else(|| "it lies outside the file".to_string())
        };
        if let Ok(Some(c)) = section(".comment", COMMENT_LIMIT) {
            f.comments = c
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
        }
        for c in &f.comments {
            if let Some(ilc) = c.strip_prefix(".NET: ilc ") {
                let v = ilc.split(['+', '-']).next().unwrap_or(ilc).to_string();
                f.dotnet = Some((v, ilc.to_string()));
            } else if let Some(r) = c.strip_prefix("rustc version ") {
                f.rustc = r.split_whitespace().next().map(str::to_string);
            }
        }
        if let Some(at) = self.scan.go_header {
            let loads = || {
                elf.as_ref()
                    .map(|e| e.loads.clone())
                    .ok_or_else(|| "not a readable ELF file".to_string())
            };
            match crate::go::read_header_at(self, at, loads) {
                Ok(info) => f.go = Some(info),
                Err(e) => f.warnings.push(format!(
                    "{what}: the Go build info cannot be read ({e}); the SBOM lists no Go modules"
                )),
            }
        }
        match section(".dep-v0", AUDIT_JSON_LIMIT as u64).and_then(|s| s.map(audit_packages).transpose()) {
            Ok(None) => {}
            Ok(Some(list)) => f.rust = Some(list),
            Err(e) => f.warnings.push(format!(
                "{what}: the cargo auditable section .dep-v0 cannot be read ({e}); the SBOM lists no crates from it"
            )),
        }
        f
    }
}

/// The packages of a `.dep-v0` section: zlib-compressed JSON in
/// cargo-auditable's format (`auditable-serde`'s `VersionInfo`, whose
/// parsing checks the dependency graph), at most [`AUDIT_JSON_LIMIT`]
/// bytes once inflated.
fn audit_packages(compressed: Vec<u8>) -> Result<Vec<RustPackage>, String> {
    use std::io::Read;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(AUDIT_JSON_LIMIT as u64 + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("not zlib data: {e}"))?;
    if json.len() > AUDIT_JSON_LIMIT {
        return Err(format!("more than {AUDIT_JSON_LIMIT} bytes of JSON"));
    }
    let info: auditable_serde::VersionInfo =
        serde_json::from_slice(&json).map_err(|e| format!("not cargo-auditable JSON: {e}"))?;
    let mut list: Vec<RustPackage> = info
        .packages
        .iter()
        .map(|p| RustPackage {
            name: p.name.clone(),
            version: p.version.to_string(),
            source: String::from(p.source.clone()),
            build_only: p.kind == auditable_serde::DependencyKind::Build,
            root: p.root,
        })
        .collect();
    list.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(list)
}

/// A section: where it is in the file.
#[derive(Clone, Copy, Debug)]
struct SectionAt {
    offset: u64,
    size: u64,
}

/// The ELF headers, read by offset: the named sections that hold bytes in
/// the file, and the PT_LOAD segments.
struct ElfIndex {
    sections: Vec<(String, SectionAt)>,
    loads: Vec<(u64, u64, u64)>,
}

impl ElfIndex {
    /// The most headers read (a section or program header table larger
    /// than this is not an ELF file we describe).
    const TABLE_LIMIT: u64 = 16 << 20;

    fn read(bin: &Binary) -> Option<ElfIndex> {
        use goblin::container::{Container, Ctx};
        use goblin::elf::{program_header, section_header, Elf};
        let head = bin.read_at(0, 64.min(bin.size()))?;
        let header = Elf::parse_header(&head).ok()?;
        let container = if header.e_ident[4] == 2 {
            Container::Big
        } else {
            Container::Little
        };
        let ctx = Ctx::new(container, header.endianness().ok()?);
        let table = |off: u64, count: u64, entsize: u16| -> Option<Vec<u8>> {
            let len = count.checked_mul(u64::from(entsize))?;
            if off == 0 || len == 0 {
                return None;
            }
            if len > Self::TABLE_LIMIT {
                return None;
            }
            bin.read_at(off, len)
        };
        let loads = table(
            header.e_phoff,
            u64::from(header.e_phnum),
            header.e_phentsize,
        )
        .and_then(|b| {
            program_header::ProgramHeader::parse(&b, 0, header.e_phnum as usize, ctx).ok()
        })
        .unwrap_or_default()
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .map(|p| (p.p_vaddr, p.p_filesz, p.p_offset))
        .collect();
        let mut sections = Vec::new();
        let shdrs = table(
            header.e_shoff,
            u64::from(header.e_shnum),
            header.e_shentsize,
        )
        .and_then(|b| {
            section_header::SectionHeader::parse_from(&b, 0, header.e_shnum as usize, ctx).ok()
        })
        .unwrap_or_default();
        if let Some(names) = shdrs
            .get(header.e_shstrndx as usize)
            .filter(|s| s.sh_size <= Self::TABLE_LIMIT)
            .and_then(|s| bin.read_at(s.sh_offset, s.sh_size))
        {
            for s in &shdrs {
                if s.sh_type == section_header::SHT_NOBITS {
                    continue;
                }
                let Some(rest) = names.get(s.sh_name..) else {
                    continue;
                };
                let name = &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())];
                sections.push((
                    String::from_utf8_lossy(name).into_owned(),
                    SectionAt {
                        offset: s.sh_offset,
                        size: s.sh_size,
                    },
                ));
            }
        }
        Some(ElfIndex { sections, loads })
    }

    fn section(&self, name: &str) -> Option<SectionAt> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }
}

/// The toolchain the binary names, for the SBOM's description.
pub fn toolchain(f: &Facts) -> Option<String> {
    if let Some(g) = &f.go {
        return Some(format!("go {}", g.go_version));
    }
    if let Some((v, _)) = &f.dotnet {
        return Some(format!(".NET NativeAOT {v}"));
    }
    if let Some(r) = &f.rustc {
        return Some(format!("rustc {r}"));
    }
    f.comments
        .iter()
        .find(|c| c.starts_with("GCC: ") || c.contains("clang version"))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_runtime_version_from_the_nativeaot_comment() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dotnet");
        let bytes = std::fs::read(root.join("console-static/console-static")).unwrap();
        let f = Binary::from_bytes(bytes.clone()).facts("console-static");
        let (v, full) = f.dotnet.clone().unwrap();
        assert_eq!(v, "10.0.12");
        assert!(full.starts_with("10.0.12-servicing"), "{full}");
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert!(f.go.is_none() && f.rust.is_none());
        assert_eq!(toolchain(&f).as_deref(), Some(".NET NativeAOT 10.0.12"));
        assert_eq!(f.size, bytes.len() as u64);
    }

    #[test]
    fn a_corrupt_dep_v0_section_is_a_warning_not_a_failure() {
        // An ELF with a .dep-v0 section holding bytes that are not zlib.
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dotnet");
        let bytes = std::fs::read(root.join("console-static/console-static")).unwrap();
        let e = goblin::elf::Elf::parse(&bytes).unwrap();
        // Rename .comment to .dep-v0 in the section name table: same length
        // (8 bytes), so the file stays well formed.
        let strtab = &e.section_headers[e.header.e_shstrndx as usize];
        let off = strtab.sh_offset as usize;
        let len = strtab.sh_size as usize;
        let at = bytes[off..off + len]
            .windows(9)
            .position(|w| w == b".comment\0")
            .unwrap();
        let mut m = bytes.clone();
        m[off + at..off + at + 8].copy_from_slice(b".dep-v0\0");
        let f = Binary::from_bytes(m).facts("mutated");
        assert!(f.rust.is_none());
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert!(f.warnings[0].contains(".dep-v0"), "{}", f.warnings[0]);
    }

    #[test]
    fn scanning_in_pieces_of_any_size_finds_what_one_pass_finds() {
        // A Go header at an aligned offset just before a 4 MiB boundary, a
        // decoy magic at an unaligned offset before it.
        let blob = crate::go::tests::inline_blob(
            "go1.22.5",
            "path\texample.com/x\nmod\texample.com/x\t(devel)\t\n",
        );
        let mut bytes = vec![0x5au8; (4 << 20) + 4096];
        let decoy = 1000 * 16 + 3;
        bytes[decoy..decoy + crate::go::MAGIC.len()].copy_from_slice(crate::go::MAGIC);
        let at = (4 << 20) - 16;
        bytes[at..at + blob.len()].copy_from_slice(&blob);
        let whole = Binary::from_bytes(bytes.clone());
        assert_eq!(whole.scan().go_header, Some(at as u64));
        for piece in [13, 14, 15, 16, 4093, 1 << 20] {
            let mut s = Scanner::new();
            for p in bytes.chunks(piece) {
                s.update(p);
            }
            assert_eq!(&s.finish(), whole.scan(), "pieces of {piece}");
        }
        assert_eq!(whole.scan().sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(whole.scan().sha1, hex::encode(Sha1::digest(&bytes)));
        // Read by offset from a file, as from memory.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        let from_file = Binary::open(f.path()).unwrap();
        assert_eq!(from_file.scan(), whole.scan());
        let info = crate::go::read_header_at(&from_file, at as u64, || Ok(Vec::new())).unwrap();
        assert_eq!(info.go_version, "go1.22.5");
        assert_eq!(info.path.as_deref(), Some("example.com/x"));
    }
}
