//! Reading an ELF file into [`Evidence`]: the raw facts the checks use.
//!
//! Hostile input is expected. Before goblin sees the bytes, the header and
//! every table it points to are validated against the file length here, with
//! messages that say what is wrong; goblin then runs under `catch_unwind` as
//! a last guard, with the panic message silenced, so no input ever makes the
//! program print a panic.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::program_header::ProgramHeader;
use goblin::elf::{dynamic, program_header as ph, section_header as sh, Elf};

use crate::error::Problem;
use crate::sparse::Loaded;
use crate::work;

/// A program header, as read.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// A section header with its name.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub name: String,
    pub sh_type: u32,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    /// sh_link: the index of an associated section (a symbol table's strings).
    pub link: u32,
    pub entsize: u64,
}

/// A section header as read, before its name is looked up.
struct RawSection {
    name: u32,
    sh_type: u32,
    offset: u64,
    size: u64,
    link: u32,
    align: u64,
    entsize: u64,
}

/// Everything read from the file that a check or a fingerprint looks at.
pub(crate) struct Evidence<'a> {
    /// The whole file, or, from [`crate::sparse`], a buffer of the file's
    /// length holding only the parts `loaded` says were read.
    pub bytes: &'a [u8],
    pub loaded: Loaded<'a>,
    pub class64: bool,
    pub little_endian: bool,
    pub os_abi: u8,
    pub e_type: u16,
    pub e_machine: u16,
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
    pub interpreter: Option<String>,
    pub has_dynamic: bool,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub dt_flags: u64,
    pub dt_flags_1: u64,
    pub dt_textrel: bool,
    pub dt_bind_now: bool,
    pub has_symtab: bool,
    /// The names from [`INTERESTING_SYMBOLS`] and the NSS symbols defined or referenced in
    /// `.symtab` or `.dynsym`.
    pub symbols: BTreeSet<&'static str>,
}

/// Symbols some check or fingerprint asks about. Only these are kept.
pub(crate) const INTERESTING_SYMBOLS: &[&str] = &[
    // glibc / musl fingerprints
    "_dl_relocate_static_pie",
    "__libc_start_main",
    "__init_libc",
    "_dlstart_c",
    "__libc_setup_tls",
    // NSS and friends: crate::checks::NSS_SYMBOLS, looked up beside these
    // gconv
    "iconv_open",
    // run-time loading
    "dlopen",
    // threads (musl's default thread stack is small)
    "pthread_create",
    // .NET NativeAOT
    "DotNetRuntimeDebugHeader",
    // Rust
    "rust_begin_unwind",
    "rust_panic",
    "__rust_alloc",
];

// ELF constants used before goblin runs.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_OSABI: usize = 7;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;

/// The header fields the validation needs, in native types.
pub(crate) struct RawHeader {
    pub class64: bool,
    pub little: bool,
    pub phoff: u64,
    pub shoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
    pub shentsize: u16,
    pub shnum: u16,
    pub shstrndx: u16,
}

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> u16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    }
    fn u32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[at..at + 4]);
        if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }
    fn u64(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        }
    }
}

/// What a file that is not ELF probably is, from its first bytes.
pub(crate) fn guess_non_elf(bytes: &[u8]) -> String {
    let starts = |p: &[u8]| bytes.starts_with(p);
    if starts(b"#!") {
        return "starts with #! \u{2014} a script?".into();
    }
    if starts(b"MZ") {
        return "starts with MZ \u{2014} a Windows executable?".into();
    }
    if starts(&[0xcf, 0xfa, 0xed, 0xfe])
        || starts(&[0xce, 0xfa, 0xed, 0xfe])
        || starts(&[0xca, 0xfe, 0xba, 0xbe])
    {
        return "a Mach-O (macOS) executable or a Java class file?".into();
    }
    if starts(b"!<arch>\n") {
        return "an `ar` archive \u{2014} a static library (.a), not an executable".into();
    }
    if starts(b"PK\x03\x04") {
        return "a zip archive (.zip, .jar, .nupkg)?".into();
    }
    if starts(&[0x1f, 0x8b]) {
        return "a gzip-compressed file?".into();
    }
    if bytes.len() >= 262 && &bytes[257..262] == b"ustar" {
        return "a tar archive?".into();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    if bytes
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let shown = String::from_utf8_lossy(&first_line[..first_line.len().min(24)]);
        return format!("looks like text starting with {shown:?}, not a compiled program");
    }
    format!("starts with bytes {}, not 7f 45 4c 46", head.join(" "))
}

/// Checks the identification bytes and the header, and that the program and
/// section header tables lie inside the file.
pub(crate) fn validate_header(bytes: &[u8]) -> Result<RawHeader, Problem> {
    let len = bytes.len() as u64;
    if bytes.is_empty() {
        return Err(Problem::Empty);
    }
    if !bytes.starts_with(b"\x7fELF") {
        if b"\x7fELF".starts_with(bytes) {
            return Err(Problem::Truncated(format!(
                "only {len} bytes, the ELF header needs at least 52"
            )));
        }
        return Err(Problem::NotElf(guess_non_elf(bytes)));
    }
    if bytes.len() < 16 {
        return Err(Problem::Truncated(format!(
            "only {len} bytes, the ELF header needs at least 52"
        )));
    }
    let class64 = match bytes[EI_CLASS] {
        ELFCLASS32 => false,
        ELFCLASS64 => true,
        c => {
            return Err(Problem::Malformed(format!(
                "unknown ELF class {c} (expected 1 or 2)"
            )))
        }
    };
    let little = match bytes[EI_DATA] {
        ELFDATA2LSB => true,
        ELFDATA2MSB => false,
        d => {
            return Err(Problem::Malformed(format!(
                "unknown ELF data encoding {d} (expected 1 or 2)"
            )))
        }
    };
    let ehsize: u64 = if class64 { 64 } else { 52 };
    if len < ehsize {
        return Err(Problem::Truncated(format!(
            "only {len} bytes, the {}-bit ELF header needs {ehsize}",
            if class64 { 64 } else { 32 }
        )));
    }
    let r = Reader { bytes, little };
    let (phoff, shoff, rest) = if class64 {
        (r.u64(32), r.u64(40), 48 + 4)
    } else {
        (u64::from(r.u32(28)), u64::from(r.u32(32)), 36 + 4)
    };
    // rest points at e_ehsize; then phentsize, phnum, shentsize, shnum, shstrndx.
    let h = RawHeader {
        class64,
        little,
        phoff,
        shoff,
        phentsize: r.u16(rest + 2),
        phnum: r.u16(rest + 4),
        shentsize: r.u16(rest + 6),
        shnum: r.u16(rest + 8),
        shstrndx: r.u16(rest + 10),
    };
    let (want_ph, want_sh) = if class64 { (56u16, 64u16) } else { (32, 40) };
    if h.phnum > 0 {
        if h.phentsize != want_ph {
            return Err(Problem::Malformed(format!(
                "program header entry size is {} bytes, expected {want_ph}",
                h.phentsize
            )));
        }
        check_table(len, "program header table", h.phoff, h.phnum, want_ph)?;
    }
    if h.shoff != 0 {
        if h.shentsize != want_sh && h.shnum > 0 {
            return Err(Problem::Malformed(format!(
                "section header entry size is {} bytes, expected {want_sh}",
                h.shentsize
            )));
        }
        // shnum 0 with shoff set means the count is in section 0's sh_size.
        check_table(
            len,
            "section header table",
            h.shoff,
            h.shnum.max(1),
            want_sh,
        )?;
    }
    Ok(h)
}

fn check_table(len: u64, what: &str, off: u64, count: u16, entsize: u16) -> Result<(), Problem> {
    let end = u64::from(count)
        .checked_mul(u64::from(entsize))
        .and_then(|size| size.checked_add(off));
    match end {
        Some(end) if end <= len => Ok(()),
        _ => Err(Problem::Malformed(format!(
            "{what} ({count} entries of {entsize} bytes at offset {off}) extends past the end of the file ({len} bytes): the file is truncated or corrupt"
        ))),
    }
}

/// Reads the program and section headers ourselves (bounds already
/// checked), and checks that every segment and section lies inside the file.
pub(crate) fn validate_tables(
    bytes: &[u8],
    h: &RawHeader,
) -> Result<(Vec<Segment>, Vec<Section>), Problem> {
    let segments = read_segments(bytes, h)?;
    let raw = read_section_headers(bytes, h)?;
    let sections = name_sections(bytes, h, &raw)?;
    Ok((segments, sections))
}

/// The program headers, each checked to lie inside the file.
pub(crate) fn read_segments(bytes: &[u8], h: &RawHeader) -> Result<Vec<Segment>, Problem> {
    let len = bytes.len() as u64;
    let r = Reader {
        bytes,
        little: h.little,
    };
    let mut segments = Vec::with_capacity(usize::from(h.phnum));
    work::add(u64::from(h.phnum));
    for i in 0..usize::from(h.phnum) {
        let at = h.phoff as usize + i * usize::from(h.phentsize);
        let seg = if h.class64 {
            Segment {
                p_type: r.u32(at),
                flags: r.u32(at + 4),
                offset: r.u64(at + 8),
                filesz: r.u64(at + 32),
                memsz: r.u64(at + 40),
                align: r.u64(at + 48),
            }
        } else {
            Segment {
                p_type: r.u32(at),
                offset: u64::from(r.u32(at + 4)),
                filesz: u64::from(r.u32(at + 16)),
                memsz: u64::from(r.u32(at + 20)),
                flags: r.u32(at + 24),
                align: u64::from(r.u32(at + 28)),
            }
        };
        let inside = seg
            .offset
            .checked_add(seg.filesz)
            .is_some_and(|end| end <= len);
        if !inside {
            return Err(Problem::Malformed(format!(
                "segment {i} ({}) at offset {} with {} bytes extends past the end of the file ({len} bytes): the file is truncated or corrupt",
                segment_type_name(seg.p_type),
                seg.offset,
                seg.filesz
            )));
        }
        segments.push(seg);
    }
    Ok(segments)
}

/// Size of one section header.
pub(crate) fn section_header_size(h: &RawHeader) -> u64 {
    if h.class64 {
        64
    } else {
        40
    }
}

/// One section header entry `i` (the table is known to hold it).
fn read_section_header(r: &Reader<'_>, h: &RawHeader, i: usize) -> RawSection {
    let at = h.shoff as usize + i * section_header_size(h) as usize;
    if h.class64 {
        RawSection {
            name: r.u32(at),
            sh_type: r.u32(at + 4),
            offset: r.u64(at + 24),
            size: r.u64(at + 32),
            link: r.u32(at + 40),
            align: r.u64(at + 48),
            entsize: r.u64(at + 56),
        }
    } else {
        RawSection {
            name: r.u32(at),
            sh_type: r.u32(at + 4),
            offset: u64::from(r.u32(at + 16)),
            size: u64::from(r.u32(at + 20)),
            link: r.u32(at + 24),
            align: u64::from(r.u32(at + 32)),
            entsize: u64::from(r.u32(at + 36)),
        }
    }
}

/// The number of section headers: e_shnum, or with extended numbering
/// (e_shnum 0, e_shoff set) the sh_size of section 0.
pub(crate) fn section_header_count(bytes: &[u8], h: &RawHeader) -> u64 {
    if h.shoff == 0 {
        return 0;
    }
    if h.shnum != 0 {
        return u64::from(h.shnum);
    }
    let r = Reader {
        bytes,
        little: h.little,
    };
    read_section_header(&r, h, 0).size
}

/// The section header table, checked to lie inside the file.
fn read_section_headers(bytes: &[u8], h: &RawHeader) -> Result<Vec<RawSection>, Problem> {
    let len = bytes.len() as u64;
    let r = Reader {
        bytes,
        little: h.little,
    };
    let count = section_header_count(bytes, h);
    if h.shoff != 0 && h.shnum == 0 {
        let fits = count
            .checked_mul(section_header_size(h))
            .and_then(|s| s.checked_add(h.shoff))
            .is_some_and(|end| end <= len);
        if !fits {
            return Err(Problem::Malformed(format!(
                "section header table ({count} entries at offset {}) extends past the end of the file ({len} bytes): the file is truncated or corrupt",
                h.shoff
            )));
        }
    }
    Ok((0..count as usize)
        .map(|i| read_section_header(&r, h, i))
        .collect())
}

/// Index of the section-name string table.
fn shstrtab_index(h: &RawHeader, raw: &[RawSection]) -> usize {
    if h.shstrndx == 0xffff {
        raw.first().map(|s| s.link as usize).unwrap_or(0)
    } else {
        usize::from(h.shstrndx)
    }
}

/// The file range of the section-name string table, if it is sane.
fn shstrtab_range(len: u64, h: &RawHeader, raw: &[RawSection]) -> Option<(u64, u64)> {
    let s = raw.get(shstrtab_index(h, raw))?;
    let end = s.offset.checked_add(s.size).filter(|e| *e <= len)?;
    (s.sh_type != sh::SHT_NOBITS).then_some((s.offset, end))
}

/// Where the section header e_shstrndx designates says the names are,
/// whatever its type (goblin reads it regardless), for the sparse reader,
/// which loads it before names are looked up.
pub(crate) fn section_names_range(bytes: &[u8], h: &RawHeader) -> Option<(u64, u64)> {
    let raw = read_section_headers(bytes, h).ok()?;
    let s = raw.get(shstrtab_index(h, &raw))?;
    Some((s.offset, s.offset.saturating_add(s.size)))
}

/// How many bytes of a section name are read; longer names are cut (no
/// name a check looks for is anywhere near this long).
const MAX_SECTION_NAME: usize = 256;

/// Looks up section names and checks every section lies inside the file.
fn name_sections(bytes: &[u8], h: &RawHeader, raw: &[RawSection]) -> Result<Vec<Section>, Problem> {
    let len = bytes.len() as u64;
    // Section names, if the name table itself is sane.
    let strtab: &[u8] = match shstrtab_range(len, h, raw) {
        Some((start, end)) => &bytes[start as usize..end as usize],
        None => &[],
    };
    let mut sections = Vec::with_capacity(raw.len());
    work::add_usize(raw.len());
    for (i, s) in raw.iter().enumerate() {
        work::add_usize(MAX_SECTION_NAME / 8);
        // Names are looked at no further than MAX_SECTION_NAME bytes: every
        // section may name the same offset of a huge table without a NUL,
        // and the work must stay linear in the file size (issue 9).
        let name = strtab
            .get(s.name as usize..)
            .map(|s| {
                let s = &s[..s.len().min(MAX_SECTION_NAME)];
                let end = memchr::memchr(0, s).unwrap_or(s.len());
                String::from_utf8_lossy(&s[..end]).into_owned()
            })
            .unwrap_or_default();
        let (sh_type, offset, size) = (s.sh_type, s.offset, s.size);
        if sh_type != sh::SHT_NOBITS && sh_type != sh::SHT_NULL && size > 0 {
            let inside = offset.checked_add(size).is_some_and(|end| end <= len);
            if !inside {
                let label = if name.is_empty() {
                    String::new()
                } else {
                    format!(" ({name})")
                };
                return Err(Problem::Malformed(format!(
                    "section {i}{label} at offset {offset} with {size} bytes extends past the end of the file ({len} bytes): the file is truncated or corrupt"
                )));
            }
        }
        sections.push(Section {
            name,
            sh_type,
            offset,
            size,
            align: s.align,
            link: s.link,
            entsize: s.entsize,
        });
    }
    Ok(sections)
}

pub(crate) fn segment_type_name(t: u32) -> String {
    match t {
        ph::PT_NULL => "NULL".into(),
        ph::PT_LOAD => "LOAD".into(),
        ph::PT_DYNAMIC => "DYNAMIC".into(),
        ph::PT_INTERP => "INTERP".into(),
        ph::PT_NOTE => "NOTE".into(),
        ph::PT_PHDR => "PHDR".into(),
        ph::PT_TLS => "TLS".into(),
        ph::PT_GNU_EH_FRAME => "GNU_EH_FRAME".into(),
        ph::PT_GNU_STACK => "GNU_STACK".into(),
        ph::PT_GNU_RELRO => "GNU_RELRO".into(),
        ph::PT_GNU_PROPERTY => "GNU_PROPERTY".into(),
        other => format!("type {other:#x}"),
    }
}

thread_local! {
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that stays silent while this thread is
/// inside [`quietly`], and defers to the previous hook otherwise.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into `None` without printing anything.
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    install_quiet_hook();
    QUIET_PANICS.with(|q| q.set(true));
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    out.ok()
}

/// What goblin reads of the dynamic table (where the string, relocation,
/// hash and symbol tables are), from the program headers and PT_DYNAMIC
/// alone; None without a readable one.
pub(crate) fn dynamic_info(bytes: &[u8], h: &RawHeader) -> Option<dynamic::DynamicInfo> {
    let ctx = Ctx::new(
        if h.class64 {
            Container::Big
        } else {
            Container::Little
        },
        if h.little {
            Endian::Little
        } else {
            Endian::Big
        },
    );
    quietly(|| {
        let phdrs =
            ProgramHeader::parse(bytes, h.phoff as usize, usize::from(h.phnum), ctx).ok()?;
        work::add_usize(phdrs.len());
        let d = dynamic::Dynamic::parse(bytes, &phdrs, ctx).ok()??;
        work::add_usize(d.dyns.len());
        Some(d.info)
    })?
}

/// Checks what goblin would read through the dynamic table without bounds
/// checks of its own: the DT_GNU_HASH header (goblin adds to its offset
/// unchecked, which overflowed on a crafted table, issue 9).
fn validate_dynamic(bytes: &[u8], h: &RawHeader, segments: &[Segment]) -> Result<(), Problem> {
    if !segments.iter().any(|s| s.p_type == ph::PT_DYNAMIC) {
        return Ok(());
    }
    let len = bytes.len() as u64;
    if let Some(at) = dynamic_info(bytes, h).and_then(|i| i.gnu_hash) {
        let inside = at.checked_add(16).is_some_and(|end| end <= len);
        if !inside {
            return Err(Problem::Malformed(format!(
                "the GNU hash table (DT_GNU_HASH) at offset {at} extends past the end of the file ({len} bytes): the file is truncated or corrupt"
            )));
        }
    }
    Ok(())
}

/// Validates `bytes` and reads the evidence from them.
pub(crate) fn parse(bytes: &[u8]) -> Result<Evidence<'_>, Problem> {
    let h = validate_header(bytes)?;
    let (segments, sections) = validate_tables(bytes, &h)?;
    validate_dynamic(bytes, &h, &segments)?;
    let elf = match quietly(|| Elf::parse(bytes)) {
        None => {
            return Err(Problem::Malformed(
                "the ELF parser could not make sense of it (internal parser failure)".into(),
            ))
        }
        Some(Err(e)) => return Err(Problem::Malformed(one_line(&e.to_string()))),
        Some(Ok(elf)) => elf,
    };
    let extracted = quietly(|| extract(bytes, &elf, segments, sections));
    extracted
        .ok_or_else(|| Problem::Malformed("inconsistent tables (internal parser failure)".into()))
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn extract<'a>(
    bytes: &'a [u8],
    elf: &Elf<'a>,
    segments: Vec<Segment>,
    sections: Vec<Section>,
) -> Evidence<'a> {
    let interpreter = segments
        .iter()
        .find(|s| s.p_type == ph::PT_INTERP)
        .map(|s| {
            let raw = &bytes[s.offset as usize..(s.offset + s.filesz) as usize];
            let end = memchr::memchr(0, raw).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        });
    let mut symbols = BTreeSet::new();
    let mut note = |name: Option<&str>| {
        if let Some(n) = name {
            // Strip symbol versions like `dlopen@GLIBC_2.34`.
            let n = n.split('@').next().unwrap_or(n);
            if let Some(known) = INTERESTING_SYMBOLS
                .iter()
                .chain(crate::checks::NSS_SYMBOLS)
                .find(|k| **k == n)
            {
                symbols.insert(*known);
            }
        }
    };
    // goblin's work is linear in what it returns.
    work::add_usize(
        elf.syms.len()
            + elf.dynsyms.len()
            + elf.section_headers.len()
            + elf.program_headers.len()
            + elf.libraries.len()
            + elf.dynamic.as_ref().map_or(0, |d| d.dyns.len()),
    );
    for sym in elf.syms.iter() {
        note(elf.strtab.get_at(sym.st_name));
    }
    for sym in elf.dynsyms.iter() {
        note(elf.dynstrtab.get_at(sym.st_name));
    }
    let (mut dt_flags, mut dt_flags_1, mut dt_textrel, mut dt_bind_now) = (0, 0, false, false);
    if let Some(d) = &elf.dynamic {
        dt_flags = d.info.flags;
        dt_flags_1 = d.info.flags_1;
        dt_textrel = d.info.textrel || d.dyns.iter().any(|x| x.d_tag == dynamic::DT_TEXTREL);
        dt_bind_now = d.dyns.iter().any(|x| x.d_tag == dynamic::DT_BIND_NOW);
    }
    let header = &elf.header;
    Evidence {
        bytes,
        loaded: Loaded::All,
        class64: elf.is_64,
        little_endian: elf.little_endian,
        os_abi: header.e_ident[EI_OSABI],
        e_type: header.e_type,
        e_machine: header.e_machine,
        entry: header.e_entry,
        has_dynamic: elf.dynamic.is_some(),
        interpreter,
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        soname: elf.soname.map(str::to_string),
        rpath: elf.rpaths.iter().map(|s| s.to_string()).collect(),
        runpath: elf.runpaths.iter().map(|s| s.to_string()).collect(),
        dt_flags,
        dt_flags_1,
        dt_textrel,
        dt_bind_now,
        has_symtab: sections.iter().any(|s| s.sh_type == sh::SHT_SYMTAB),
        symbols,
        segments,
        sections,
    }
}

impl<'a> Evidence<'a> {
    /// The file bytes `start..end`, or None if that is not inside the file.
    ///
    /// Every read of file contents by a check goes through here or
    /// [`Self::segment_bytes`]: debug builds check that the sparse reader
    /// loaded the range (else it would silently read zeros; see sparse.rs).
    pub fn range(&self, start: u64, end: u64) -> Option<&'a [u8]> {
        let b = self
            .bytes
            .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)?;
        debug_assert!(
            self.loaded.contains(start, end),
            "verify reads bytes {start}..{end}, which sparse.rs does not load"
        );
        Some(b)
    }

    /// The bytes of the first section called `name` (empty for NOBITS).
    pub fn section(&self, name: &str) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| s.name == name)?;
        if s.sh_type == sh::SHT_NOBITS {
            return Some(&[]);
        }
        self.range(s.offset, s.offset.saturating_add(s.size))
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name == name)
    }

    pub fn segment(&self, p_type: u32) -> Option<&Segment> {
        self.segments.iter().find(|s| s.p_type == p_type)
    }

    /// Bytes of a segment's file image.
    pub fn segment_bytes(&self, s: &Segment) -> &'a [u8] {
        self.range(s.offset, s.offset + s.filesz)
            .expect("segments are checked to lie inside the file")
    }

    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbols.contains(name)
    }

    pub fn is_pie_flagged(&self) -> bool {
        self.dt_flags_1 & dynamic::DF_1_PIE != 0
    }

    pub fn text_relocations(&self) -> bool {
        self.dt_textrel || self.dt_flags & dynamic::DF_TEXTREL != 0
    }

    pub fn bind_now(&self) -> bool {
        self.dt_bind_now
            || self.dt_flags & dynamic::DF_BIND_NOW != 0
            || self.dt_flags_1 & dynamic::DF_1_NOW != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal_elf64() -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
        b
    }

    fn err(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(p) => p.at("f").to_string(),
        }
    }

    #[test]
    fn empty_and_not_elf() {
        assert_eq!(err(b""), "f: empty file (0 bytes), not an executable");
        assert_eq!(
            err(b"#!/bin/sh\necho hi\n"),
            "f: not an ELF file (starts with #! \u{2014} a script?)"
        );
        assert!(err(b"MZ\x90\x00").contains("Windows"));
        assert!(err(b"!<arch>\nxx").contains("static library"));
        assert!(err(&[1, 2, 3, 4, 5]).contains("starts with bytes 01 02 03 04"));
        assert_eq!(
            err(b"root:x:0:0:root:/root:/bin/bash\ndaemon"),
            "f: not an ELF file (looks like text starting with \"root:x:0:0:root:/root:/b\", not a compiled program)"
        );
    }

    #[test]
    fn truncated_header() {
        assert!(err(b"\x7fEL").contains("truncated"));
        let b = minimal_elf64();
        assert!(
            err(&b[..40]).contains("truncated ELF file: only 40 bytes"),
            "{}",
            err(&b[..40])
        );
    }

    #[test]
    fn bad_class_and_encoding() {
        let mut b = minimal_elf64();
        b[4] = 9;
        assert!(err(&b).contains("unknown ELF class 9"));
        let mut b = minimal_elf64();
        b[5] = 0;
        assert!(err(&b).contains("data encoding"));
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        let mut b = minimal_elf64();
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[56..58].copy_from_slice(&0xffffu16.to_le_bytes()); // e_phnum
        let e = err(&b);
        assert!(e.contains("program header table (65535 entries"), "{e}");
        let mut b = minimal_elf64();
        b[40..48].copy_from_slice(&64u64.to_le_bytes());
        b[60..62].copy_from_slice(&0xffffu16.to_le_bytes()); // e_shnum
        let e = err(&b);
        assert!(e.contains("section header table (65535 entries"), "{e}");
        let mut b = minimal_elf64();
        b[40..48].copy_from_slice(&u64::MAX.to_le_bytes()); // e_shoff
        b[60..62].copy_from_slice(&3u16.to_le_bytes());
        assert!(err(&b).contains("extends past the end"));
    }

    #[test]
    fn extended_section_count_is_checked() {
        // shnum 0 with a section 0 claiming 2^40 sections.
        let mut b = minimal_elf64();
        b[40..48].copy_from_slice(&64u64.to_le_bytes());
        let mut s0 = vec![0u8; 64];
        s0[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        b.extend_from_slice(&s0);
        let e = err(&b);
        assert!(
            e.contains("section header table (1099511627776 entries"),
            "{e}"
        );
    }

    #[test]
    fn section_past_end_of_file() {
        let mut b = minimal_elf64();
        b[40..48].copy_from_slice(&64u64.to_le_bytes());
        b[60..62].copy_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&[0u8; 64]); // null section
        let mut s1 = vec![0u8; 64];
        s1[4..8].copy_from_slice(&1u32.to_le_bytes()); // PROGBITS
        s1[24..32].copy_from_slice(&100u64.to_le_bytes()); // offset
        s1[32..40].copy_from_slice(&1_000_000u64.to_le_bytes()); // size
        b.extend_from_slice(&s1);
        let e = err(&b);
        assert!(
            e.contains("section 1 at offset 100 with 1000000 bytes extends past the end"),
            "{e}"
        );
    }

    #[test]
    fn segment_past_end_of_file() {
        let mut b = minimal_elf64();
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        p[8..16].copy_from_slice(&0u64.to_le_bytes());
        p[32..40].copy_from_slice(&(1u64 << 62).to_le_bytes()); // filesz
        b.extend_from_slice(&p);
        let e = err(&b);
        assert!(e.contains("segment 0 (LOAD)"), "{e}");
    }

    #[test]
    fn garbage_after_magic_never_panics() {
        // A cheap deterministic fuzz: flip bytes of a small valid header.
        let mut seed = 0x1234_5678_u64;
        for _ in 0..2000 {
            let mut b = minimal_elf64();
            b.extend((0..200).map(|i| (i * 7) as u8));
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 4 + (seed as usize % (b.len() - 4));
                b[at] = (seed >> 32) as u8;
            }
            let _ = parse(&b);
        }
    }
}
