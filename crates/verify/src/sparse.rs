//! Verifying a file without holding it in memory.
//!
//! `pack` runs verify on binaries of hundreds of megabytes, and its peak
//! memory must not grow with the binary (issue 2: a 500 MB binary packs in
//! under 64 MB of RSS). Almost all of such a file is the contents of its
//! PT_LOAD segments (code, read-only data, an embedded payload, DWARF), which
//! no check looks at; what the checks and goblin read is the headers and a
//! few small tables. But goblin parses from one `&[u8]` of the whole file.
//!
//! So [`SparseFile`] gives the parser a buffer of the file's full length that
//! holds only the parts that are read. The buffer is `vec![0; len]`, which is
//! calloc: a large allocation is fresh anonymous memory that takes no RSS
//! until written, and reading an untouched page maps the kernel's shared zero
//! page. [`load`] then copies in, page by page, exactly what is read:
//!
//! - the ELF header, the program and section header tables, and the
//!   section-name string table (validation in parse.rs);
//! - every section except PROGBITS, NOBITS and processor- or user-specific
//!   ones (symbol and string tables, dynamic, notes, relocations, hash and
//!   version tables: what goblin reads), the sections they link to, and the
//!   PROGBITS sections checks read by name (`.comment`, `.gnu_debuglink`,
//!   `.go.buildinfo`); a symbol table as far as goblin reads it;
//! - the PT_INTERP, PT_DYNAMIC and PT_NOTE segments;
//! - what goblin reads through the dynamic table (which locates tables by
//!   address, and sections may be stripped): the dynamic string table, the
//!   relocations, the hash table and the dynamic symbols;
//! - for a binary without section headers, the Go build info at the magic
//!   the string scan found.
//!
//! Searching strings over the whole file (fingerprint.rs) is done once,
//! separately, by streaming the file through a small buffer ([`scan`]).
//!
//! The invariant that keeps results identical to reading the whole file:
//! every byte validation, goblin or a check reads must be loaded. Checks read
//! file contents only through `Evidence::range` and friends, which assert
//! this in debug builds; tests/verify.rs compares `verify_file` with
//! `verify_bytes` on every corpus binary.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::Dynamic;
use goblin::elf::program_header::{self as ph, ProgramHeader};
use goblin::elf::section_header as sh;
use goblin::elf::Elf;

use crate::fingerprint::{self, Strings};
use crate::parse::{self, RawHeader, Section, Segment};

/// The unit of loading (tests use 1 byte, to check that exactly what is
/// read gets loaded).
pub(crate) const PAGE: u64 = 4096;

/// Bytes the string scan reads at a time.
const SCAN_CHUNK: usize = 1 << 20;

/// Sections read by name (see fingerprint.rs and checks.rs).
const READ_BY_NAME: &[&str] = &[".comment", ".gnu_debuglink", ".go.buildinfo"];

/// Which bytes of an evidence buffer hold the file's contents.
#[derive(Clone, Copy)]
pub(crate) enum Loaded<'a> {
    /// All of them (the whole file was given).
    All,
    /// One flag per `size` bytes.
    Pages { size: u64, flags: &'a [bool] },
}

impl Loaded<'_> {
    pub fn contains(&self, start: u64, end: u64) -> bool {
        match *self {
            Loaded::All => true,
            Loaded::Pages { .. } if start >= end => true,
            Loaded::Pages { size, flags } => (start / size..=(end - 1) / size)
                .all(|i| flags.get(i as usize).copied().unwrap_or(false)),
        }
    }
}

/// A file of `len` bytes of which only some pages have been read.
pub(crate) struct SparseFile {
    file: File,
    buf: Vec<u8>,
    page: u64,
    pages: Vec<bool>,
}

impl SparseFile {
    /// A file of `len` bytes, loaded `page` bytes at a time.
    pub fn new(file: File, len: u64, page: u64) -> io::Result<SparseFile> {
        let len = usize::try_from(len).map_err(|_| {
            io::Error::other("the file is too large for this machine's address space")
        })?;
        Ok(SparseFile {
            file,
            // calloc: untouched pages cost no memory (see the module doc).
            buf: vec![0u8; len],
            page,
            pages: vec![false; len.div_ceil(page as usize)],
        })
    }

    fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Reads the pages holding `start..end` (clamped to the file) that are
    /// not read yet.
    pub fn load(&mut self, start: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.len());
        if start >= end {
            return Ok(());
        }
        let (first, last) = (
            (start / self.page) as usize,
            ((end - 1) / self.page) as usize,
        );
        let mut page = first;
        while page <= last {
            if self.pages[page] {
                page += 1;
                continue;
            }
            let run = page;
            while page <= last && !self.pages[page] {
                page += 1;
            }
            let from = run as u64 * self.page;
            let to = (page as u64 * self.page).min(self.len());
            self.file.seek(SeekFrom::Start(from))?;
            self.file
                .read_exact(&mut self.buf[from as usize..to as usize])?;
            self.pages[run..page].fill(true);
        }
        Ok(())
    }

    /// Loads `at..at + len`.
    fn load_len(&mut self, at: u64, len: u64) -> io::Result<()> {
        self.load(at, at.saturating_add(len))
    }

    pub fn is_loaded(&self, start: u64, end: u64) -> bool {
        self.loaded().contains(start, end.min(self.len()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn loaded(&self) -> Loaded<'_> {
        Loaded::Pages {
            size: self.page,
            flags: &self.pages,
        }
    }

    /// Streams the whole file through a small buffer, once, for the string
    /// scan; nothing is kept.
    pub fn scan(&mut self) -> io::Result<Strings> {
        let mut strings = Strings::default();
        let overlap = Strings::OVERLAP;
        let mut window = vec![0u8; overlap + SCAN_CHUNK];
        self.file.seek(SeekFrom::Start(0))?;
        let (mut start, mut have) = (0u64, 0usize); // file offset of window[0], bytes in it
        loop {
            let n = self.file.read(&mut window[have..])?;
            if n == 0 {
                break;
            }
            have += n;
            if have < window.len() {
                continue; // fill the window before scanning it
            }
            strings.scan(&window, start);
            window.copy_within(have - overlap.., 0);
            start += (have - overlap) as u64;
            have = overlap;
        }
        if start == 0 || have > overlap {
            strings.scan(&window[..have], start);
        }
        Ok(strings)
    }
}

/// Loads into `f` everything `parse::parse` and the checks will read (see
/// the module doc). Stops early, without error, where validation fails:
/// parsing the buffer then reports the same problem, having read only
/// bytes loaded up to that point.
pub(crate) fn load(f: &mut SparseFile, strings: &Strings) -> io::Result<()> {
    let len = f.len();
    // The header, and enough of the start for guess_non_elf's message.
    f.load(0, PAGE)?;
    let Ok(h) = parse::validate_header(f.bytes()) else {
        return Ok(());
    };
    // Both tables were checked to lie inside the file.
    f.load_len(h.phoff, u64::from(h.phnum) * u64::from(h.phentsize))?;
    if h.shoff != 0 {
        let entry = parse::section_header_size(&h);
        f.load_len(h.shoff, entry)?; // section 0: the count, if extended
        let count = parse::section_header_count(f.bytes(), &h);
        if let Some(size) = count.checked_mul(entry) {
            if h.shoff.checked_add(size).is_some_and(|end| end <= len) {
                f.load_len(h.shoff, size)?;
            }
        }
    }
    if let Some((start, end)) = parse::section_names_range(f.bytes(), &h) {
        f.load(start, end)?;
    }
    let Ok((segments, sections)) = parse::validate_tables(f.bytes(), &h) else {
        return Ok(());
    };

    for s in &segments {
        if matches!(s.p_type, ph::PT_INTERP | ph::PT_DYNAMIC | ph::PT_NOTE) {
            f.load_len(s.offset, s.filesz)?;
        }
    }
    for s in &sections {
        if is_read(s) {
            f.load_len(s.offset, s.size)?;
            // goblin reads a symbol table's strings whatever their type
            // (SHN_XINDEX: the index is section 0's sh_link).
            let link = match s.link {
                0xffff => sections.first().map_or(0, |s0| s0.link),
                l => l,
            };
            if let Some(linked) = sections.get(link as usize) {
                f.load_len(linked.offset, linked.size)?;
            }
        }
        if s.sh_type == sh::SHT_SYMTAB && s.entsize > 0 {
            // goblin reads size / entsize symbols of its own size.
            f.load_len(s.offset, (s.size / s.entsize).saturating_mul(sym_size(&h)))?;
        }
    }
    if sections.is_empty() {
        if let Some(at) = strings.go_magic {
            load_buildinfo(f, at)?;
        }
    }
    load_dynamic(f, &h, &segments)
}

/// Whether the checks or goblin read this section's contents: not code or
/// data (PROGBITS, unless a check reads it by name), nor processor- or
/// user-specific sections (such as x86-64 unwind tables).
fn is_read(s: &Section) -> bool {
    if READ_BY_NAME.contains(&s.name.as_str()) {
        return s.sh_type != sh::SHT_NOBITS;
    }
    match s.sh_type {
        sh::SHT_NOBITS | sh::SHT_NULL | sh::SHT_PROGBITS => false,
        t => t < sh::SHT_LOPROC,
    }
}

fn sym_size(h: &RawHeader) -> u64 {
    if h.class64 {
        24
    } else {
        16
    }
}

/// Loads the Go build info at `at` as far as `go_info` reads it. How far
/// depends on lengths stored in it, so: load what the loaded bytes say is
/// needed until that is all loaded (each round reads new bytes; the answer
/// is right once every byte it looked at was loaded).
fn load_buildinfo(f: &mut SparseFile, at: u64) -> io::Result<()> {
    loop {
        let extent = fingerprint::buildinfo_extent(&f.bytes()[at as usize..]) as u64;
        if f.is_loaded(at, at + extent) {
            return Ok(());
        }
        f.load_len(at, extent)?;
    }
}

/// Loads what goblin reads through the dynamic table (`Elf::parse`): it
/// finds the tables by address, through the PT_LOAD segments, whatever the
/// section headers say.
fn load_dynamic(f: &mut SparseFile, h: &RawHeader, segments: &[Segment]) -> io::Result<()> {
    if !segments.iter().any(|s| s.p_type == ph::PT_DYNAMIC) {
        return Ok(());
    }
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
    // The program headers and PT_DYNAMIC are loaded, so this is exact.
    let bytes = f.bytes();
    let info = parse::quietly(|| {
        let phdrs =
            ProgramHeader::parse(bytes, h.phoff as usize, usize::from(h.phnum), ctx).ok()?;
        Dynamic::parse(bytes, &phdrs, ctx).ok()?.map(|d| d.info)
    });
    let Some(Some(info)) = info else {
        return Ok(());
    };
    let u = |x: usize| x as u64;
    f.load_len(u(info.strtab), u(info.strsz))?;
    f.load_len(u(info.rela), u(info.relasz))?;
    f.load_len(u(info.rel), u(info.relsz))?;
    f.load_len(u(info.jmprel), u(info.pltrelsz))?;
    if let Some(at) = info.gnu_hash {
        load_gnu_hash(f, at, h)?;
    } else if let Some(at) = info.hash {
        f.load_len(at.saturating_add(4), 8)?; // nchain (u32, or u64 on s390x)
    }
    // The number of dynamic symbols comes from the hash table and the
    // relocations, now loaded: let goblin count them.
    let bytes = f.bytes();
    let count = parse::quietly(|| Elf::parse(bytes).ok().map(|e| e.dynsyms.len()));
    if let Some(Some(count)) = count {
        f.load_len(u(info.symtab), (count as u64).saturating_mul(sym_size(h)))?;
    }
    Ok(())
}

/// Loads what goblin's `gnu_hash_len` reads of a DT_GNU_HASH table at `at`:
/// the header, the bloom filter size, the buckets, and the chain of the
/// last bucket up to its end marker (an odd hash).
fn load_gnu_hash(f: &mut SparseFile, at: u64, h: &RawHeader) -> io::Result<()> {
    let len = f.len();
    let read = |f: &mut SparseFile, at: u64| -> io::Result<Option<u32>> {
        let Some(end) = at.checked_add(4).filter(|e| *e <= len) else {
            return Ok(None);
        };
        f.load(at, end)?;
        let b: [u8; 4] = f.bytes()[at as usize..end as usize].try_into().unwrap();
        Ok(Some(if h.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    f.load_len(at, 16)?;
    let (Some(buckets), Some(min_chain), Some(bloom)) =
        (read(f, at)?, read(f, at + 4)?, read(f, at + 8)?)
    else {
        return Ok(());
    };
    let (buckets, min_chain, bloom) = (u64::from(buckets), u64::from(min_chain), u64::from(bloom));
    if buckets == 0 || min_chain == 0 || bloom == 0 {
        return Ok(());
    }
    let word = if h.class64 { 8 } else { 4 };
    let buckets_at = at
        .saturating_add(16)
        .saturating_add(bloom.saturating_mul(word));
    f.load_len(buckets_at, buckets.saturating_mul(4))?;
    let mut max_chain = 0;
    for i in 0..buckets {
        match read(f, buckets_at.saturating_add(i * 4))? {
            Some(chain) => max_chain = max_chain.max(u64::from(chain)),
            None => return Ok(()), // goblin fails here
        }
    }
    if max_chain < min_chain {
        return Ok(());
    }
    let mut chain_at = buckets_at
        .saturating_add(buckets * 4)
        .saturating_add((max_chain - min_chain) * 4);
    while let Some(hash) = read(f, chain_at)? {
        if hash & 1 != 0 {
            break;
        }
        chain_at += 4;
    }
    Ok(())
}
