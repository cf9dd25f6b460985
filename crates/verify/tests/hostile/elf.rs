//! A small ELF64 little-endian writer for crafted test inputs: program
//! headers and sections with names, laid out one after another.

/// A program header; `data` is placed in the file and the header points at it.
pub struct Seg {
    pub p_type: u32,
    pub flags: u32,
    pub data: Vec<u8>,
    /// Overrides p_vaddr / p_offset / p_memsz when set (offset 0 means "the file start").
    pub vaddr: Option<u64>,
    pub offset: Option<u64>,
    pub memsz: Option<u64>,
    pub align: u64,
}

impl Seg {
    pub fn new(p_type: u32, flags: u32, data: Vec<u8>) -> Seg {
        Seg {
            p_type,
            flags,
            data,
            vaddr: None,
            offset: None,
            memsz: None,
            align: 1,
        }
    }
}

/// A section; `data` is placed in the file.
pub struct Sec {
    pub name: &'static str,
    pub sh_type: u32,
    pub data: Vec<u8>,
    pub align: u64,
    /// Overrides sh_size when set (a lying size field).
    pub size: Option<u64>,
}

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_NOTE: u32 = 4;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_NOTE: u32 = 7;
pub const SHT_STRTAB: u32 = 3;

/// An x86-64 ET_EXEC (`e_type` 2) with the given segments and sections
/// (a `.shstrtab` is added last).
pub fn build(e_type: u16, segments: &[Seg], sections: &[Sec]) -> Vec<u8> {
    let phoff = 64u64;
    let mut b = vec![0u8; 64 + 56 * segments.len()];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&e_type.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&0x401000u64.to_le_bytes());
    b[32..40].copy_from_slice(&phoff.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
    b[58..60].copy_from_slice(&64u16.to_le_bytes());
    for (i, s) in segments.iter().enumerate() {
        let at = 64 + 56 * i;
        let off = b.len() as u64;
        b.extend_from_slice(&s.data);
        let offset = s.offset.unwrap_or(off);
        let filesz = s.data.len() as u64;
        let vaddr = s.vaddr.unwrap_or(0x400000 + offset);
        put(&mut b, at, &s.p_type.to_le_bytes());
        put(&mut b, at + 4, &s.flags.to_le_bytes());
        put(&mut b, at + 8, &offset.to_le_bytes());
        put(&mut b, at + 16, &vaddr.to_le_bytes());
        put(&mut b, at + 24, &vaddr.to_le_bytes());
        put(&mut b, at + 32, &filesz.to_le_bytes());
        put(&mut b, at + 40, &s.memsz.unwrap_or(filesz).to_le_bytes());
        put(&mut b, at + 48, &s.align.to_le_bytes());
    }
    if sections.is_empty() {
        return b;
    }
    // Section contents, then the names, then the header table.
    let mut names = vec![0u8];
    let mut placed = Vec::new();
    for s in sections {
        while !(b.len() as u64).is_multiple_of(s.align.max(1)) {
            b.push(0);
        }
        let name = names.len() as u32;
        names.extend_from_slice(s.name.as_bytes());
        names.push(0);
        placed.push((name, b.len() as u64));
        b.extend_from_slice(&s.data);
    }
    let shstr_name = names.len() as u32;
    names.extend_from_slice(b".shstrtab\0");
    let shstr_off = b.len() as u64;
    b.extend_from_slice(&names);
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
    let shoff = b.len() as u64;
    let count = sections.len() + 2;
    b.extend_from_slice(&[0u8; 64]); // SHT_NULL
    let header = |name: u32, sh_type: u32, off: u64, size: u64, align: u64| {
        let mut h = vec![0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&sh_type.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h[48..56].copy_from_slice(&align.to_le_bytes());
        h
    };
    for (s, (name, off)) in sections.iter().zip(&placed) {
        let size = s.size.unwrap_or(s.data.len() as u64);
        b.extend(header(*name, s.sh_type, *off, size, s.align));
    }
    b.extend(header(
        shstr_name,
        SHT_STRTAB,
        shstr_off,
        names.len() as u64,
        1,
    ));
    put(&mut b, 40, &shoff.to_le_bytes());
    put(&mut b, 60, &(count as u16).to_le_bytes());
    put(&mut b, 62, &((count - 1) as u16).to_le_bytes());
    b
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// A tiny deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// The text segment every crafted program has, and a non-executable stack.
pub fn code() -> Vec<Seg> {
    vec![
        Seg::new(PT_LOAD, 5, vec![0xc3; 16]),
        Seg::new(PT_GNU_STACK, 6, Vec::new()),
    ]
}

/// Issue 9, item 12: a dynamic table whose DT_GNU_HASH lies at the top of
/// the address space, through a PT_LOAD that claims to map all of it
/// (p_vaddr 0, p_memsz u64::MAX): the table's offset is u64::MAX - 2, and
/// `offset + 4` overflowed.
pub fn gnu_hash_overflow() -> Vec<u8> {
    let mut dynamic = Vec::new();
    for (tag, val) in [(0x6fff_fef5u64, u64::MAX - 2), (5, 0), (10, 0), (0, 0)] {
        // DT_GNU_HASH, DT_STRTAB, DT_STRSZ, DT_NULL
        dynamic.extend_from_slice(&tag.to_le_bytes());
        dynamic.extend_from_slice(&val.to_le_bytes());
    }
    let mut all = Seg::new(PT_LOAD, 4, Vec::new());
    all.vaddr = Some(0);
    all.offset = Some(0);
    all.memsz = Some(u64::MAX);
    let mut segs = code();
    segs.push(all);
    segs.push(Seg::new(PT_DYNAMIC, 6, dynamic));
    build(3, &segs, &[])
}

/// Issue 9, item 13: a `.comment` of `n` distinct compiler strings.
pub fn many_comments(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut comment = Vec::new();
    for i in 0..n {
        comment.extend_from_slice(format!("GCC {i:x}.{:x}", rng.below(1 << 20)).as_bytes());
        comment.push(0);
    }
    build(
        2,
        &code(),
        &[Sec {
            name: ".comment",
            sh_type: SHT_PROGBITS,
            data: comment,
            align: 1,
            size: None,
        }],
    )
}

/// Issue 9, item 13: `n` distinct notes, in a PT_NOTE segment and again in
/// a `.note` section over the same bytes.
pub fn many_notes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut area = Vec::new();
    for i in 0..n {
        area.extend_from_slice(&4u32.to_le_bytes()); // namesz
        area.extend_from_slice(&4u32.to_le_bytes()); // descsz
        area.extend_from_slice(&(0x100 + i as u32).to_le_bytes());
        area.extend_from_slice(b"GNU\0");
        area.extend_from_slice(&(rng.next() as u32).to_le_bytes());
    }
    let mut segs = code();
    let mut note = Seg::new(PT_NOTE, 4, area.clone());
    note.align = 4;
    segs.push(note);
    let mut b = build(
        2,
        &segs,
        &[Sec {
            name: ".note.many",
            sh_type: SHT_NOTE,
            data: Vec::new(),
            align: 4,
            size: Some(area.len() as u64),
        }],
    );
    // The note data follows the headers and the 16 code bytes.
    let seg_off = 64 + 56 * 3 + 16;
    // Rewrite the section header's sh_offset to the segment's data.
    let shoff = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
    let sec = shoff + 64;
    b[sec + 24..sec + 32].copy_from_slice(&(seg_off as u64).to_le_bytes());
    b
}
