//! Stripping the built binary, and keeping its debug info on request.
//!
//! Cargo and C builds leave DWARF and the symbol table in the executable
//! (ripgrep's release build: 27 of its 31.7 MiB). The image never needs
//! them, so the located binary is stripped with objcopy on the host
//! (`--strip-all`). With `save_debug`, the debug info is first copied out
//! with `objcopy --only-keep-debug` into `NAME.debug`, and the stripped
//! binary gets a `.gnu_debuglink` naming it (what gdb and perf follow).
//! Binaries that carry neither (Go with `-s -w`, NativeAOT with
//! `StripSymbols`) are left as they are.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;
use crate::runner::which;
use crate::Platform;

/// What stripping did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripped {
    /// Size before and after.
    pub before: u64,
    pub after: u64,
    /// The separate debug file, when asked for.
    pub debug_file: Option<PathBuf>,
}

/// Whether the ELF file has debug sections or a symbol table.
pub fn has_symbols(bytes: &[u8]) -> bool {
    let Ok(elf) = goblin::elf::Elf::parse(bytes) else {
        return false;
    };
    elf.section_headers.iter().any(|sh| {
        // Allocated sections are part of the program (Rust's
        // `.debug_gdb_scripts` is one): strip keeps them anyway.
        if sh.sh_flags & u64::from(goblin::elf::section_header::SHF_ALLOC) != 0 {
            return false;
        }
        let name = elf.shdr_strtab.get_at(sh.sh_name).unwrap_or("");
        name == ".symtab" || name.starts_with(".debug_") || name.starts_with(".zdebug_")
    })
}

/// Whether the ELF file needs no program interpreter and no shared library.
pub fn is_static(bytes: &[u8]) -> bool {
    match goblin::elf::Elf::parse(bytes) {
        Ok(elf) => elf.interpreter.is_none() && elf.libraries.is_empty(),
        Err(_) => false,
    }
}

/// The objcopy that understands `platform`'s ELF files, and how to get one.
pub fn objcopy_for(platform: &Platform) -> Result<String, String> {
    let host = Platform::host().architecture;
    let (triple, pkg) = match platform.architecture.as_str() {
        "arm64" => ("aarch64-linux-gnu", "binutils-aarch64-linux-gnu"),
        _ => ("x86_64-linux-gnu", "binutils-x86-64-linux-gnu"),
    };
    let mut candidates = vec![format!("{triple}-objcopy")];
    if platform.architecture == host {
        candidates.insert(0, "objcopy".to_string());
    }
    candidates.push("llvm-objcopy".to_string());
    candidates
        .into_iter()
        .find(|c| which(c).is_some())
        .ok_or_else(|| {
            if platform.architecture == host {
                "apt-get install -y binutils".to_string()
            } else {
                format!("apt-get install -y {pkg} (or llvm)")
            }
        })
}

fn objcopy(tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), BuildError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| BuildError::Invalid(format!("cannot run {tool}: {e}")))?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            command: format!(
                "{tool} {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            status: format!("exit status {}", out.status.code().unwrap_or(-1)),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
            summary: String::new(),
        });
    }
    Ok(())
}

/// Strips `binary` in place. Returns `Ok(None)` when there was nothing to
/// strip, `Err(hint)` in the outer result's `Ok` when no objcopy exists.
pub fn strip(
    binary: &Path,
    platform: &Platform,
    keep_debug: bool,
) -> Result<Result<Option<Stripped>, String>, BuildError> {
    let bytes = std::fs::read(binary).map_err(BuildError::io(binary))?;
    if !has_symbols(&bytes) {
        return Ok(Ok(None));
    }
    let tool = match objcopy_for(platform) {
        Ok(t) => t,
        Err(hint) => return Ok(Err(hint)),
    };
    let before = bytes.len() as u64;
    drop(bytes);
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    let tmp = binary.with_file_name(format!(".{name}.stripped"));
    let debug_file = if keep_debug {
        let d = binary.with_file_name(format!("{name}.debug"));
        objcopy(
            &tool,
            &[
                "--only-keep-debug".as_ref(),
                binary.as_os_str(),
                d.as_os_str(),
            ],
        )?;
        let link = format!("--add-gnu-debuglink={}", d.display());
        objcopy(
            &tool,
            &[
                "--strip-all".as_ref(),
                link.as_ref(),
                binary.as_os_str(),
                tmp.as_os_str(),
            ],
        )?;
        Some(d)
    } else {
        objcopy(
            &tool,
            &["--strip-all".as_ref(), binary.as_os_str(), tmp.as_os_str()],
        )?;
        None
    };
    std::fs::rename(&tmp, binary).map_err(BuildError::io(binary))?;
    let after = std::fs::metadata(binary)
        .map_err(BuildError::io(binary))?
        .len();
    Ok(Ok(Some(Stripped {
        before,
        after,
        debug_file,
    })))
}
