//! Finding the executable a build produced.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::BuildError;
use crate::Locate;

/// Directories never searched for build outputs.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "CMakeFiles",
    "obj",
    "target",
    ".cache",
];

/// Whether `path` is an executable ELF file (ET_EXEC, or ET_DYN with an
/// execute bit and not named like a shared library); `.dbg` and `.o` files
/// never are.
pub fn is_executable_elf(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".dbg") || name.ends_with(".o") || name.contains(".so") {
        return false;
    }
    let mut head = [0u8; 18];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.read_exact(&mut head).is_err() || &head[..4] != b"\x7fELF" {
        return false;
    }
    let e_type = match head[5] {
        1 => u16::from_le_bytes([head[16], head[17]]),
        2 => u16::from_be_bytes([head[16], head[17]]),
        _ => return false,
    };
    e_type == 2 || e_type == 3
}

/// Every executable ELF file under `dir`, sorted.
pub fn executables(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut out, 0);
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 12 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let name = e.file_name();
            if !SKIP_DIRS.contains(&name.to_string_lossy().as_ref()) {
                walk(&p, out, depth + 1);
            }
        } else if ft.is_file() && is_executable_elf(&p) {
            out.push(p);
        }
    }
}

/// Modification times of the executables under `dir`, taken before a build.
pub type Snapshot = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

pub fn snapshot(dir: &Path) -> Snapshot {
    executables(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let stamp = (
                m.as_ref().and_then(|m| m.modified().ok()),
                m.map(|m| m.len()).unwrap_or(0),
            );
            (p, stamp)
        })
        .collect()
}

/// The first regular file in `dir`, if any.
pub fn first_file(dir: &Path) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v.into_iter().next()
}

fn display(paths: &[PathBuf], base: &Path) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.strip_prefix(base).unwrap_or(p).display().to_string())
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Picks one executable from `candidates`: the one named `wanted` (when
/// set), else `prefer` (the project's own target name), else the only one.
pub fn pick(
    candidates: &[PathBuf],
    wanted: Option<&str>,
    prefer: Option<&str>,
    base: &Path,
    looked: &Path,
) -> Result<PathBuf, BuildError> {
    if let Some(w) = wanted {
        let hits: Vec<&PathBuf> = candidates.iter().filter(|p| file_name(p) == w).collect();
        return match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(BuildError::NotFound {
                name: w.to_string(),
                candidates: display(candidates, base),
            }),
            _ => Err(BuildError::Ambiguous {
                what: format!("the executable name {w:?}"),
                candidates: display(&hits.into_iter().cloned().collect::<Vec<_>>(), base),
                key: "binary".into(),
                flag: "--bin".into(),
            }),
        };
    }
    if let Some(p) = prefer {
        let hits: Vec<&PathBuf> = candidates.iter().filter(|c| file_name(c) == p).collect();
        if let [one] = hits.as_slice() {
            return Ok((*one).clone());
        }
    }
    match candidates {
        [] => Err(BuildError::NoBinary {
            looked: looked.to_path_buf(),
        }),
        [one] => Ok(one.clone()),
        _ => Err(BuildError::Ambiguous {
            what: "the executable to pack".into(),
            candidates: display(candidates, base),
            key: "binary".into(),
            flag: "--bin".into(),
        }),
    }
}

/// Executables named in cargo's `--message-format=json` output.
pub fn cargo_executables(messages: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in messages.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if m["reason"] == "compiler-artifact" {
            if let Some(e) = m["executable"].as_str() {
                // Only binaries, not test or bench harnesses.
                let is_bin = m["target"]["kind"]
                    .as_array()
                    .map(|k| k.iter().any(|k| k == "bin"))
                    .unwrap_or(false);
                if is_bin && !v.iter().any(|x| x == e) {
                    v.push(e.to_string());
                }
            }
        }
    }
    v
}

/// Runs a [`Locate`] rule; `map` turns runner paths into host paths.
pub fn locate(
    rule: &Locate,
    wanted: Option<&str>,
    map: &dyn Fn(&str) -> PathBuf,
    before: Option<&Snapshot>,
) -> Result<PathBuf, BuildError> {
    match rule {
        Locate::Exact(p) => {
            let p = map(p);
            if p.is_file() {
                Ok(p)
            } else {
                Err(BuildError::NoBinary { looked: p })
            }
        }
        Locate::CargoMessages(f) => {
            let file = map(f);
            let text = std::fs::read_to_string(&file).map_err(BuildError::io(&file))?;
            let cands: Vec<PathBuf> = cargo_executables(&text).iter().map(|e| map(e)).collect();
            let base = cands
                .first()
                .and_then(|p| p.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            pick(&cands, wanted, None, &base, &file)
        }
        Locate::Scan { dir, prefer } => {
            let d = map(dir);
            let mut cands = Vec::new();
            walk(&d, &mut cands, 0);
            cands.sort();
            pick(&cands, wanted, prefer.as_deref(), &d, &d)
        }
        Locate::Changed(dir) => {
            let d = map(dir);
            let all = executables(&d);
            if wanted.is_some() {
                return pick(&all, wanted, None, &d, &d);
            }
            let changed: Vec<PathBuf> = all
                .iter()
                .filter(|p| {
                    let m = std::fs::metadata(p).ok();
                    let now = (
                        m.as_ref().and_then(|m| m.modified().ok()),
                        m.map(|m| m.len()).unwrap_or(0),
                    );
                    before.and_then(|b| b.get(*p)) != Some(&now)
                })
                .cloned()
                .collect();
            if changed.is_empty() {
                pick(&all, None, None, &d, &d)
            } else {
                pick(&changed, None, None, &d, &d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(dir: &Path, name: &str, e_type: u8, mode: u32) -> PathBuf {
        let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        b.resize(16, 0);
        b.extend_from_slice(&[e_type, 0, 62, 0]);
        b.resize(64, 0);
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn finds_executables_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        elf(d, "app", 2, 0o755);
        elf(d, "app.dbg", 2, 0o755);
        elf(d, "foo.o", 1, 0o644);
        elf(d, "libx.so.1", 3, 0o755);
        elf(d, "noexec", 2, 0o644);
        std::fs::write(d.join("script.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(d.join("script.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(executables(d), vec![d.join("app")]);
    }

    #[test]
    fn ambiguity_lists_candidates_and_names_key() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let a = elf(d, "a", 2, 0o755);
        let b = elf(d, "b", 3, 0o755);
        let e = pick(&[a.clone(), b.clone()], None, None, d, d).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("a, b") && msg.contains("`binary`") && msg.contains("--bin"),
            "{msg}"
        );
        assert_eq!(
            pick(&[a.clone(), b.clone()], Some("b"), None, d, d).unwrap(),
            b
        );
        assert_eq!(
            pick(&[a.clone(), b.clone()], None, Some("a"), d, d).unwrap(),
            a
        );
        assert!(matches!(
            pick(&[a], Some("zz"), None, d, d),
            Err(BuildError::NotFound { .. })
        ));
    }

    #[test]
    fn cargo_messages() {
        let m = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["bin"]},"executable":"/src/target/x/release/hello"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            cargo_executables(m),
            vec!["/src/target/x/release/hello".to_string()]
        );
    }
}
