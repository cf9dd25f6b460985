//! The test corpus: real executables built by real toolchains, once per
//! recipe, into `target/tmp/test-corpus/`.
//!
//! Every function returns the path of a finished file and builds it the first
//! time it is asked for. A build runs in a temporary directory and its output
//! is renamed into place, so tests running in parallel (threads or processes)
//! never see a half-written file; a per-recipe lock keeps threads of one test
//! process from building the same thing twice. The cache key includes a hash
//! of the recipe (source and flags), so editing a recipe rebuilds it. Set
//! `DISTROLESS_PACK_TEST_CORPUS=DIR` to build into another directory (a
//! cold cache: the first run builds everything, about a minute).
//!
//! A missing toolchain fails the calling test with the package to install
//! (`util::require_tool`); nothing is skipped.
//!
//! Unless documented otherwise, a program prints [`HELLO`] followed by a
//! newline on stdout and exits 0, and is built for linux/amd64.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::util;

/// What every hello program prints (followed by a newline).
pub const HELLO: &str = "hello from distroless-pack";

/// hello.c: prints HELLO.
pub const HELLO_C: &str = r#"#include <stdio.h>
int main(void) {
    puts("hello from distroless-pack");
    return 0;
}
"#;

/// Resolves a host name (argv[1], default "localhost") with getaddrinfo,
/// then prints HELLO and exits 0 whatever the lookup gave.
pub const GETADDRINFO_C: &str = r#"#include <netdb.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    struct addrinfo hints, *res = 0;
    memset(&hints, 0, sizeof hints);
    int rc = getaddrinfo(argc > 1 ? argv[1] : "localhost", "80", &hints, &res);
    if (argc > 2) printf("getaddrinfo: %s\n", rc ? gai_strerror(rc) : "ok");
    puts("hello from distroless-pack");
    return 0;
}
"#;

/// A hello program that keeps a pointer in .text: linked as a static-pie
/// with `-z notext` it needs text relocations.
pub const TEXTREL_C: &str = r#"#include <stdio.h>
__asm__(".text\n.globl ptr_in_text\nptr_in_text: .quad main\n");
int main(void) {
    puts("hello from distroless-pack");
    return 0;
}
"#;

/// A C program that looks like .NET NativeAOT output to the verifier: the
/// `__managedcode` and `__modules` sections, a `DotNetRuntimeDebugHeader`
/// symbol, and the strings NativeAOT uses to dlopen ICU and OpenSSL.
pub const NATIVEAOT_LOOKALIKE_C: &str = r#"#include <stdio.h>
__attribute__((section("__managedcode"), used)) static const char managed[16] = "managed";
__attribute__((section("__modules"), used)) static const void *modules[2] = { managed, 0 };
__attribute__((used)) const char DotNetRuntimeDebugHeader[32] = "DNDH";
static const char *probes[] = { "libicuuc.so.%d", "libssl.so.3", "CLR_OPENSSL_VERSION_OVERRIDE", 0 };
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) for (int i = 0; probes[i]; i++) puts(probes[i]);
    puts("hello from distroless-pack");
    return 0;
}
"#;

/// main.go: prints HELLO.
pub const HELLO_GO: &str = r#"package main

import "fmt"

func main() { fmt.Println("hello from distroless-pack") }
"#;

/// main.rs: prints HELLO.
pub const HELLO_RS: &str = r#"fn main() {
    println!("hello from distroless-pack");
}
"#;

// ---------------------------------------------------------------- C, musl

/// musl-gcc -static: ET_EXEC, no interpreter, no dynamic section, libc musl.
/// Verify: pass.
pub fn musl_static_hello() -> PathBuf {
    cached(
        "musl-static-hello",
        &[HELLO_C, "musl-gcc -static -O2"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(Command::new(musl_gcc())
                .args(["-static", "-O2", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// musl static-pie (rcrt1.o, `-static-pie`; Debian's musl-gcc wrapper
/// cannot do this itself): ET_DYN with a dynamic section and DF_1_PIE, no
/// interpreter, no DT_NEEDED. Verify: pass.
pub fn musl_static_pie_hello() -> PathBuf {
    cached(
        "musl-static-pie-hello",
        &[HELLO_C, "static-pie"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            musl_static_pie(work, &src, &[], out);
        },
    )
}

/// musl static-pie linked with `-rpath /opt/lib`: a DT_RUNPATH in a
/// static-pie. Runs, but verify: error `rpath`.
pub fn musl_static_pie_rpath() -> PathBuf {
    cached(
        "musl-static-pie-rpath",
        &[HELLO_C, "static-pie -rpath"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            musl_static_pie(work, &src, &["-Wl,-rpath,/opt/lib"], out);
        },
    )
}

/// musl static-pie with text relocations (`-z notext`, a pointer in .text).
/// Crashes at start (SIGSEGV); verify: error `text-relocations`.
pub fn musl_static_pie_textrel() -> PathBuf {
    cached(
        "musl-static-pie-textrel",
        &[TEXTREL_C, "static-pie -z notext"],
        |out, work| {
            let src = util::write_file(work, "textrel.c", TEXTREL_C.as_bytes());
            musl_static_pie(work, &src, &["-Wl,-z,notext"], out);
        },
    )
}

/// musl-gcc -static -z execstack: PT_GNU_STACK with PF_X. Runs; verify:
/// error `executable-stack`.
pub fn musl_execstack_hello() -> PathBuf {
    cached(
        "musl-execstack-hello",
        &[HELLO_C, "musl-gcc -static -z execstack"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(Command::new(musl_gcc())
                .args(["-static", "-O2", "-z", "execstack", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// musl-gcc -static -Wl,-N (omagic): one RWX PT_LOAD segment. Crashes at
/// start on this kernel; verify: error `writable-executable-segment`.
pub fn musl_rwx_segment() -> PathBuf {
    cached(
        "musl-rwx-segment",
        &[HELLO_C, "musl-gcc -static -Wl,-N"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(Command::new(musl_gcc())
                .args(["-static", "-O2", "-Wl,-N", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// musl-gcc -static -march=x86-64-v3 -mneeded: an x86 ISA-needed note
/// saying x86-64-v3. Runs on v3 CPUs; verify: warning `isa-level`.
pub fn musl_x86_64_v3_hello() -> PathBuf {
    cached(
        "musl-x86-64-v3-hello",
        &[HELLO_C, "musl-gcc -static -march=x86-64-v3 -mneeded"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(Command::new(musl_gcc())
                .args(["-static", "-O2", "-march=x86-64-v3", "-mneeded", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// A static musl C program dressed up as .NET NativeAOT output (see
/// [`NATIVEAOT_LOOKALIKE_C`]). Runs and prints HELLO; verify: errors
/// `icu-library`, warnings `openssl-library` and `stack-size`.
pub fn nativeaot_lookalike() -> PathBuf {
    cached(
        "nativeaot-lookalike",
        &[NATIVEAOT_LOOKALIKE_C, "musl-gcc -static"],
        |out, work| {
            let src = util::write_file(work, "aot.c", NATIVEAOT_LOOKALIKE_C.as_bytes());
            run(Command::new(musl_gcc())
                .args(["-static", "-O2", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// zig cc -target aarch64-linux-musl: a static aarch64 C program (musl,
/// PT_GNU_STACK size 16 MiB). Verify: pass with --platform linux/arm64.
/// The first zig build for a target takes about a minute (zig builds its
/// libc into ~/.cache/zig), later ones well under a second.
pub fn zig_arm64_c_hello() -> PathBuf {
    cached(
        "zig-arm64-c-hello",
        &[HELLO_C, "zig cc -target aarch64-linux-musl -O2"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(zig_cc()
                .args(["-target", "aarch64-linux-musl", "-O2", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

// ---------------------------------------------------------------- C, glibc

/// gcc -static calling getaddrinfo (see [`GETADDRINFO_C`]): static glibc
/// with NSS. Runs and prints HELLO; verify: warning `glibc-nss`.
pub fn glibc_static_getaddrinfo() -> PathBuf {
    cached(
        "glibc-static-getaddrinfo",
        &[GETADDRINFO_C, "gcc -static"],
        |out, work| {
            let src = util::write_file(work, "gai.c", GETADDRINFO_C.as_bytes());
            run(Command::new(gcc())
                .args(["-static", "-O2", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// Plain gcc: a dynamically linked PIE with interpreter
/// /lib64/ld-linux-x86-64.so.2 and DT_NEEDED libc.so.6. Runs on the host,
/// fails in a scratch image; verify: errors `interpreter`, `needed-library`.
pub fn glibc_dynamic_hello() -> PathBuf {
    cached("glibc-dynamic-hello", &[HELLO_C, "gcc"], |out, work| {
        let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
        run(Command::new(gcc()).args(["-O2", "-o"]).arg(out).arg(src));
    })
}

/// gcc -shared -fPIC with soname libhello.so.1: a shared library, not an
/// executable. Verify: errors `shared-library`, `needed-library`.
pub fn shared_library() -> PathBuf {
    cached(
        "libhello.so",
        &[HELLO_C, "gcc -shared -fPIC -soname"],
        |out, work| {
            let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
            run(Command::new(gcc())
                .args(["-shared", "-fPIC", "-O2", "-Wl,-soname,libhello.so.1", "-o"])
                .arg(out)
                .arg(src));
        },
    )
}

/// An object file (gcc -c). Verify: error `object-file`.
pub fn object_file() -> PathBuf {
    cached("hello.o", &[HELLO_C, "gcc -c"], |out, work| {
        let src = util::write_file(work, "hello.c", HELLO_C.as_bytes());
        run(Command::new(gcc())
            .args(["-c", "-O2", "-o"])
            .arg(out)
            .arg(src));
    })
}

// ---------------------------------------------------------------- Go

/// CGO_ENABLED=0 go build: static ET_EXEC, libc none, toolchain go.
/// Verify: pass.
pub fn go_static_hello() -> PathBuf {
    go_build("go-static-hello", "amd64", &[], &[])
}

/// CGO_ENABLED=0 go build -buildmode=pie: gets an interpreter
/// (/lib64/ld-linux-x86-64.so.2) though it needs no library. Runs on the
/// host; verify: error `interpreter`.
pub fn go_pie_hello() -> PathBuf {
    go_build("go-pie-hello", "amd64", &["-buildmode=pie"], &[])
}

/// CGO_ENABLED=0 GOARCH=arm64 go build: static aarch64 ET_EXEC. Verify:
/// pass with --platform linux/arm64, error `wrong-architecture` for amd64.
pub fn go_arm64_hello() -> PathBuf {
    go_build("go-arm64-hello", "arm64", &[], &[])
}

/// CGO_ENABLED=0 GOAMD64=v3 go build: static, build info says GOAMD64=v3.
/// Verify: warning `isa-level`.
pub fn go_amd64_v3_hello() -> PathBuf {
    go_build("go-amd64-v3-hello", "amd64", &[], &[("GOAMD64", "v3")])
}

// ---------------------------------------------------------------- Rust

/// cargo build --target x86_64-unknown-linux-gnu with
/// RUSTFLAGS='-C target-feature=+crt-static': a glibc static-pie (ET_DYN,
/// no interpreter, no DT_NEEDED). Verify: pass.
pub fn rust_glibc_static_hello() -> PathBuf {
    rust_build(
        "rust-glibc-static-hello",
        "x86_64-unknown-linux-gnu",
        "-C target-feature=+crt-static",
    )
}

// ---------------------------------------------------------------- bad input

/// The first 3000 bytes of [`musl_static_hello`]: a valid ELF header whose
/// segments and sections run past the end. Verify: exit 2, "malformed".
pub fn truncated_elf() -> PathBuf {
    let src = musl_static_hello();
    cached(
        "truncated-elf",
        &["first 3000 bytes of musl-static-hello"],
        |out, _| {
            let bytes = fs::read(&src).unwrap();
            fs::write(out, &bytes[..3000.min(bytes.len())]).unwrap();
        },
    )
}

/// The first 40 bytes of [`musl_static_hello`]: cut inside the ELF header.
/// Verify: exit 2, "truncated".
pub fn truncated_header() -> PathBuf {
    let src = musl_static_hello();
    cached(
        "truncated-header",
        &["first 40 bytes of musl-static-hello"],
        |out, _| {
            let bytes = fs::read(&src).unwrap();
            fs::write(out, &bytes[..40]).unwrap();
        },
    )
}

/// 64 KiB of deterministic pseudo-random bytes. Verify: exit 2, "not an ELF file".
pub fn garbage() -> PathBuf {
    cached(
        "garbage",
        &["xorshift 64 KiB, seed 0x9e3779b97f4a7c15"],
        |out, _| {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let bytes: Vec<u8> = (0..65536)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            fs::write(out, bytes).unwrap();
        },
    )
}

/// A shell script (`#!/bin/sh`, prints HELLO), mode 0755. Verify: exit 2,
/// "not an ELF file (starts with #! — a script?)".
pub fn shell_script() -> PathBuf {
    cached("hello.sh", &["#!/bin/sh echo"], |out, _| {
        fs::write(out, format!("#!/bin/sh\necho '{HELLO}'\n")).unwrap();
    })
}

// ---------------------------------------------------------------- machinery

/// `target/tmp/test-corpus`, or `$DISTROLESS_PACK_TEST_CORPUS` when set
/// (to test a cold cache without disturbing the shared one).
fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("DISTROLESS_PACK_TEST_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-corpus"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Returns `cache/<name>-<hash>/<name>`, building it with `build(out, work)`
/// if it is not there yet. `recipe` is everything that determines the
/// output; `work` is an empty scratch directory.
fn cached(name: &str, recipe: &[&str], build: impl FnOnce(&Path, &Path)) -> PathBuf {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    for part in recipe {
        h.update([0]);
        h.update(part.as_bytes());
    }
    let hash = hex::encode(h.finalize());
    let cache = cache_dir();
    let final_dir = cache.join(format!("{name}-{}", &hash[..12]));
    let final_path = final_dir.join(name);

    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(final_dir.clone())
        .or_default()
        .clone();
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    if final_path.is_file() {
        return final_path;
    }
    let work = tempfile::Builder::new()
        .prefix(".work-")
        .tempdir_in(&cache)
        .expect("work dir");
    let stage = tempfile::Builder::new()
        .prefix(".stage-")
        .tempdir_in(&cache)
        .expect("stage dir");
    let out = stage.path().join(name);
    build(&out, work.path());
    assert!(
        out.is_file(),
        "building {name} produced no file at {}",
        out.display()
    );
    let stage = stage.keep();
    if fs::rename(&stage, &final_dir).is_err() {
        // Another process finished the same recipe first; use its copy.
        let _ = fs::remove_dir_all(&stage);
    }
    assert!(
        final_path.is_file(),
        "{} missing after build",
        final_path.display()
    );
    final_path
}

#[track_caller]
fn run(cmd: &mut Command) {
    util::run_ok(cmd);
}

fn musl_gcc() -> PathBuf {
    util::require_tool("musl-gcc", "apt-get install -y musl-tools")
}

fn gcc() -> PathBuf {
    util::require_tool("gcc", "apt-get install -y gcc libc6-dev")
}

/// `python3 -m ziglang cc` (zig from PyPI).
fn zig_cc() -> Command {
    let python = util::require_tool("python3", "apt-get install -y python3 python3-pip");
    let ok = Command::new(&python)
        .args(["-m", "ziglang", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "zig is not installed: run `pip install ziglang` (python3 -m ziglang must work)"
    );
    let mut cmd = Command::new(python);
    cmd.args(["-m", "ziglang", "cc"]);
    cmd
}

/// The directory holding musl's crt files and libc.a, read from the
/// musl-gcc wrapper's `-specs` path.
fn musl_lib_dir() -> PathBuf {
    let wrapper = fs::read_to_string(musl_gcc()).unwrap_or_default();
    let from_specs = wrapper
        .split('"')
        .find(|s| s.ends_with("musl-gcc.specs"))
        .and_then(|s| Path::new(s).parent().map(Path::to_path_buf));
    let dir = from_specs.unwrap_or_else(|| PathBuf::from("/usr/lib/musl/lib"));
    assert!(
        dir.join("rcrt1.o").is_file(),
        "musl's rcrt1.o not found in {}: run `apt-get install -y musl-tools musl-dev`",
        dir.display()
    );
    dir
}

/// gcc -print-file-name / -print-libgcc-file-name.
fn gcc_file(arg: &str) -> PathBuf {
    PathBuf::from(util::run_ok(Command::new(gcc()).arg(arg)).trim())
}

/// Compiles `src` with musl-gcc -fPIE and links a static-pie by hand.
fn musl_static_pie(work: &Path, src: &Path, link_args: &[&str], out: &Path) {
    let obj = work.join("main.o");
    run(Command::new(musl_gcc())
        .args(["-fPIE", "-O2", "-c", "-o"])
        .arg(&obj)
        .arg(src));
    let m = musl_lib_dir();
    run(Command::new(gcc())
        .args(["-nostdlib", "-static-pie", "-o"])
        .arg(out)
        .arg(m.join("rcrt1.o"))
        .arg(m.join("crti.o"))
        .arg(gcc_file("-print-file-name=crtbeginS.o"))
        .arg(&obj)
        .args(link_args)
        .arg(format!("-L{}", m.display()))
        .arg("-lc")
        .arg(gcc_file("-print-libgcc-file-name"))
        .arg(gcc_file("-print-file-name=crtendS.o"))
        .arg(m.join("crtn.o")));
}

fn go_build(name: &str, goarch: &str, flags: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let mut recipe = vec![HELLO_GO, goarch];
    recipe.extend_from_slice(flags);
    let env_desc: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let env_desc = env_desc.join(" ");
    recipe.push(&env_desc);
    cached(name, &recipe, |out, work| {
        let go = util::require_tool("go", "apt-get install -y golang-go");
        util::write_file(work, "main.go", HELLO_GO.as_bytes());
        util::write_file(work, "go.mod", b"module hello\n\ngo 1.19\n");
        let cache = cache_dir();
        let mut cmd = Command::new(go);
        cmd.current_dir(work)
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", goarch)
            .env("GOCACHE", cache.join("go-build"))
            .env("GOPATH", cache.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .args(["build", "-trimpath", "-buildvcs=false"])
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(".");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd);
    })
}

fn rust_build(name: &str, target: &str, rustflags: &str) -> PathBuf {
    cached(name, &[HELLO_RS, target, rustflags], |out, work| {
        let cargo = util::require_tool(
            "cargo",
            "install Rust with rustup (https://rustup.rs), then scripts/install-deps.sh",
        );
        let rustc = util::require_tool(
            "rustc",
            "install Rust with rustup (https://rustup.rs), then scripts/install-deps.sh",
        );
        let sysroot = util::run_ok(Command::new(rustc).args(["--print", "sysroot"]));
        assert!(
            Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(target)
                .is_dir(),
            "Rust target {target} is not installed: run `rustup target add {target}`"
        );
        util::write_file(
            work,
            "Cargo.toml",
            b"[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        );
        util::write_file(work, "src/main.rs", HELLO_RS.as_bytes());
        let target_dir = cache_dir().join("rust-target");
        run(Command::new(cargo)
            .current_dir(work)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env("RUSTFLAGS", rustflags)
            .args([
                "build",
                "--quiet",
                "--release",
                "--offline",
                "--target",
                target,
                "--target-dir",
            ])
            .arg(&target_dir));
        fs::copy(target_dir.join(target).join("release/hello"), out).unwrap();
    })
}

// ---------------------------------------------------------------- .NET NativeAOT

/// A real `dotnet publish` output (NativeAOT, .NET SDK 10.0.401, runtime
/// 10.0.12), checked in under tests/fixtures/dotnet/ with its sources and
/// what it printed in an empty root (tests/fixtures/dotnet/README.md).
/// `rel` is `<sample-folder>/<file>`, e.g. `probe-static/Probe`.
pub fn dotnet_sample(rel: &str) -> PathBuf {
    let p = util::repo_root().join("tests/fixtures/dotnet").join(rel);
    assert!(p.is_file(), "missing fixture {}", p.display());
    p
}

/// The offset and size fields of section `name` in an ELF64 little-endian file.
fn section_header_of(bytes: &[u8], name: &str) -> usize {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let shoff = u64_at(40) as usize;
    let shnum = u16::from_le_bytes([bytes[60], bytes[61]]) as usize;
    let shstrndx = u16::from_le_bytes([bytes[62], bytes[63]]) as usize;
    let names = u64_at(shoff + 64 * shstrndx + 24) as usize;
    (0..shnum)
        .map(|i| shoff + 64 * i)
        .find(|h| {
            let n = u32::from_le_bytes(bytes[*h..*h + 4].try_into().unwrap()) as usize;
            bytes[names + n..].starts_with(name.as_bytes()) && bytes[names + n + name.len()] == 0
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// The console-static sample with one change by `patch`, cached as `name`.
fn damaged_console(name: &str, what: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let src = dotnet_sample("console-static/console-static");
    cached(name, &[what], |out, _| {
        let mut bytes = fs::read(&src).unwrap();
        patch(&mut bytes);
        fs::write(out, &bytes).unwrap();
    })
}

/// console-static cut in half: its section headers (at the end) are gone
/// past the end of the file. Verify: exit 2, "malformed".
pub fn dotnet_truncated() -> PathBuf {
    damaged_console("dotnet-truncated", "first half of console-static", |b| {
        b.truncate(b.len() / 2)
    })
}

/// console-static with its `.comment` overwritten by non-UTF-8 bytes after
/// `.NET: ilc ` (no version). Verify: still NativeAOT (its sections), no
/// runtime version, the verdict of console-static.
pub fn dotnet_corrupt_comment() -> PathBuf {
    damaged_console(
        "dotnet-corrupt-comment",
        ".comment = .NET: ilc + 0xff.. bytes",
        |b| {
            let h = section_header_of(b, ".comment");
            let off = u64::from_le_bytes(b[h + 24..h + 32].try_into().unwrap()) as usize;
            let size = u64::from_le_bytes(b[h + 32..h + 40].try_into().unwrap()) as usize;
            let mut junk: Vec<u8> = b".NET: ilc ".to_vec();
            junk.extend((0..size).map(|i| 0x80 | (i as u8).wrapping_mul(37)));
            b[off..off + size].copy_from_slice(&junk[..size]);
        },
    )
}

/// console-static whose `__managedcode` section header claims 2^62 bytes.
/// Verify: exit 2, "section N (__managedcode) ... extends past the end".
pub fn dotnet_huge_managedcode() -> PathBuf {
    damaged_console(
        "dotnet-huge-managedcode",
        "__managedcode sh_size = 1 << 62",
        |b| {
            let h = section_header_of(b, "__managedcode");
            b[h + 32..h + 40].copy_from_slice(&(1u64 << 62).to_le_bytes());
        },
    )
}
