//! Which libc and which toolchain made the binary, and which telling strings
//! it contains.

use std::collections::BTreeSet;

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::memmem;
use serde::Serialize;

use crate::notes::NoteFacts;
use crate::parse::Evidence;
use crate::work;

/// The C library linked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    Musl,
    Glibc,
    /// No C library (a Go program without cgo).
    None,
    Unknown,
}

impl Libc {
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Musl => "musl",
            Libc::Glibc => "glibc",
            Libc::None => "none",
            Libc::Unknown => "unknown",
        }
    }
}

/// The toolchain that produced the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Toolchain {
    Go,
    DotnetNativeaot,
    Rust,
    C,
    Unknown,
}

impl Toolchain {
    pub fn as_str(self) -> &'static str {
        match self {
            Toolchain::Go => "go",
            Toolchain::DotnetNativeaot => "dotnet-nativeaot",
            Toolchain::Rust => "rust",
            Toolchain::C => "c",
            Toolchain::Unknown => "unknown",
        }
    }
}

/// What the Go build info (`.go.buildinfo`) says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoInfo {
    /// e.g. `go1.19.8`.
    pub version: Option<String>,
    /// The `CGO_ENABLED` build setting, when recorded.
    pub cgo_enabled: Option<bool>,
    /// The `-buildmode` build setting, when recorded.
    pub build_mode: Option<String>,
    /// The `GOAMD64` build setting (`v1`..`v4`), when recorded.
    pub goamd64: Option<String>,
}

/// How a needle is stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Enc {
    /// The bytes of the text (C strings, ASCII).
    Ascii,
    /// UTF-16LE, as .NET string literals are stored.
    Utf16,
    /// A name in NativeAOT's stack-trace metadata: one length byte
    /// (`len << 1`, the NativeFormat encoding of a length below 128), then
    /// the UTF-8 text. Matching the length byte too makes this an exact
    /// name match, not a substring one.
    Name,
}

/// A string the scan looks for anywhere in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Needle {
    pub text: &'static str,
    pub enc: Enc,
}

impl Needle {
    const fn ascii(text: &'static str) -> Needle {
        Needle {
            text,
            enc: Enc::Ascii,
        }
    }
    const fn utf16(text: &'static str) -> Needle {
        Needle {
            text,
            enc: Enc::Utf16,
        }
    }
    const fn name(text: &'static str) -> Needle {
        Needle {
            text,
            enc: Enc::Name,
        }
    }

    /// The bytes searched for.
    fn bytes(&self) -> Vec<u8> {
        match self.enc {
            Enc::Ascii => self.text.as_bytes().to_vec(),
            Enc::Utf16 => self
                .text
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
            Enc::Name => {
                let mut b = vec![(self.text.len() as u8) << 1];
                b.extend_from_slice(self.text.as_bytes());
                b
            }
        }
    }
}

/// Strings the scan looks for anywhere in the file.
pub(crate) mod needle {
    use super::Needle;

    pub const GLIBC_TUNABLES: Needle = Needle::ascii("GLIBC_TUNABLES");
    pub const NSSWITCH: Needle = Needle::ascii("/etc/nsswitch.conf");
    pub const MUSL_STRERROR: Needle = Needle::ascii("No error information");
    pub const MUSL_NO_DLOPEN: Needle = Needle::ascii("Dynamic loading not supported");
    pub const LIBICUUC: Needle = Needle::ascii("libicuuc.so");
    pub const LIBSSL: Needle = Needle::ascii("libssl.so.");
    pub const CLR_OPENSSL: Needle = Needle::ascii("CLR_OPENSSL_VERSION_OVERRIDE");
    pub const ICU_DATA_DIR: Needle = Needle::ascii("/usr/share/icu/");
    pub const SSL_DIR: Needle = Needle::ascii("/etc/ssl");
    pub const ZONEINFO: Needle = Needle::ascii("/usr/share/zoneinfo");
    pub const RUSTC_PATH: Needle = Needle::ascii("/rustc/");
    // .NET NativeAOT (see dotnet.rs for what each one tells).
    /// The name of .NET's core library, in every NativeAOT binary.
    pub const CORELIB: Needle = Needle::ascii("System.Private.CoreLib");
    /// The ICU data package name (`icudt72l`), linked in with static ICU.
    pub const ICU_PACKAGE: Needle = Needle::ascii("icudt");
    /// OpenSSL's `OpenSSL_version(OPENSSL_DIR)` text: libcrypto is linked in.
    pub const OPENSSL_DIR: Needle = Needle::ascii("OPENSSLDIR: \"");
    /// TimeZoneInfo's default directory, a .NET string literal.
    pub const DOTNET_ZONEINFO: Needle = Needle::utf16("/usr/share/zoneinfo");
    /// The .NET root certificate store's default location.
    pub const DOTNET_SSL_DIR: Needle = Needle::utf16("/etc/ssl/cert");
    /// Method names (stack-trace metadata). `.cctor` is in every binary
    /// that has the metadata at all.
    pub const NAME_CCTOR: Needle = Needle::name(".cctor");
    pub const NAME_HOST_LOOKUP: Needle = Needle::name("GetHostEntryForName");
    pub const NAME_USER_NAME: Needle = Needle::name("GetUserNameFromPasswd");
    pub const NAME_USER_STORE: Needle = Needle::name("GetUserFeatureDirectory");
    pub const NAME_CHAIN: Needle = Needle::name("OpenSslX509ChainProcessor");
    pub const NAME_TEMP_PATH: Needle = Needle::name("GetTempPath");
    pub const ALL: &[Needle] = &[
        GLIBC_TUNABLES,
        NSSWITCH,
        MUSL_STRERROR,
        MUSL_NO_DLOPEN,
        LIBICUUC,
        LIBSSL,
        CLR_OPENSSL,
        ICU_DATA_DIR,
        SSL_DIR,
        ZONEINFO,
        RUSTC_PATH,
        CORELIB,
        ICU_PACKAGE,
        OPENSSL_DIR,
        DOTNET_ZONEINFO,
        DOTNET_SSL_DIR,
        NAME_CCTOR,
        NAME_HOST_LOOKUP,
        NAME_USER_NAME,
        NAME_USER_STORE,
        NAME_CHAIN,
        NAME_TEMP_PATH,
    ];
}

/// One automaton for all needles: a single pass over each window finds
/// them all, however many there are.
/// (and each needle's bytes).
fn automaton() -> &'static (AhoCorasick, Vec<Vec<u8>>) {
    static AC: OnceLock<(AhoCorasick, Vec<Vec<u8>>)> = OnceLock::new();
    AC.get_or_init(|| {
        let bytes: Vec<Vec<u8>> = needle::ALL.iter().map(Needle::bytes).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&bytes)
            .expect("the needles form a valid automaton");
        (ac, bytes)
    })
}

/// What the one pass over the whole file found: which of [`needle::ALL`]
/// occur, and where the first Go build-info magic is (for binaries without
/// section headers).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Strings {
    pub found: BTreeSet<Needle>,
    pub go_magic: Option<u64>,
}

/// The Go build-info magic (its first byte is 0xff, not the UTF-8 of ÿ).
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

impl Strings {
    /// How many bytes consecutive windows given to [`Self::scan`] must
    /// share so that no match is missed at a window boundary: at least the
    /// longest pattern minus one (the Go magic is matched with the byte
    /// after it; a UTF-16 needle takes two bytes a character).
    pub const OVERLAP: usize = {
        let mut longest = GO_MAGIC.len() + 1;
        let mut i = 0;
        while i < needle::ALL.len() {
            let n = 2 * needle::ALL[i].text.len() + 1;
            if n > longest {
                longest = n;
            }
            i += 1;
        }
        longest - 1
    };

    /// Scans all of `bytes` at once.
    pub fn of(bytes: &[u8]) -> Strings {
        let mut s = Strings::default();
        s.scan(bytes, 0);
        s
    }

    /// Scans `window`, the file bytes from offset `start`. A file is scanned
    /// in order, as windows that overlap by [`Self::OVERLAP`] bytes; a match
    /// inside an overlap is seen twice, which changes nothing.
    pub fn scan(&mut self, window: &[u8], start: u64) {
        work::add_usize(window.len());
        // Leftmost-first search uses the SIMD prefilter (15 to 40 times
        // faster than an overlapping search here). Restarting one byte after
        // each match, and testing every needle where one matched, makes it
        // find every needle occurrence all the same, overlaps included.
        let (ac, bytes) = automaton();
        let mut at = 0;
        while let Some(m) = ac.find(Input::new(window).span(at..window.len())) {
            let rest = &window[m.start()..];
            work::add_usize(bytes.len());
            for (n, b) in needle::ALL.iter().zip(bytes) {
                if rest.starts_with(b) {
                    self.found.insert(*n);
                }
            }
            at = m.start() + 1;
        }
        // Without section headers (sstrip), go_info looks for the magic
        // itself: Go aligns it to 16 bytes and follows it with the pointer
        // size. A magic too close to the end of the window to see that byte
        // is seen again at the start of the next one.
        if self.go_magic.is_none() {
            self.go_magic = memmem::find_iter(window, GO_MAGIC)
                .filter(|at| (start + *at as u64).is_multiple_of(16))
                .find(|at| matches!(window.get(at + 14), Some(4 | 8)))
                .map(|at| start + at as u64);
        }
    }

    pub fn contains(&self, n: Needle) -> bool {
        self.found.contains(&n)
    }
}

/// Reads `.go.buildinfo` (or, when sections are stripped, the build info
/// at the magic the string scan found).
pub(crate) fn go_info(ev: &Evidence<'_>, strings: &Strings) -> Option<GoInfo> {
    let start = match ev.section(".go.buildinfo") {
        Some(s) if s.starts_with(GO_MAGIC) => s,
        Some(_) => return None,
        None if ev.sections.is_empty() => {
            let at = strings.go_magic?;
            let extent = buildinfo_extent(ev.bytes.get(usize::try_from(at).ok()?..)?);
            ev.range(at, at + extent as u64)?
        }
        None => return None,
    };
    let mut info = GoInfo::default();
    // Go 1.18+: flags bit 2 means the version and module info follow inline
    // at offset 32 as varint-length-prefixed strings.
    let flags = *start.get(15)?;
    if flags & 2 == 0 {
        return Some(info);
    }
    let mut at = 32;
    let version = read_varint_string(start, &mut at)?;
    info.version = Some(String::from_utf8_lossy(version).into_owned()).filter(|v| !v.is_empty());
    let modinfo = read_varint_string(start, &mut at).unwrap_or_default();
    for line in String::from_utf8_lossy(modinfo).lines() {
        let Some(setting) = line.strip_prefix("build\t") else {
            continue;
        };
        let Some((k, v)) = setting.split_once('=') else {
            continue;
        };
        match k {
            "CGO_ENABLED" => info.cgo_enabled = Some(v == "1"),
            "-buildmode" => info.build_mode = Some(v.to_string()),
            "GOAMD64" => info.goamd64 = Some(v.to_string()),
            _ => {}
        }
    }
    Some(info)
}

/// How many bytes from its start `go_info` reads of the build info `b`
/// (the rest of the file): the flags, then the two strings when inline.
/// `go_info` gives the same answer from `b[..extent]` as from `b`, so the
/// sparse reader loads only that much.
pub(crate) fn buildinfo_extent(b: &[u8]) -> usize {
    match b.get(15) {
        None => return b.len(),
        Some(flags) if flags & 2 == 0 => return 16,
        Some(_) => {}
    }
    let mut at = 32;
    for _ in 0..2 {
        let Some(len) = read_varint(b, &mut at) else {
            return at.min(b.len());
        };
        match usize::try_from(len).ok().and_then(|l| at.checked_add(l)) {
            Some(end) if end <= b.len() => at = end,
            _ => return at,
        }
    }
    at
}

/// A varint at `*at`, leaving `*at` after it (or where reading stopped).
fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(len);
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
}

fn read_varint_string<'a>(b: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = read_varint(b, at)?;
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let s = b.get(*at..end)?;
    *at = end;
    Some(s)
}

/// At most this many distinct `.comment` strings are kept (real binaries
/// have two to five; a crafted file may have a hundred thousand).
pub(crate) const MAX_COMMENTS: usize = 32;

/// The first [`MAX_COMMENTS`] distinct `.comment` strings (compiler and
/// linker identification), in file order. Linear in the size of the
/// section: a crafted `.comment` of 100k strings once took 15 s because
/// each string was compared with all earlier ones (issue 9). Questions
/// about all of them go to [`comment_has`].
pub(crate) fn comments(ev: &Evidence<'_>) -> Vec<String> {
    let mut seen: Vec<&[u8]> = Vec::new();
    if let Some(c) = ev.section(".comment") {
        work::add_usize(c.len());
        for part in c.split(|b| *b == 0) {
            let part = part.trim_ascii();
            work::add_usize(seen.len());
            if !part.is_empty() && !seen.contains(&part) {
                seen.push(part);
                if seen.len() == MAX_COMMENTS {
                    break;
                }
            }
        }
    }
    seen.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// Whether any `.comment` string contains `p` (which holds no NUL).
pub(crate) fn comment_has(ev: &Evidence<'_>, p: &str) -> bool {
    ev.section(".comment").is_some_and(|c| {
        work::add_usize(c.len());
        memmem::find(c, p.as_bytes()).is_some()
    })
}

/// Section names NativeAOT emits, which survive stripping.
const NATIVEAOT_SECTIONS: &[&str] = &[
    "__managedcode",
    "__modules",
    "__unbox",
    ".hydrated",
    ".dotnet_eh_table",
];

/// NativeAOT output: its sections (stripped or not), the debug header a
/// dynamic build exports, or the ILCompiler in `.comment`; without section
/// headers (sstrip), the core library's name.
pub(crate) fn is_nativeaot(ev: &Evidence<'_>, strings: &Strings) -> bool {
    ev.has_symbol("DotNetRuntimeDebugHeader")
        || NATIVEAOT_SECTIONS.iter().any(|s| ev.has_section(s))
        || comment_has(ev, ".NET: ilc ")
        || (ev.sections.is_empty() && strings.contains(needle::CORELIB))
}

pub(crate) fn toolchain(
    ev: &Evidence<'_>,
    notes: &NoteFacts,
    go: Option<&GoInfo>,
    strings: &Strings,
) -> Toolchain {
    if is_nativeaot(ev, strings) {
        return Toolchain::DotnetNativeaot;
    }
    if notes.go_build_id.is_some() || go.is_some() || ev.has_section(".gopclntab") {
        return Toolchain::Go;
    }
    let comment_has = |p: &str| comment_has(ev, p);
    if comment_has("rustc version")
        || ev.has_symbol("rust_begin_unwind")
        || ev.has_symbol("__rust_alloc")
        || strings.contains(needle::RUSTC_PATH)
    {
        return Toolchain::Rust;
    }
    if comment_has("GCC:") || comment_has("clang version") {
        return Toolchain::C;
    }
    Toolchain::Unknown
}

pub(crate) fn libc(
    ev: &Evidence<'_>,
    notes: &NoteFacts,
    toolchain: Toolchain,
    go: Option<&GoInfo>,
    strings: &Strings,
) -> Libc {
    if toolchain == Toolchain::Go && go.and_then(|g| g.cgo_enabled) == Some(false) {
        return Libc::None;
    }
    if let Some(interp) = &ev.interpreter {
        if interp.contains("ld-musl") {
            return Libc::Musl;
        }
        if interp.contains("ld-linux") {
            return Libc::Glibc;
        }
    }
    if ev.needed.iter().any(|n| n == "libc.so.6") {
        return Libc::Glibc;
    }
    if ev
        .needed
        .iter()
        .any(|n| n.starts_with("libc.musl-") || n == "libc.so")
    {
        return Libc::Musl;
    }
    if ev.has_symbol("_dl_relocate_static_pie")
        || strings.contains(needle::GLIBC_TUNABLES)
        || notes.gnu_abi_tag
    {
        return Libc::Glibc;
    }
    if ev.has_symbol("__init_libc")
        || ev.has_symbol("_dlstart_c")
        || strings.contains(needle::MUSL_STRERROR)
        || strings.contains(needle::MUSL_NO_DLOPEN)
        || comment_has(ev, "(Alpine")
    {
        return Libc::Musl;
    }
    if toolchain == Toolchain::Go {
        return Libc::None;
    }
    Libc::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_strings() {
        let b = [3, b'a', b'b', b'c', 0x81, 0x00];
        let mut at = 0;
        assert_eq!(read_varint_string(&b, &mut at), Some(&b"abc"[..]));
        assert_eq!(read_varint_string(&b, &mut at), None); // length 1 past the end
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(read_varint_string(&huge, &mut 0), None);
    }

    #[test]
    fn scan_finds_needles() {
        let found = Strings::of(b"xx/etc/ssl/certs\0libicuuc.so.%d\0");
        assert!(found.contains(needle::SSL_DIR));
        assert!(found.contains(needle::LIBICUUC));
        assert!(!found.contains(needle::ZONEINFO));
    }

    /// Scanning in overlapping windows of any size finds what one scan of
    /// the whole buffer finds, including matches that straddle a boundary.
    #[test]
    fn windowed_scan_matches_whole_scan() {
        let mut b = vec![b'.'; 200];
        b[3..17].copy_from_slice(GO_MAGIC); // not 16-aligned: skipped
        b[17] = 8;
        b[64..78].copy_from_slice(GO_MAGIC);
        b[78] = 8;
        b[100..128].copy_from_slice(needle::CLR_OPENSSL.text.as_bytes());
        b[150..164].copy_from_slice(needle::GLIBC_TUNABLES.text.as_bytes());
        b[192..200].copy_from_slice(needle::SSL_DIR.text.as_bytes());
        let whole = Strings::of(&b);
        assert_eq!(whole.go_magic, Some(64));
        assert!(whole.contains(needle::CLR_OPENSSL) && whole.contains(needle::GLIBC_TUNABLES));
        for chunk in 1..=b.len() {
            let mut s = Strings::default();
            let mut start = 0;
            loop {
                let end = (start + Strings::OVERLAP + chunk).min(b.len());
                s.scan(&b[start..end], start as u64);
                if end == b.len() {
                    break;
                }
                start = end - Strings::OVERLAP;
            }
            assert_eq!(s, whole, "windows of {chunk} new bytes");
        }
    }

    #[test]
    fn buildinfo_extent_covers_what_go_info_reads() {
        let mut b = vec![0u8; 64];
        b[..14].copy_from_slice(GO_MAGIC);
        b[14] = 8;
        b[15] = 0;
        assert_eq!(buildinfo_extent(&b), 16);
        b[15] = 2;
        b[32] = 3; // version "go1"
        b[33..36].copy_from_slice(b"go1");
        b[36] = 0x81; // modinfo of 129 bytes: past the end
        b[37] = 0x01;
        assert_eq!(buildinfo_extent(&b), 38);
        b[36] = 4;
        assert_eq!(buildinfo_extent(&b), 41);
        assert_eq!(buildinfo_extent(&b[..20]), 20);
    }
}
