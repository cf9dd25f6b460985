//! The build record: what a build used that pins its result
//! ([`PinnedInputs`]). `compile` fills it at build time; `sbom` reads it to
//! list what the binary is made of and to write the provenance. The types
//! live here because two stages share them (compile writes, sbom reads).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The package ecosystem, named as package URLs (purl) name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Cargo,
    Golang,
    Nuget,
}

impl Ecosystem {
    /// The purl type (`pkg:TYPE/...`).
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Cargo => "cargo",
            Ecosystem::Golang => "golang",
            Ecosystem::Nuget => "nuget",
        }
    }
}

/// One third-party package the build compiled in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// Where it came from (`registry+https://...`, a Go replacement path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The lock file's or go.sum's checksum (`sha256:HEX`, `h1:...`, `sha512-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The license the package declares (an SPDX expression as cargo
    /// metadata gives it, or a NuGet nuspec's `<license type="expression">`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

/// The builder image a container build ran in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderImage {
    pub name: String,
    /// The image ID (`sha256:` of its config), as the engine reports it.
    pub id: String,
    /// Registry digests (`NAME@sha256:...`) when the image was pulled.
    pub repo_digests: Vec<String>,
}

/// A static library the link took in (a C build's `lib*.a`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StaticLibrary {
    /// The file name (`libz.a`).
    pub name: String,
    /// Where the link found it, as the build saw it.
    pub path: String,
    /// `sha256:HEX` of the file.
    pub sha256: String,
    /// In the project tree (built or vendored by the project), not the
    /// toolchain's.
    #[serde(default)]
    pub in_project: bool,
}

/// The project's source tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTree {
    /// `sha256:HEX` over the tree (see `compile::inputs::source_tree`
    /// for what it covers).
    pub digest: String,
    /// The checked-out commit, when the project is a git checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Whether the checkout had changes not in that commit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub git_dirty: bool,
}

/// Everything a build used that pins its result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedInputs {
    /// Tool name -> the first line of its `--version` (e.g. `rustc` ->
    /// `rustc 1.95.0 (59807616e 2026-04-14)`); for .NET also `ilcompiler`
    /// (the ILCompiler package's version) and `dotnet-sdk`.
    pub toolchain: BTreeMap<String, String>,
    /// The builder image (container runner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_image: Option<BuilderImage>,
    /// Third-party packages compiled in, sorted.
    pub packages: Vec<Package>,
    /// .NET: the runtime packs the publish took the runtime from
    /// (`downloadDependencies` of project.assets.json), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_packs: Vec<Package>,
    /// C: the static libraries the link took in, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_libraries: Vec<StaticLibrary>,
    /// The project's source tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceTree>,
}
