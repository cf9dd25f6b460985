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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use goblin::elf::program_header as ph;
use goblin::elf::section_header as sh;
use goblin::elf::Elf;

use crate::fingerprint::{self, Strings};
use crate::parse::{self, RawHeader, Section, Segment};
use crate::work;

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
    /// The ranges in the set.
    Ranges(&'a Ranges),
}

impl Loaded<'_> {
    pub fn contains(&self, start: u64, end: u64) -> bool {
        match *self {
            Loaded::All => true,
            Loaded::Ranges(r) => r.contains(start, end),
        }
    }
}

/// A set of byte ranges, kept as disjoint, non-adjacent `start -> end`
/// intervals: asking whether a range is held costs O(log n) whatever its
/// length, so a crafted file whose many sections all cover the same
/// megabytes cannot make loading quadratic.
#[derive(Default, Debug)]
pub(crate) struct Ranges {
    map: BTreeMap<u64, u64>,
}

impl Ranges {
    /// Whether all of `start..end` is in the set (an empty range always is).
    pub fn contains(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        work::add(1);
        self.map
            .range(..=start)
            .next_back()
            .is_some_and(|(_, e)| *e >= end)
    }

    /// The parts of `start..end` not in the set, in order.
    fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        if let Some((_, e)) = self.map.range(..=start).next_back() {
            at = at.max(*e);
        }
        for (s, e) in self.map.range(start..end) {
            work::add(1);
            if *s > at {
                out.push((at, *s));
            }
            at = at.max(*e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Adds `start..end`, merging it with the intervals it touches.
    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((s, e)) = self.map.range(..=start).next_back() {
            if *e >= start {
                start = *s;
                end = end.max(*e);
            }
        }
        let inside: Vec<(u64, u64)> = self.map.range(start..=end).map(|(s, e)| (*s, *e)).collect();
        for (s, e) in inside {
            work::add(1);
            end = end.max(e);
            self.map.remove(&s);
        }
        self.map.insert(start, end);
    }
}

/// A file of `len` bytes of which only some pages have been read.
pub(crate) struct SparseFile {
    file: File,
    buf: Vec<u8>,
    page: u64,
    loaded: Ranges,
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
            loaded: Ranges::default(),
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
        work::add(1);
        // Whole pages: round out to page boundaries (the last one ends at
        // the end of the file).
        let from = start / self.page * self.page;
        let to = end
            .div_ceil(self.page)
            .saturating_mul(self.page)
            .min(self.len());
        if self.loaded.contains(from, to) {
            return Ok(());
        }
        for (a, b) in self.loaded.gaps(from, to) {
            work::add(b - a);
            self.file.seek(SeekFrom::Start(a))?;
            self.file
                .read_exact(&mut self.buf[a as usize..b as usize])?;
            self.loaded.insert(a, b);
        }
        Ok(())
    }

    /// Loads `at..at + len`.
    fn load_len(&mut self, at: u64, len: u64) -> io::Result<()> {
        self.load(at, at.saturating_add(len))
    }

    pub fn is_loaded(&self, start: u64, end: u64) -> bool {
        self.loaded.contains(start, end.min(self.len()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn loaded(&self) -> Loaded<'_> {
        Loaded::Ranges(&self.loaded)
    }

    /// Streams the whole file through a small buffer, once, for the string
    /// scan; nothing is kept. Each byte read goes to `tap` once, in order.
    pub fn scan(&mut self, tap: &mut dyn FnMut(&[u8])) -> io::Result<Strings> {
        let mut strings = Strings::default();
        let overlap = Strings::OVERLAP;
        // No bigger than the file: a small file does not pay for zeroing
        // a megabyte.
        let chunk = SCAN_CHUNK.min(self.buf.len().max(1));
        let mut window = vec![0u8; overlap + chunk];
        self.file.seek(SeekFrom::Start(0))?;
        let (mut start, mut have) = (0u64, 0usize); // file offset of window[0], bytes in it
        loop {
            let n = self.file.read(&mut window[have..])?;
            if n == 0 {
                break;
            }
            tap(&window[have..have + n]);
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

    work::add_usize(segments.len() + sections.len());
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
    // The program headers and PT_DYNAMIC are loaded, so this is exact.
    let Some(info) = parse::dynamic_info(f.bytes(), h) else {
        return Ok(());
    };
    if info
        .gnu_hash
        .is_some_and(|at| at.checked_add(16).is_none_or(|end| end > f.len()))
    {
        return Ok(()); // parse.rs refuses the file
    }
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
///
/// Every offset here comes from the file, so all arithmetic is checked: a
/// table placed near the top of the address space (issue 9: `at + 4`
/// overflowed) ends the loading, and parse.rs refuses the file before goblin
/// reads it. Each loop step reads 4 new bytes of the file, so the work is
/// bounded by the file size.
fn load_gnu_hash(f: &mut SparseFile, at: u64, h: &RawHeader) -> io::Result<()> {
    let len = f.len();
    let read = |f: &mut SparseFile, at: Option<u64>| -> io::Result<Option<u32>> {
        let Some((at, end)) = at.and_then(|a| Some((a, a.checked_add(4)?))) else {
            return Ok(None);
        };
        if end > len {
            return Ok(None);
        }
        f.load(at, end)?;
        let b: [u8; 4] = f.bytes()[at as usize..end as usize]
            .try_into()
            .expect("4 bytes");
        Ok(Some(if h.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    f.load_len(at, 16)?;
    let (Some(buckets), Some(min_chain), Some(bloom)) = (
        read(f, Some(at))?,
        read(f, at.checked_add(4))?,
        read(f, at.checked_add(8))?,
    ) else {
        return Ok(());
    };
    let (buckets, min_chain, bloom) = (u64::from(buckets), u64::from(min_chain), u64::from(bloom));
    if buckets == 0 || min_chain == 0 || bloom == 0 {
        return Ok(());
    }
    let word = if h.class64 { 8 } else { 4 };
    // u32 counts times 8 fit in u64; only the additions to `at` can overflow.
    let Some(buckets_at) = at.checked_add(16 + bloom * word) else {
        return Ok(());
    };
    f.load_len(buckets_at, buckets * 4)?;
    let mut max_chain = 0;
    for i in 0..buckets {
        work::add(1);
        match read(f, buckets_at.checked_add(i * 4))? {
            Some(chain) => max_chain = max_chain.max(u64::from(chain)),
            None => return Ok(()), // goblin fails here
        }
    }
    if max_chain < min_chain {
        return Ok(());
    }
    let mut chain_at = buckets_at.checked_add(buckets * 4 + (max_chain - min_chain) * 4);
    while let Some(hash) = read(f, chain_at)? {
        work::add(1);
        if hash & 1 != 0 {
            break;
        }
        chain_at = chain_at.and_then(|c| c.checked_add(4));
    }
    Ok(())
}
