//! From evidence to facts and findings. Each check is one function that may
//! push a [`Finding`]; the table in docs/commands/verify.md lists them all.

use goblin::elf::{header, program_header as ph};

use distroless_pack_image::Platform;

use crate::dotnet::{self, DotnetInfo};
use crate::fingerprint::{self, needle, GoInfo, Libc, Strings, Toolchain};
use crate::notes::{self, NoteFacts};
use crate::parse::Evidence;
use crate::report::{human_size, BinaryFacts, Finding, Linkage, Relro, Severity};

/// The stack size .NET NativeAOT asks musl for (PT_GNU_STACK p_memsz).
const NATIVEAOT_STACK: u64 = 1_572_864;

/// Everything the checks look at, computed once.
pub(crate) struct Context<'a, 'e> {
    pub ev: &'e Evidence<'a>,
    pub platform: &'e Platform,
    pub strings: &'e Strings,
    pub facts: BinaryFacts,
}

/// Reads the facts, then runs every check. `strings` is what the scan of
/// the whole file found ([`Strings`]).
pub(crate) fn run(
    ev: &Evidence<'_>,
    strings: &Strings,
    platform: &Platform,
) -> (BinaryFacts, Vec<Finding>) {
    let notes = notes::read(ev);
    let go = fingerprint::go_info(ev, strings);
    let compiler = fingerprint::comments(ev);
    let toolchain = fingerprint::toolchain(ev, &notes, go.as_ref(), strings);
    let libc = fingerprint::libc(ev, &notes, toolchain, go.as_ref(), strings);
    let mut facts = facts(ev, &notes, go, compiler, toolchain, libc);
    if toolchain == Toolchain::DotnetNativeaot {
        facts.dotnet = Some(dotnet::info(ev, strings));
    }
    let cx = Context {
        ev,
        platform,
        strings,
        facts,
    };

    let mut out = Vec::new();
    for check in CHECKS {
        check(&cx, &mut out);
    }
    out.sort_by_key(|f| f.severity); // stable: keeps check order within a severity
    (cx.facts, out)
}

type Check = fn(&Context<'_, '_>, &mut Vec<Finding>);

const CHECKS: &[Check] = &[
    architecture,
    os_abi,
    file_type,
    interpreter,
    needed,
    rpath,
    text_relocations,
    executable_stack,
    writable_executable,
    nativeaot_glibc,
    nativeaot_libraries,
    isa_level,
    glibc_nss,
    glibc_iconv,
    dynamic_loading,
    stack_size,
    files_to_ship,
    nativeaot_files,
    relro,
    stripped,
    debuglink,
];

fn facts(
    ev: &Evidence<'_>,
    notes: &NoteFacts,
    go: Option<GoInfo>,
    compiler: Vec<String>,
    toolchain: Toolchain,
    libc: Libc,
) -> BinaryFacts {
    let linkage = if ev.interpreter.is_some() || !ev.needed.is_empty() {
        Linkage::Dynamic
    } else if ev.e_type == header::ET_DYN {
        Linkage::StaticPie
    } else {
        Linkage::Static
    };
    let stack = ev.segment(ph::PT_GNU_STACK);
    let has_load = ev.segments.iter().any(|s| s.p_type == ph::PT_LOAD);
    let relro = match (ev.segment(ph::PT_GNU_RELRO).is_some(), ev.bind_now()) {
        (true, true) => Relro::Full,
        (true, false) => Relro::Partial,
        (false, _) => Relro::None,
    };
    let mut rpath = ev.rpath.clone();
    rpath.extend(ev.runpath.iter().cloned());
    let isa_level = if ev.e_machine == header::EM_X86_64 {
        notes
            .x86_isa_needed
            .and_then(notes::isa_level_name)
            .map(str::to_string)
            .or_else(|| {
                go.as_ref()
                    .and_then(|g| g.goamd64.as_deref())
                    .filter(|v| matches!(*v, "v2" | "v3" | "v4"))
                    .map(|v| format!("x86-64-{v}"))
            })
    } else {
        None
    };
    let debuglink = ev.section(".gnu_debuglink").and_then(|b| {
        let end = memchr::memchr(0, b).unwrap_or(b.len());
        let name = String::from_utf8_lossy(&b[..end]).into_owned();
        (!name.is_empty()).then_some(name)
    });
    BinaryFacts {
        size: ev.bytes.len() as u64,
        class: if ev.class64 { "elf64" } else { "elf32" },
        endianness: if ev.little_endian { "little" } else { "big" },
        machine: machine_name(ev.e_machine),
        e_machine: ev.e_machine,
        os_abi: os_abi_name(ev.os_abi),
        file_type: match ev.e_type {
            header::ET_EXEC => "exec".into(),
            header::ET_DYN => "dyn".into(),
            header::ET_REL => "rel".into(),
            header::ET_CORE => "core".into(),
            t => format!("unknown({t})"),
        },
        linkage,
        entry: ev.entry,
        interpreter: ev.interpreter.clone(),
        needed: ev.needed.clone(),
        soname: ev.soname.clone(),
        rpath,
        libc,
        toolchain,
        go,
        dotnet: None,
        compiler: shown_comments(compiler),
        build_id: notes.build_id.clone(),
        stripped: !ev.has_symtab,
        debug_info: ev
            .sections
            .iter()
            .any(|s| s.name.starts_with(".debug_") || s.name.starts_with(".zdebug_")),
        debuglink,
        stack_size: stack.map(|s| s.memsz).filter(|n| *n > 0),
        executable_stack: has_load && !matches!(stack, Some(s) if s.flags & ph::PF_X == 0),
        relro,
        bind_now: ev.bind_now(),
        isa_level,
    }
}

/// At most this many `.comment` strings are reported, each cut to
/// [`MAX_COMMENT_CHARS`] characters (real binaries have two to five short
/// ones; a crafted file may have a hundred thousand).
const MAX_COMMENTS: usize = 32;
const MAX_COMMENT_CHARS: usize = 200;

fn shown_comments(all: Vec<String>) -> Vec<String> {
    all.into_iter()
        .take(MAX_COMMENTS)
        .map(|c| match c.char_indices().nth(MAX_COMMENT_CHARS) {
            Some((cut, _)) => format!("{}\u{2026}", &c[..cut]),
            None => c,
        })
        .collect()
}

/// `x86-64`, `aarch64`, ... for an e_machine.
pub(crate) fn machine_name(m: u16) -> String {
    match m {
        header::EM_X86_64 => "x86-64".into(),
        header::EM_AARCH64 => "aarch64".into(),
        header::EM_386 => "x86 (i386)".into(),
        header::EM_ARM => "arm (32-bit)".into(),
        header::EM_RISCV => "riscv".into(),
        header::EM_PPC64 => "ppc64".into(),
        header::EM_S390 => "s390".into(),
        header::EM_MIPS => "mips".into(),
        header::EM_LOONGARCH => "loongarch".into(),
        other => format!("machine {other}"),
    }
}

/// The OCI architecture of an e_machine (`amd64`, `arm64`, ...).
pub(crate) fn oci_arch(m: u16, class64: bool, little: bool) -> &'static str {
    Platform::architecture_of_elf(m, class64, little).unwrap_or("unknown")
}

fn os_abi_name(abi: u8) -> String {
    match abi {
        0 => "sysv".into(),
        3 => "gnu".into(),
        2 => "netbsd".into(),
        6 => "solaris".into(),
        9 => "freebsd".into(),
        12 => "openbsd".into(),
        other => format!("osabi {other}"),
    }
}

fn finding(
    id: &'static str,
    severity: Severity,
    message: impl Into<String>,
    consequence: Option<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        id,
        severity,
        message: message.into(),
        consequence,
        fix,
    }
}

/// How to get a statically linked build, per toolchain.
fn static_fix(cx: &Context<'_, '_>) -> String {
    let musl_target = if cx.ev.e_machine == header::EM_AARCH64 {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    };
    match cx.facts.toolchain {
        Toolchain::Go => {
            let cgo = cx.facts.go.as_ref().and_then(|g| g.cgo_enabled) == Some(true);
            if cgo {
                "build with CGO_ENABLED=0 and without -buildmode=pie; if you need cgo, link it statically: go build -ldflags '-linkmode external -extldflags -static' (against musl)".into()
            } else {
                "build with CGO_ENABLED=0 and without -buildmode=pie (a plain `go build` is static)".into()
            }
        }
        Toolchain::Rust => format!(
            "build for {musl_target} (static by default), or with RUSTFLAGS='-C target-feature=+crt-static'"
        ),
        Toolchain::DotnetNativeaot => {
            "publish it statically: `distroless-pack build` does (StaticExecutable, PositionIndependentExecutable=false, DirectPInvoke libc); by hand: dotnet publish -p:PublishAot=true -p:StaticExecutable=true -p:PositionIndependentExecutable=false with <DirectPInvoke Include=\"libc\" />".into()
        }
        Toolchain::C | Toolchain::Unknown => {
            let zig = if cx.ev.e_machine == header::EM_AARCH64 { "aarch64" } else { "x86_64" };
            format!("link statically: musl-gcc -static, or zig cc -target {zig}-linux-musl")
        }
    }
}

fn architecture(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let ev = cx.ev;
    let got = oci_arch(ev.e_machine, ev.class64, ev.little_endian);
    let want = cx.platform.architecture.as_str();
    if got != want {
        let built = if got == "unknown" {
            format!("{} {}", machine_name(ev.e_machine), cx.facts.class)
        } else {
            format!("{} (linux/{got})", machine_name(ev.e_machine))
        };
        out.push(finding(
            "wrong-architecture",
            Severity::Error,
            format!("built for {built}, but the image platform is {}", cx.platform),
            Some("exec /app: exec format error".into()),
            Some(if got == "unknown" {
                format!("build the program for {}", cx.platform)
            } else {
                format!(
                    "build the program for {} (GOARCH, --target, -r RID), or pack it with --platform linux/{got}",
                    cx.platform
                )
            }),
        ));
    } else if !ev.little_endian {
        out.push(finding(
            "wrong-endianness",
            Severity::Error,
            format!(
                "big-endian {} code; {} runs little-endian programs",
                machine_name(ev.e_machine),
                cx.platform
            ),
            Some("exec /app: exec format error".into()),
            Some(format!(
                "build for the little-endian target of {}",
                cx.platform
            )),
        ));
    }
}

fn os_abi(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if !matches!(cx.ev.os_abi, 0 | 3) {
        out.push(finding(
            "wrong-os",
            Severity::Error,
            format!("built for {} (EI_OSABI {}), not Linux", cx.facts.os_abi, cx.ev.os_abi),
            Some("Linux starts it, but its first system calls fail: it crashes (e.g. 'Bad system call') or misbehaves".into()),
            Some("build for linux (GOOS=linux, a *-linux-* target or RID)".into()),
        ));
    }
}

fn file_type(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let ev = cx.ev;
    match ev.e_type {
        header::ET_EXEC => {}
        header::ET_DYN => {
            // An executable unless it is flagged as a library (DT_SONAME) or
            // has no entry point; DF_1_PIE is not required (lld omits it).
            let library = !ev.is_pie_flagged() && (ev.soname.is_some() || ev.entry == 0);
            if library {
                let why = match &ev.soname {
                    Some(s) => format!("SONAME {s}"),
                    None => "entry point 0".into(),
                };
                out.push(finding(
                    "shared-library",
                    Severity::Error,
                    format!("a shared library ({why}), not an executable"),
                    Some("the container crashes at start (segmentation fault) or fails with `exec /app: no such file or directory`".into()),
                    Some("pack the program's executable, linked statically, not a library it uses".into()),
                ));
            }
        }
        header::ET_REL => out.push(finding(
            "object-file",
            Severity::Error,
            "a relocatable object file (.o), not a linked executable",
            Some("exec /app: exec format error".into()),
            Some("link it into an executable (e.g. musl-gcc -static -o app app.o)".into()),
        )),
        header::ET_CORE => out.push(finding(
            "core-dump",
            Severity::Error,
            "a core dump, not an executable",
            Some("exec /app: exec format error".into()),
            Some("pack the program itself".into()),
        )),
        t => out.push(finding(
            "unknown-file-type",
            Severity::Error,
            format!("ELF file type {t} is not an executable"),
            Some("exec /app: exec format error".into()),
            Some("pack a linked executable".into()),
        )),
    }
}

fn interpreter(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(interp) = &cx.ev.interpreter else {
        return;
    };
    let mut message =
        format!("needs the program interpreter {interp}, which a scratch image does not have");
    if cx.facts.toolchain == Toolchain::Go {
        let cgo = cx.facts.go.as_ref().and_then(|g| g.cgo_enabled);
        message.push_str(match cgo {
            Some(false) => " (a Go binary with CGO_ENABLED=0 gets one from -buildmode=pie)",
            Some(true) => " (cgo is enabled, so Go linked against the system libc)",
            None => " (Go adds one with cgo or -buildmode=pie)",
        });
    }
    out.push(finding(
        "interpreter",
        Severity::Error,
        message,
        Some(format!(
            "exec /app: no such file or directory (the kernel cannot find {interp})"
        )),
        Some(static_fix(cx)),
    ));
}

fn needed(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let needed = &cx.ev.needed;
    let Some(first) = needed.first() else { return };
    let shown = if cx.facts.libc == Libc::Musl {
        format!("Error loading shared library {first}: No such file or directory")
    } else {
        format!("error while loading shared libraries: {first}: cannot open shared object file: No such file or directory")
    };
    let shown = if cx.ev.interpreter.is_some() {
        format!("{shown} (once the interpreter problem is fixed)")
    } else {
        shown
    };
    out.push(finding(
        "needed-library",
        Severity::Error,
        format!(
            "needs shared libraries that a scratch image does not have: {}",
            needed.join(", ")
        ),
        Some(shown),
        Some(static_fix(cx)),
    ));
}

fn rpath(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let paths = &cx.facts.rpath;
    if paths.is_empty() {
        return;
    }
    let static_pie = cx.facts.linkage == Linkage::StaticPie;
    out.push(finding(
        "rpath",
        if static_pie { Severity::Error } else { Severity::Warning },
        format!("has a library search path (DT_RPATH/DT_RUNPATH): {}", paths.join(":")),
        Some(if static_pie {
            "a static-pie with a run path can abort while relocating itself (glibc asserts at start; dotnet/runtime#81163)".into()
        } else {
            format!("libraries are looked up in {}, which does not exist in the image", paths.join(":"))
        }),
        Some("drop -rpath/-Wl,-rpath from the link flags (or `patchelf --remove-rpath`)".into()),
    ));
}

fn text_relocations(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.ev.text_relocations() {
        out.push(finding(
            "text-relocations",
            Severity::Error,
            "has text relocations (DT_TEXTREL): it must patch its own code while starting",
            Some("a static-pie crashes with a segmentation fault before main; SELinux and hardened kernels refuse to load it".into()),
            Some("compile every object with -fPIC/-fPIE; the culprit is usually an assembly file or a non-PIC static library".into()),
        ));
    }
}

fn executable_stack(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if !cx.facts.executable_stack {
        return;
    }
    let missing = cx.ev.segment(ph::PT_GNU_STACK).is_none();
    out.push(finding(
        "executable-stack",
        Severity::Error,
        if missing {
            "has no PT_GNU_STACK header, so the stack is executable".to_string()
        } else {
            "asks for an executable stack (PT_GNU_STACK has PF_X)".to_string()
        },
        Some("the stack (and on older kernels all data) is executable, so any overflow bug becomes code execution; SELinux (execstack) and hardened kernels refuse to start it".into()),
        Some("link with -z noexecstack; the culprit is an object, often assembly, without a .note.GNU-stack section".into()),
    ));
}

fn writable_executable(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let wx: Vec<usize> = cx
        .ev
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.p_type == ph::PT_LOAD && s.flags & ph::PF_W != 0 && s.flags & ph::PF_X != 0
        })
        .map(|(i, _)| i)
        .collect();
    if !wx.is_empty() {
        let list: Vec<String> = wx.iter().map(|i| i.to_string()).collect();
        out.push(finding(
            "writable-executable-segment",
            Severity::Error,
            format!("loadable segment {} is both writable and executable (RWX)", list.join(", ")),
            Some("memory that is writable and executable turns memory bugs into code execution; PaX/SELinux (execmem) kernels refuse to map it".into()),
            Some("do not link with -N/--omagic or a linker script that merges code and data; keep -z separate-code".into()),
        ));
    }
}

/// The .NET facts of a NativeAOT program that is not dynamically linked
/// (a dynamic one does not start at all: `interpreter`).
fn static_dotnet<'c>(cx: &'c Context<'_, '_>) -> Option<&'c DotnetInfo> {
    if cx.facts.linkage == Linkage::Dynamic {
        return None;
    }
    cx.facts.dotnet.as_ref()
}

/// The exception texts below are what the samples printed in an empty root
/// (tests/fixtures/dotnet/README.md).
fn nativeaot_glibc(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(d) = static_dotnet(cx) else { return };
    if cx.facts.libc != Libc::Glibc {
        return;
    }
    let mut what = Vec::new();
    let mut seen = Vec::new();
    let mut fixes = Vec::new();
    let unknown = !d.method_names;
    if unknown || d.uses("host-lookup") {
        what.push("host names");
        seen.push("Dns.GetHostAddresses(\"localhost\") throws System.Net.Sockets.SocketException: Resource temporarily unavailable while the container has no /etc/hosts");
        fixes.push("docker and podman bind-mount /etc/hosts and /etc/resolv.conf into every container; other runtimes need them in the image");
    }
    if unknown || d.uses("user-lookup") {
        what.push("the user (Environment.UserName)");
        seen.push("Environment.UserName throws System.IO.IOException: No such file or directory without an /etc/passwd entry for the user");
    }
    if unknown || d.uses("home-directory") {
        what.push("the home directory (HTTPS certificate stores)");
        seen.push("HTTPS requests fail with System.Net.Http.HttpRequestException: The SSL connection could not be established, see inner exception. --> System.IO.IOException: No such file or directory, even with SSL_CERT_FILE set, unless HOME is set or the user has an /etc/passwd entry");
    }
    if what.is_empty() {
        return;
    }
    if unknown || d.uses("user-lookup") || d.uses("home-directory") {
        fixes.insert(0, "pack with --passwd (an /etc/passwd entry for root, nobody and nonroot, the default user), or set HOME (--env HOME=/home/nonroot) if only the home directory is needed");
    }
    let message = if unknown {
        "a .NET NativeAOT program statically linked against glibc, without method names (StackTraceSupport=false), so whether it looks up host names, the user or its home directory cannot be told; glibc does such lookups from /etc files".to_string()
    } else {
        format!(
            "a .NET NativeAOT program statically linked against glibc that looks up {}: static glibc reads /etc/hosts and /etc/passwd for that",
            what.join(", ")
        )
    };
    out.push(finding(
        "nativeaot-glibc-static",
        Severity::Warning,
        message,
        Some(seen.join("; ")),
        Some(fixes.join("; ")),
    ));
}

/// The message a NativeAOT program without ICU aborts with.
const ICU_ABORT: &str = "Process terminated. Couldn't find a valid ICU package installed on the system. Please install libicu (or icu-libs) using your package manager and try again. Alternatively you can set the configuration flag System.Globalization.Invariant to true if you want to run with no globalization support.";

fn nativeaot_libraries(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(d) = static_dotnet(cx) else { return };
    if d.globalization == "icu-loaded" {
        out.push(finding(
            "icu-library",
            Severity::Error,
            "globalization is on (no InvariantGlobalization) and ICU is not linked in: it loads libicuuc.so at run time with dlopen, which a static binary in a scratch image cannot do",
            Some(format!("the program aborts at its first culture lookup, usually at start (exit 139 as PID 1 in a container, exit 134 outside one): {ICU_ABORT}")),
            Some("build with `--globalization invariant` (no culture data; -p:InvariantGlobalization=true) or `--globalization static-icu` (ICU and its data linked in, -p:StaticICULinking=true), or `--globalization icu-file` and ship the data with --icu-data".into()),
        ));
    }
    if d.openssl == "loaded" {
        out.push(finding(
            "openssl-library",
            Severity::Warning,
            "uses OpenSSL (TLS, crypto) but does not link it: it loads libssl.so.* at run time with dlopen, which a static binary in a scratch image cannot do",
            Some("HTTPS and every other TLS or crypto call fails: No usable version of libssl was found (the process aborts)".into()),
            Some("build with `--openssl static` (-p:StaticOpenSslLinking=true, needs libssl-dev), and ship CA certificates with --ca-certs".into()),
        ));
    }
}

/// Files a static NativeAOT program reads at run time, from what its code
/// does (see dotnet.rs); the generic checks in files_to_ship cover the
/// strings C libraries leave.
fn nativeaot_files(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(d) = static_dotnet(cx) else { return };
    if d.uses("temp-files") || !d.method_names {
        out.push(finding(
            "temp-files",
            Severity::Info,
            if d.method_names {
                "writes temporary files (Path.GetTempPath: $TMPDIR, else /tmp/)"
            } else {
                "may write temporary files (no method names, so it cannot be told)"
            },
            Some("without a writable /tmp: System.IO.DirectoryNotFoundException: Could not find a part of the path '/tmp/...'".into()),
            Some("pack with --passwd (it also adds /tmp, mode 1777), or mount a tmpfs at run time (docker run --tmpfs /tmp)".into()),
        ));
    }
}

fn isa_level(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(level) = &cx.facts.isa_level else {
        return;
    };
    out.push(finding(
        "isa-level",
        Severity::Warning,
        format!("requires an {level} CPU"),
        Some(format!(
            "on an older CPU or an emulator it stops with 'CPU does not support {level}' or dies with SIGILL (illegal instruction)"
        )),
        Some("build for the baseline (-march=x86-64, GOAMD64=v1) unless every machine that runs the image supports it".into()),
    ));
}

/// glibc functions that load `libnss_*` at run time (also kept by the parser).
pub(crate) const NSS_SYMBOLS: &[&str] = &[
    "getaddrinfo",
    "getnameinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname_r",
    "gethostbyname2_r",
    "gethostbyaddr",
    "gethostbyaddr_r",
    "getpwnam",
    "getpwnam_r",
    "getpwuid",
    "getpwuid_r",
    "getgrnam",
    "getgrnam_r",
    "getgrgid",
    "getgrgid_r",
    "getgrouplist",
    "initgroups",
    "getservbyname",
    "getservbyname_r",
    "getprotobyname",
];

fn glibc_static(cx: &Context<'_, '_>) -> bool {
    cx.facts.libc == Libc::Glibc && cx.facts.linkage != Linkage::Dynamic
}

fn glibc_nss(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    // NativeAOT: nativeaot-glibc-static says which lookups its code does.
    if !glibc_static(cx) || cx.facts.toolchain == Toolchain::DotnetNativeaot {
        return;
    }
    let used: Vec<&str> = NSS_SYMBOLS
        .iter()
        .copied()
        .filter(|s| cx.ev.has_symbol(s))
        .collect();
    if used.is_empty() && !cx.strings.contains(needle::NSSWITCH) {
        return;
    }
    let what = if used.is_empty() {
        "uses glibc's NSS (/etc/nsswitch.conf) in a static binary".to_string()
    } else {
        format!("calls {} from a static glibc", used.join(", "))
    };
    out.push(finding(
        "glibc-nss",
        Severity::Warning,
        what,
        Some("host, user and group lookups go through glibc NSS, which loads libnss_*.so of the exact glibc version used for linking; a scratch image has none, so DNS and user lookups fail (e.g. 'Temporary failure in name resolution')".into()),
        Some("link against musl instead (musl-gcc -static, Rust *-linux-musl, Go CGO_ENABLED=0), or avoid these functions".into()),
    ));
}

fn glibc_iconv(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if glibc_static(cx) && cx.ev.has_symbol("iconv_open") {
        out.push(finding(
            "glibc-iconv",
            Severity::Warning,
            "calls iconv_open from a static glibc",
            Some("character-set conversions fail (iconv_open returns EINVAL): glibc loads gconv modules from GCONV_PATH at run time, and a scratch image has none".into()),
            Some("link against musl (its iconv is built in), or convert with a library linked into the program".into()),
        ));
    }
}

fn dynamic_loading(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.facts.libc == Libc::Musl
        && cx.facts.linkage != Linkage::Dynamic
        && cx.strings.contains(needle::MUSL_NO_DLOPEN)
    {
        out.push(finding(
            "dynamic-loading",
            Severity::Warning,
            "calls dlopen, which musl's static libc does not support",
            Some("every dlopen fails with 'Dynamic loading not supported': plugins and optional libraries are never loaded".into()),
            Some("link what it loads into the program statically, or turn the feature off".into()),
        ));
    }
}

fn stack_size(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.facts.libc != Libc::Musl {
        return;
    }
    let size = cx.facts.stack_size;
    if cx.facts.toolchain == Toolchain::DotnetNativeaot {
        if size.unwrap_or(0) < NATIVEAOT_STACK {
            out.push(finding(
                "stack-size",
                Severity::Warning,
                format!(
                    "thread stack size is {} (PT_GNU_STACK); .NET on musl needs {}",
                    size.map(human_size).unwrap_or_else(|| "musl's default 128 KiB".into()),
                    human_size(NATIVEAOT_STACK)
                ),
                Some("threads overflow their stack and the process crashes (segmentation fault / stack overflow)".into()),
                Some("link with -Wl,-z,stack-size=1572864 (the .NET SDK does this for musl; check custom LinkerArg settings)".into()),
            ));
        }
    } else if size.is_none()
        && matches!(cx.facts.toolchain, Toolchain::C | Toolchain::Unknown)
        && cx.ev.has_symbol("pthread_create")
    {
        out.push(finding(
            "stack-size",
            Severity::Info,
            "creates threads; those without an explicit stack size get musl's default of 128 KiB",
            Some("deep recursion in such threads crashes with a segmentation fault".into()),
            Some(
                "link with -Wl,-z,stack-size=N to raise musl's default, or size threads explicitly"
                    .into(),
            ),
        ));
    }
}

fn files_to_ship(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.facts.toolchain == Toolchain::DotnetNativeaot {
        return dotnet_files_to_ship(cx, out);
    }
    let has = |n| cx.strings.contains(n);
    if has(needle::SSL_DIR) {
        out.push(finding(
            "ca-certificates",
            Severity::Info,
            "reads CA certificates from /etc/ssl",
            Some("TLS connections fail: 'x509: certificate signed by unknown authority' / 'unable to get local issuer certificate'".into()),
            Some("pack with --ca-certs to add a CA bundle at /etc/ssl/certs/ca-certificates.crt".into()),
        ));
    }
    if has(needle::ZONEINFO) {
        out.push(finding(
            "tzdata",
            Severity::Info,
            "reads time zone data from /usr/share/zoneinfo",
            Some(
                "time zones other than UTC cannot be loaded (TZ is ignored; local time is UTC)"
                    .into(),
            ),
            Some("pack with --tzdata (Go can also embed it: import _ \"time/tzdata\")".into()),
        ));
    }
    if has(needle::ICU_DATA_DIR) {
        out.push(finding(
            "icu-data",
            Severity::Info,
            "looks for ICU data under /usr/share/icu/",
            Some("culture-aware formatting, collation and time zone names fail or fall back to invariant behaviour".into()),
            Some("pack with --icu-data to add the ICU .dat file (or embed it, e.g. -p:EmbedIcuDataPath)".into()),
        ));
    }
}

/// `ca-certificates` and `tzdata` for NativeAOT, from what its code does
/// (the C-string evidence of files_to_ship is glibc's, not the program's).
/// No `icu-data`: static ICU carries its data.
fn dotnet_files_to_ship(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    let Some(d) = static_dotnet(cx) else { return };
    if d.uses("tls-chain") || (!d.method_names && d.openssl != "none") {
        out.push(finding(
            "ca-certificates",
            Severity::Info,
            "checks TLS certificate chains (HTTPS) against the system's CA certificates (/etc/ssl/certs, or SSL_CERT_FILE)",
            Some("HTTPS fails: System.Security.Authentication.AuthenticationException: The remote certificate is invalid because of errors in the certificate chain: PartialChain".into()),
            Some("pack with --ca-certs (a CA bundle at /etc/ssl/certs/ca-certificates.crt and SSL_CERT_FILE)".into()),
        ));
    }
    if d.uses("time-zones") {
        out.push(finding(
            "tzdata",
            Severity::Info,
            "uses TimeZoneInfo, which reads /usr/share/zoneinfo",
            Some("TimeZoneInfo.FindSystemTimeZoneById(\"Europe/Berlin\") throws System.TimeZoneNotFoundException: The time zone ID 'Europe/Berlin' was not found on the local computer. --> System.IO.DirectoryNotFoundException: Could not find a part of the path '/usr/share/zoneinfo/Europe/Berlin'.; local time is UTC".into()),
            Some("pack with --tzdata (and --env TZ=Europe/Berlin for a local zone)".into()),
        ));
    }
}

fn relro(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.ev.has_dynamic && cx.facts.relro == Relro::None && cx.ev.e_type == header::ET_DYN {
        out.push(finding(
            "no-relro",
            Severity::Info,
            "relocated data is not made read-only after start (no PT_GNU_RELRO)",
            None,
            Some("link with -z relro -z now".into()),
        ));
    }
}

fn stripped(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if cx.facts.stripped && !cx.facts.debug_info {
        return;
    }
    let bytes: u64 = cx
        .ev
        .sections
        .iter()
        .filter(|s| {
            s.name == ".symtab"
                || s.name == ".strtab"
                || s.name.starts_with(".debug_")
                || s.name.starts_with(".zdebug_")
        })
        .fold(0u64, |sum, s| sum.saturating_add(s.size));
    let what = if cx.facts.debug_info {
        "a symbol table and debug info"
    } else {
        "a symbol table"
    };
    let fix = match cx.facts.toolchain {
        Toolchain::Go => "build with -ldflags='-s -w', or strip it",
        Toolchain::Rust => "set profile.release.strip = true (or -C strip=symbols), or strip it",
        _ => "strip it (strip --strip-all, or link with -s)",
    };
    out.push(finding(
        "not-stripped",
        Severity::Info,
        format!(
            "carries {what} ({} KiB the program does not need to run)",
            bytes / 1024
        ),
        None,
        Some(format!("{fix} for a smaller image")),
    ));
}

fn debuglink(cx: &Context<'_, '_>, out: &mut Vec<Finding>) {
    if let Some(name) = &cx.facts.debuglink {
        out.push(finding(
            "debuglink",
            Severity::Info,
            format!("debug info is in a separate file, {name} (.gnu_debuglink); it is not needed at run time"),
            None,
            None,
        ));
    }
}
