//! `os/architecture[/variant]` platforms.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::ImageConfiguration;

/// ELF `e_machine` values of the architectures we name.
pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const EM_PPC64: u16 = 21;
pub const EM_S390: u16 = 22;
pub const EM_RISCV: u16 = 243;
pub const EM_LOONGARCH: u16 = 258;

/// A platform such as `linux/amd64` or `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A platform string that could not be parsed or is not supported.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected linux/amd64 or linux/arm64")]
pub struct PlatformError(pub String);

impl Platform {
    pub fn linux(architecture: &str) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The platform of the machine running this program.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Platform::linux(arch)
    }

    /// The OCI architecture of an ELF `e_machine` (with the file's class and
    /// byte order, which some machines need): `amd64`, `arm64`, ... The one
    /// table verify, run and compile share.
    pub fn architecture_of_elf(machine: u16, class64: bool, little: bool) -> Option<&'static str> {
        Some(match (machine, class64) {
            (EM_X86_64, true) => "amd64",
            (EM_AARCH64, true) => "arm64",
            (EM_386, _) => "386",
            (EM_ARM, _) => "arm",
            (EM_RISCV, true) => "riscv64",
            (EM_PPC64, true) if little => "ppc64le",
            (EM_PPC64, true) => "ppc64",
            (EM_S390, true) => "s390x",
            (EM_LOONGARCH, true) => "loong64",
            _ => return None,
        })
    }

    /// The ELF `e_machine` of this platform's executables (amd64 and arm64).
    pub fn elf_machine(&self) -> Option<u16> {
        match self.architecture.as_str() {
            "amd64" => Some(EM_X86_64),
            "arm64" => Some(EM_AARCH64),
            _ => None,
        }
    }

    /// The CPU name toolchains use in target triples and qemu names:
    /// `x86_64`, `aarch64`.
    pub fn cpu(&self) -> &str {
        match self.architecture.as_str() {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            other => other,
        }
    }

    /// The platform an image config declares.
    pub fn from_config(config: &ImageConfiguration) -> Platform {
        Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        }
    }

    /// Equal, treating a missing variant as a wildcard (`linux/arm64`
    /// matches `linux/arm64/v8`).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// `{"os":..,"architecture":..[,"variant":..]}` as in an index.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "architecture": self.architecture, "os": self.os });
        if let Some(variant) = &self.variant {
            v["variant"] = variant.clone().into();
        }
        v
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            // A bare architecture means Linux, as docker reads `--platform amd64`.
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(PlatformError(s.to_string())),
        };
        let arch = match arch {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        if os != "linux" || !matches!(arch, "amd64" | "arm64") {
            return Err(PlatformError(s.to_string()));
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant,
        })
    }
}

impl Platform {
    /// Every platform distroless-pack builds and packs for, what `all`
    /// names: linux/amd64 and linux/arm64.
    pub fn all() -> Vec<Platform> {
        vec![Platform::linux("amd64"), Platform::linux("arm64")]
    }
}

/// One `--platform` (or `platforms` entry) of `build` and `pack`: a
/// platform, or `all` for [`Platform::all`] (as ko's `--platform=all`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformChoice(pub Vec<Platform>);

/// A `--platform` value that is neither a platform nor `all`.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected linux/amd64, linux/arm64 or all")]
pub struct PlatformChoiceError(pub String);

impl FromStr for PlatformChoice {
    type Err = PlatformChoiceError;
    fn from_str(s: &str) -> Result<PlatformChoice, PlatformChoiceError> {
        if s == "all" {
            return Ok(PlatformChoice(Platform::all()));
        }
        s.parse::<Platform>()
            .map(|p| PlatformChoice(vec![p]))
            .map_err(|_| PlatformChoiceError(s.to_string()))
    }
}

/// The platforms `choices` name, in their order (`all` expanded).
pub fn expand_choices(choices: &[PlatformChoice]) -> Vec<Platform> {
    choices.iter().flat_map(|c| c.0.iter().cloned()).collect()
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_names_both_platforms() {
        let all: PlatformChoice = "all".parse().unwrap();
        assert_eq!(all.0, Platform::all());
        let one: PlatformChoice = "linux/arm64".parse().unwrap();
        assert_eq!(one.0, [Platform::linux("arm64")]);
        let e = "linux/s390x".parse::<PlatformChoice>().unwrap_err();
        assert!(e.to_string().contains("or all"), "{e}");
        assert_eq!(
            expand_choices(&[one, all]),
            [
                Platform::linux("arm64"),
                Platform::linux("amd64"),
                Platform::linux("arm64")
            ]
        );
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap(),
            Platform::linux("amd64")
        );
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!("windows/amd64".parse::<Platform>().is_err());
        assert!("linux".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
        for (alias, arch) in [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("arm64", "arm64"),
        ] {
            assert_eq!(alias.parse::<Platform>().unwrap(), Platform::linux(arch));
        }
        assert_eq!(
            "linux/aarch64".parse::<Platform>().unwrap(),
            Platform::linux("arm64")
        );
        assert!(Platform::linux("arm64").matches(&"linux/arm64/v8".parse().unwrap()));
    }

    #[test]
    fn elf_machines_map_to_architectures_both_ways() {
        for arch in ["amd64", "arm64"] {
            let p = Platform::linux(arch);
            let m = p.elf_machine().unwrap();
            assert_eq!(Platform::architecture_of_elf(m, true, true), Some(arch));
        }
        assert_eq!(
            Platform::architecture_of_elf(EM_PPC64, true, true),
            Some("ppc64le")
        );
        assert_eq!(Platform::architecture_of_elf(EM_X86_64, false, true), None);
        assert_eq!(Platform::linux("arm64").cpu(), "aarch64");
    }
}
