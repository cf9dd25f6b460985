//! The build info the Go linker embeds (what `go version -m` prints): the
//! Go version and the module information, found by its header
//! `\xff Go buildinf:` (16-byte aligned, usually the `.go.buildinfo`
//! section).
//!
//! Two layouts, as Go's own `debug/buildinfo` reads them:
//! - Go 1.18+ (flags bit 2): the two strings follow the 32-byte header
//!   inline, each as an unsigned varint length and the bytes;
//! - older: the header holds two pointers (of the pointer size the header
//!   gives) to Go string headers (data pointer, length), read through the
//!   ELF's PT_LOAD segments.
//!
//! The module information is framed by 16 sentinel bytes on each side;
//! its lines are `path`, `mod`, `dep`, `=>` and `build`, tab-separated.

/// The header's magic.
pub const MAGIC: &[u8] = b"\xff Go buildinf:";

/// One module line (`mod` or `dep`), with its replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
    /// `h1:...` (empty for vendored or `(devel)` modules).
    pub sum: Option<String>,
    /// The `=>` line under it.
    pub replace: Option<Box<Module>>,
}

/// What the build info says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.22.5`.
    pub go_version: String,
    /// The `path` line (the main package's import path).
    pub path: Option<String>,
    /// The main module (`mod` line).
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `KEY=VALUE` of the `build` lines, in order.
    pub settings: Vec<(String, String)>,
}

/// Bytes of a binary read by file offset: the whole binary in memory, or
/// a file read piece by piece (`crate::binary::Binary`).
pub trait ReadAt {
    /// The binary's length.
    fn size(&self) -> u64;
    /// `len` bytes at `offset`; `None` past the end or on a read error.
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

/// The longest string the build info may hold (the version or the module
/// information): more is a corrupt length, not a reason to allocate it.
pub const MAX_STRING: u64 = 16 << 20;

/// The build info of `elf`: `Ok(None)` when there is none (not a Go
/// binary), `Err` with the reason when there is a header but what it
/// points at cannot be read.
pub fn read(elf: &[u8]) -> Result<Option<BuildInfo>, String> {
    let Some(at) = find_header(elf) else {
        return Ok(None);
    };
    read_header_at(elf, at as u64, || load_segments(elf)).map(Some)
}

/// The build info whose header is at file offset `at` of `elf` (found by
/// [`crate::binary::Scanner`]); `loads` gives the PT_LOAD segments as
/// `(vaddr, filesz, offset)`, needed only by the pre-1.18 pointer layout.
pub fn read_header_at<R: ReadAt + ?Sized>(
    elf: &R,
    at: u64,
    loads: impl FnOnce() -> Result<Vec<(u64, u64, u64)>, String>,
) -> Result<BuildInfo, String> {
    let header = elf
        .read_at(at, 32.min(elf.size().saturating_sub(at)))
        .unwrap_or_default();
    if header.len() < 32 {
        return Err("the header is cut short".into());
    }
    let ptr_size = header[14] as usize;
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (v, next) =
            varint_string_at(elf, at + 32).ok_or("the Go version string is cut short")?;
        let (m, _) = varint_string_at(elf, next).ok_or("the module information is cut short")?;
        (v, m)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("pointer size {ptr_size} in the header"));
        }
        let big = flags & 1 != 0;
        let loads = loads()?;
        let ptr = |b: &[u8]| read_uint(b, ptr_size, big);
        let v_addr = ptr(&header[16..]).ok_or("the header is cut short")?;
        let m_addr = ptr(&header[16 + ptr_size..]).ok_or("the header is cut short")?;
        let string_at = |addr: u64| -> Option<Vec<u8>> {
            let hdr = read_mapped(elf, &loads, addr, 2 * ptr_size as u64)?;
            let data = ptr(&hdr)?;
            let len = ptr(&hdr[ptr_size..])?;
            if len > elf.size() || len > MAX_STRING {
                return None;
            }
            read_mapped(elf, &loads, data, len)
        };
        (
            string_at(v_addr).ok_or("the Go version string points outside the file")?,
            string_at(m_addr).ok_or("the module information points outside the file")?,
        )
    };
    let go_version = String::from_utf8(version).map_err(|_| "the Go version is not UTF-8")?;
    if !go_version.starts_with("go") || !go_version.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the Go version {go_version:?} does not start with go"
        ));
    }
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else if modinfo.is_empty() {
        &modinfo[..]
    } else {
        return Err("the module information lacks its sentinels".into());
    };
    let text = std::str::from_utf8(modinfo).map_err(|_| "the module information is not UTF-8")?;
    let mut info = parse_modinfo(text)?;
    info.go_version = go_version;
    Ok(info)
}

/// Parses the module information text (the lines of `go version -m`
/// without the file name line).
pub fn parse_modinfo(text: &str) -> Result<BuildInfo, String> {
    let mut info = BuildInfo::default();
    let module = |f: &[&str], line: &str| -> Result<Module, String> {
        if f.len() < 2 || f[1].is_empty() {
            return Err(format!("a module line without a path: {line:?}"));
        }
        Ok(Module {
            path: f[1].to_string(),
            version: f.get(2).copied().unwrap_or("").to_string(),
            sum: f.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string()),
            replace: None,
        })
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "path" => info.path = f.get(1).map(|s| s.to_string()),
            "mod" => info.main = Some(module(&f, line)?),
            "dep" => info.deps.push(module(&f, line)?),
            "=>" => {
                let repl = module(&f, line)?;
                let last = match info.deps.last_mut() {
                    Some(d) => d,
                    None => info
                        .main
                        .as_mut()
                        .ok_or_else(|| format!("a replacement before any module: {line:?}"))?,
                };
                last.replace = Some(Box::new(repl));
            }
            "build" => {
                let kv = f.get(1).copied().unwrap_or("");
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                info.settings.push((k.to_string(), v.to_string()));
            }
            other => {
                return Err(format!(
                    "an unknown line {other:?} in the module information"
                ))
            }
        }
    }
    Ok(info)
}

fn find_header(elf: &[u8]) -> Option<usize> {
    // Go aligns the header to 16 bytes; so do the sections it lives in.
    memchr::memmem::find_iter(elf, MAGIC).find(|at| at % 16 == 0)
}

/// The string at `at`: an unsigned varint length, then the bytes; and
/// the offset after it.
fn varint_string_at<R: ReadAt + ?Sized>(elf: &R, at: u64) -> Option<(Vec<u8>, u64)> {
    let head = elf.read_at(at, 10.min(elf.size().saturating_sub(at)))?;
    let mut n: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = *head.get(i)?;
        i += 1;
        if shift >= 64 {
            return None;
        }
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if n > MAX_STRING {
        return None;
    }
    let start = at.checked_add(i as u64)?;
    let s = elf.read_at(start, n)?;
    Some((s, start + n))
}

fn read_uint(b: &[u8], size: usize, big: bool) -> Option<u64> {
    let b = b.get(..size)?;
    let mut v: u64 = 0;
    if big {
        for &x in b {
            v = (v << 8) | u64::from(x);
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | u64::from(x);
        }
    }
    Some(v)
}

/// `(vaddr, filesz, offset)` of each PT_LOAD.
fn load_segments(elf: &[u8]) -> Result<Vec<(u64, u64, u64)>, String> {
    let e = goblin::elf::Elf::parse(elf).map_err(|e| format!("not a readable ELF file: {e}"))?;
    Ok(e.program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
        .map(|p| (p.p_vaddr, p.p_filesz, p.p_offset))
        .collect())
}

/// `len` bytes at virtual address `addr`, through the PT_LOAD segments.
fn read_mapped<R: ReadAt + ?Sized>(
    elf: &R,
    loads: &[(u64, u64, u64)],
    addr: u64,
    len: u64,
) -> Option<Vec<u8>> {
    let (vaddr, filesz, offset) = loads
        .iter()
        .find(|(v, s, _)| addr >= *v && addr - *v < *s)?;
    let within = addr - vaddr;
    if len > filesz - within {
        return None;
    }
    elf.read_at(offset.checked_add(within)?, len)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Go 1.18+ header with its inline strings, as the linker writes it.
    pub(crate) fn inline_blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = vec![0u8; 32];
        b[..14].copy_from_slice(MAGIC);
        b[14] = 8;
        b[15] = 2;
        let mut put = |s: &[u8]| {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        };
        put(version.as_bytes());
        // 16 sentinel bytes on each side (their values do not matter here).
        let mut m = vec![0x30u8; 16];
        m.extend_from_slice(modinfo.as_bytes());
        m.extend_from_slice(&[0xf9u8; 16]);
        put(&m);
        b
    }

    #[test]
    fn inline_build_info_with_deps_replacements_and_settings() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\texample.com/a\tv0.1.0\th1:abc=\ndep\texample.com/b\tv1.2.0\th1:def=\n=>\texample.com/c\tv1.3.0\th1:ghi=\nbuild\t-compiler=gc\nbuild\t-ldflags=\"-s -w\"\n";
        let mut elf = vec![0u8; 48];
        elf.extend(inline_blob("go1.22.5", modinfo));
        let info = read(&elf).unwrap().unwrap();
        assert_eq!(info.go_version, "go1.22.5");
        assert_eq!(info.main.as_ref().unwrap().path, "example.com/app");
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[0].sum.as_deref(), Some("h1:abc="));
        let r = info.deps[1].replace.as_ref().unwrap();
        assert_eq!(
            (r.path.as_str(), r.version.as_str()),
            ("example.com/c", "v1.3.0")
        );
        assert_eq!(info.settings[1], ("-ldflags".into(), "\"-s -w\"".into()));
    }

    #[test]
    fn no_header_is_no_build_info() {
        assert_eq!(read(b"\x7fELF nothing here"), Ok(None));
    }

    #[test]
    fn corrupt_go_build_info_is_an_error_never_a_panic() {
        let modinfo = "path\tx\nmod\tx\t(devel)\t\ndep\ty\tv1.0.0\th1:a=\n";
        let good = inline_blob("go1.22.5", modinfo);
        // Every truncation and every single-byte change: an answer, no panic.
        for cut in 0..good.len() {
            let _ = read(&good[..cut]);
        }
        for i in 14..good.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut m = good.clone();
                m[i] = v;
                let _ = read(&m);
            }
        }
        let mut huge = good.clone();
        huge[32] = 0xff; // the version length becomes huge
        huge[33] = 0xff;
        assert!(read(&huge).is_err());
        // The old pointer layout pointing nowhere.
        let mut old = good.clone();
        old[15] = 0;
        assert!(read(&old).is_err());
    }
}
