//! Just enough ELF to decide whether a program can start: its machine and
//! its program interpreter (`PT_INTERP`), read from the header and the
//! program headers only, so a 500 MB binary costs a few reads.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// What the first bytes of the entrypoint say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramKind {
    /// An ELF file for `machine` (`e_machine`), with its interpreter if any.
    Elf {
        machine: u16,
        interpreter: Option<String>,
    },
    /// A `#!` script and the interpreter it names.
    Script { interpreter: String },
    /// Neither: the kernel will refuse it (ENOEXEC).
    Unknown,
}

pub use distroless_pack_image::platform::{EM_AARCH64, EM_X86_64};
use distroless_pack_image::Platform;

/// The `e_machine` of the host.
pub fn host_machine() -> Option<u16> {
    Platform::host().elf_machine()
}

/// The qemu-user emulator for an ELF machine.
pub fn qemu_name(machine: u16) -> Option<&'static str> {
    match machine {
        EM_AARCH64 => Some("qemu-aarch64"),
        EM_X86_64 => Some("qemu-x86_64"),
        _ => None,
    }
}

/// The OCI architecture name of an ELF machine.
pub fn machine_name(machine: u16) -> String {
    Platform::architecture_of_elf(machine, true, true)
        .or_else(|| Platform::architecture_of_elf(machine, false, true))
        .map(str::to_string)
        .unwrap_or_else(|| format!("e_machine {machine}"))
}

/// Reads the program kind of `path` (a regular file).
pub fn inspect(path: &Path) -> io::Result<ProgramKind> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 64];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        let mut line = head[2..].to_vec();
        // The interpreter line may be longer than 64 bytes.
        if !line.contains(&b'\n') {
            let mut more = [0u8; 192];
            let m = read_up_to(&mut f, &mut more)?;
            line.extend_from_slice(&more[..m]);
        }
        let line = line.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let text = String::from_utf8_lossy(line);
        let interpreter = text.split_whitespace().next().unwrap_or("").to_string();
        return Ok(ProgramKind::Script { interpreter });
    }
    if n < 20 || &head[..4] != b"\x7fELF" {
        return Ok(ProgramKind::Unknown);
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        _ => return Ok(ProgramKind::Unknown),
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Ok(ProgramKind::Unknown),
    };
    let u16_at = |b: &[u8], o: usize| -> u16 {
        let a = [b[o], b[o + 1]];
        if little {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    };
    let u32_at = |b: &[u8], o: usize| -> u32 {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let u64_at = |b: &[u8], o: usize| -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        if little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    };
    let machine = u16_at(head, 18);
    let (phoff, phentsize, phnum) = if class64 {
        if n < 64 {
            return Ok(ProgramKind::Elf {
                machine,
                interpreter: None,
            });
        }
        (
            u64_at(head, 32),
            u16_at(head, 54) as u64,
            u16_at(head, 56) as u64,
        )
    } else {
        if n < 52 {
            return Ok(ProgramKind::Elf {
                machine,
                interpreter: None,
            });
        }
        (
            u32_at(head, 28) as u64,
            u16_at(head, 42) as u64,
            u16_at(head, 44) as u64,
        )
    };
    let min_entry = if class64 { 56 } else { 32 };
    let file_len = f.metadata()?.len();
    if phentsize < min_entry
        || phnum == 0
        || phnum > 4096
        || !matches!(phoff.checked_add(phentsize * phnum), Some(end) if end <= file_len)
    {
        return Ok(ProgramKind::Elf {
            machine,
            interpreter: None,
        });
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    f.seek(SeekFrom::Start(phoff))?;
    f.read_exact(&mut table)?;
    for i in 0..phnum as usize {
        let e = &table[i * phentsize as usize..];
        let p_type = u32_at(e, 0);
        if p_type != 3 {
            continue; // PT_INTERP
        }
        let (offset, size) = if class64 {
            (u64_at(e, 8), u64_at(e, 32))
        } else {
            (u32_at(e, 4) as u64, u32_at(e, 16) as u64)
        };
        if size == 0
            || size > 4096
            || !matches!(offset.checked_add(size), Some(end) if end <= file_len)
        {
            return Ok(ProgramKind::Elf {
                machine,
                interpreter: Some(String::new()),
            });
        }
        let mut buf = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let interp = String::from_utf8_lossy(&buf[..end]).into_owned();
        return Ok(ProgramKind::Elf {
            machine,
            interpreter: Some(interp),
        });
    }
    Ok(ProgramKind::Elf {
        machine,
        interpreter: None,
    })
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_interpreter_of_this_test_binary_and_scripts() {
        // The test binary itself is a normal dynamic executable.
        let me = std::env::current_exe().unwrap();
        match inspect(&me).unwrap() {
            ProgramKind::Elf {
                machine,
                interpreter,
            } => {
                assert_eq!(Some(machine), host_machine());
                assert!(interpreter.unwrap().contains("ld-"));
            }
            other => panic!("{other:?}"),
        }
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("s");
        std::fs::write(&s, "#!/bin/sh -e\necho hi\n").unwrap();
        assert_eq!(
            inspect(&s).unwrap(),
            ProgramKind::Script {
                interpreter: "/bin/sh".into()
            }
        );
        let g = d.path().join("g");
        std::fs::write(&g, "garbage").unwrap();
        assert_eq!(inspect(&g).unwrap(), ProgramKind::Unknown);
        let t = d.path().join("t");
        std::fs::write(&t, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(inspect(&t).unwrap(), ProgramKind::Unknown);
    }
}
