//! The project kind, from the files in the directory.

use std::path::{Path, PathBuf};

use crate::error::BuildError;
use crate::Kind;

/// Project files of .NET (`*.csproj`, `*.fsproj`, `*.vbproj`) in `dir`, sorted.
pub fn dotnet_projects(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("csproj" | "fsproj" | "vbproj")
                )
        })
        .collect();
    v.sort();
    v
}

/// The kind of the project in `dir`. A .NET project file wins over the
/// others (a .NET app may carry a Makefile for its native library), then
/// Cargo, Go, CMake, make.
pub fn detect(dir: &Path) -> Result<Kind, BuildError> {
    if !dotnet_projects(dir).is_empty() {
        return Ok(Kind::Dotnet);
    }
    if dir.join("Cargo.toml").is_file() {
        return Ok(Kind::Cargo);
    }
    if dir.join("go.mod").is_file() {
        return Ok(Kind::Go);
    }
    if c_build_system(dir).is_some() {
        return Ok(Kind::C);
    }
    Err(BuildError::UnknownKind {
        dir: dir.to_path_buf(),
    })
}

/// `cmake` or `make`, from the files present.
pub fn c_build_system(dir: &Path) -> Option<&'static str> {
    if dir.join("CMakeLists.txt").is_file() {
        Some("cmake")
    } else if ["Makefile", "makefile", "GNUmakefile"]
        .iter()
        .any(|f| dir.join(f).is_file())
    {
        Some("make")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_kind() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert!(matches!(detect(d), Err(BuildError::UnknownKind { .. })));
        std::fs::write(d.join("Makefile"), "all:\n").unwrap();
        assert_eq!(detect(d).unwrap(), Kind::C);
        std::fs::write(d.join("go.mod"), "module x\n").unwrap();
        assert_eq!(detect(d).unwrap(), Kind::Go);
        std::fs::write(d.join("Cargo.toml"), "").unwrap();
        assert_eq!(detect(d).unwrap(), Kind::Cargo);
        std::fs::write(d.join("App.csproj"), "<Project/>").unwrap();
        assert_eq!(detect(d).unwrap(), Kind::Dotnet);
    }
}
