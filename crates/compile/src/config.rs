//! `distroless-pack.toml`: everything the flags can say, kept with the project.
//!
//! Unknown keys are an error naming the file, the line and the key, so a typo
//! never silently does nothing. Flags given on the command line override the
//! file (the CLI does the merge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::BuildError;
use crate::{Kind, RunnerChoice};

/// The file name looked for in the project directory.
pub const FILE_NAME: &str = "distroless-pack.toml";

/// The whole file. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    // --- build ---
    /// `dotnet`, `cargo`, `go` or `c` (default: detected from the directory).
    pub kind: Option<Kind>,
    /// `auto`, `container` or `host`.
    pub runner: Option<RunnerChoice>,
    /// Builder image for the container runner.
    pub builder_image: Option<String>,
    /// `docker` or `podman` for the container runner.
    pub engine: Option<String>,
    /// Platforms to build, e.g. `["linux/amd64", "linux/arm64"]`.
    pub platforms: Option<Vec<String>>,
    /// Name of the executable to pack when the build makes several.
    pub binary: Option<String>,
    /// A shell command run in the project directory before the build, with
    /// the same runner and `CC`/`AR` set to the musl toolchain.
    pub pre_build: Option<String>,
    /// Build from local inputs only: cargo `--offline --locked`, Go from
    /// `vendor/` or with `GOPROXY=off`, .NET restore from `dotnet.source`
    /// only, and the builder container without a network.
    pub offline: Option<bool>,
    /// Strip the binary (default `true`): debug info and the symbol table
    /// never go into the image.
    pub strip: Option<bool>,
    /// Keep the debug info: `NAME.debug` (`objcopy --only-keep-debug`, the
    /// binary gets a `.gnu_debuglink` to it; NativeAOT's own `NAME.dbg` for
    /// .NET) is copied into this directory.
    pub save_debug: Option<PathBuf>,

    // --- image ---
    /// Image name (repository), used with `tags` when no --tag is given.
    pub name: Option<String>,
    /// Tags for `name` (default `["latest"]`).
    pub tags: Option<Vec<String>>,
    /// Path of the binary inside the image.
    pub path: Option<String>,
    /// Arguments after the entrypoint.
    pub args: Option<Vec<String>>,
    /// Environment variables of the image.
    pub env: Option<BTreeMap<String, String>>,
    /// `uid:gid` the program runs as.
    pub user: Option<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Exposed ports, e.g. `["8080/tcp"]`.
    pub ports: Option<Vec<String>>,
    /// Image config labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Manifest annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Opt-in files beside the binary.
    pub extras: Option<Extras>,
    /// The SBOM and provenance attached to the image.
    pub sbom: Option<SbomConfig>,
    /// `cache = false`, or a `[cache]` table: the layer cache
    /// (docs/commands/cache.md).
    pub cache: Option<CacheSetting>,
    /// Layer compression, `gzip[:LEVEL]` (default) or `zstd[:LEVEL]`
    /// (checked by the pipeline's settings).
    pub compression: Option<String>,

    // --- per kind ---
    pub dotnet: Option<DotnetConfig>,
    pub cargo: Option<CargoConfig>,
    pub go: Option<GoConfig>,
    pub c: Option<CConfig>,
}

/// The build keys of the file (and the build flags laid over them): all
/// that compiling needs. The image keys (name, env, labels, extras, ...)
/// and `platforms` stay with the pipeline's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildConfig {
    pub kind: Option<Kind>,
    pub runner: Option<RunnerChoice>,
    pub builder_image: Option<String>,
    pub engine: Option<String>,
    pub binary: Option<String>,
    pub pre_build: Option<String>,
    pub offline: Option<bool>,
    pub strip: Option<bool>,
    pub save_debug: Option<PathBuf>,
    pub dotnet: Option<DotnetConfig>,
    pub cargo: Option<CargoConfig>,
    pub go: Option<GoConfig>,
    pub c: Option<CConfig>,
}

impl Config {
    /// The build keys, for [`crate::Request`].
    pub fn build_keys(&self) -> BuildConfig {
        BuildConfig {
            kind: self.kind,
            runner: self.runner,
            builder_image: self.builder_image.clone(),
            engine: self.engine.clone(),
            binary: self.binary.clone(),
            pre_build: self.pre_build.clone(),
            offline: self.offline,
            strip: self.strip,
            save_debug: self.save_debug.clone(),
            dotnet: self.dotnet.clone(),
            cargo: self.cargo.clone(),
            go: self.go.clone(),
            c: self.c.clone(),
        }
    }
}

/// Opt-in extra files (`pack --ca-certs`, `--tzdata`, `--passwd`, `--icu-data`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Extras {
    /// `true` for the host bundle, or a file path.
    pub ca_certs: Option<PathOrBool>,
    pub tzdata: Option<bool>,
    pub passwd: Option<bool>,
    /// An ICU `.dat` file to ship (the dotnet `icu-file` mode sets this itself).
    pub icu_data: Option<PathBuf>,
}

/// `[sbom]`: the documents attached to each image (`--sbom`,
/// `--sbom-format`, `--provenance`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SbomConfig {
    /// Attach an SBOM (default true).
    pub enabled: Option<bool>,
    /// `spdx` (default), `cyclonedx` or `both`.
    pub format: Option<String>,
    /// Attach the provenance statement (default true).
    pub provenance: Option<bool>,
}

/// `[cache]`: `enabled = false` turns the layer cache off for the project;
/// `max_size` bounds it (`"2GiB"`, `"500MB"`, or a number of bytes).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: Option<bool>,
    pub max_size: Option<SizeValue>,
}

/// `cache = true|false`, or the `[cache]` table.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheSetting {
    Enabled(bool),
    Table(CacheConfig),
}

/// By hand rather than `untagged`, so a typo inside `[cache]` is reported
/// as the unknown key it is.
impl<'de> Deserialize<'de> for CacheSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CacheSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or a [cache] table")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<CacheSetting, E> {
                Ok(CacheSetting::Enabled(b))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<CacheSetting, A::Error> {
                CacheConfig::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(CacheSetting::Table)
            }
        }
        d.deserialize_any(V)
    }
}

impl CacheSetting {
    /// Whether the file turns the cache on or off (`None`: it does not say).
    pub fn enabled(&self) -> Option<bool> {
        match self {
            CacheSetting::Enabled(b) => Some(*b),
            CacheSetting::Table(t) => t.enabled,
        }
    }

    /// The bound the file gives, if any.
    pub fn max_size(&self) -> Option<&SizeValue> {
        match self {
            CacheSetting::Enabled(_) => None,
            CacheSetting::Table(t) => t.max_size.as_ref(),
        }
    }
}

/// A size: a number of bytes, or a string with a unit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// `true`/`false`, or a path.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PathOrBool {
    Bool(bool),
    Path(PathBuf),
}

/// `[dotnet]`: the NativeAOT recipe's knobs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DotnetConfig {
    /// The project file when the directory holds several.
    pub project: Option<String>,
    /// `invariant` (default), `static-icu` or `icu-file`.
    pub globalization: Option<Globalization>,
    /// ICU `.dat` to embed or ship (default: the one under /usr/share/icu).
    pub icu_data: Option<String>,
    /// `auto` (default), `static` or `off`.
    pub openssl: Option<OpenSsl>,
    /// Static libraries (`.a`/`.o`) linked in, relative to the project.
    pub native_libraries: Option<Vec<String>>,
    /// Extra Direct P/Invoke modules or `module!entry` (libc is always added).
    pub direct_pinvoke: Option<Vec<String>>,
    /// Raw linker arguments.
    pub linker_args: Option<Vec<String>>,
    /// `false` links `-static` instead of `-static-pie` (dotnet/runtime#81086).
    pub pie: Option<bool>,
    /// Extra MSBuild properties.
    pub properties: Option<BTreeMap<String, String>>,
    /// A local NuGet feed (a folder of `.nupkg` files), relative to the
    /// project: restore uses it as its only source (`--source`).
    pub source: Option<String>,
    /// The C library linked in: `musl` (RID linux-musl-*) or `glibc`
    /// (linux-*). Default: musl in the builder container, the host's own
    /// with `--runner host`.
    pub libc: Option<Libc>,
}

/// The C library a .NET binary is linked against (it picks the RID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    /// musl: `linux-musl-x64`, `linux-musl-arm64` (the seed's Alpine recipe).
    Musl,
    /// glibc: `linux-x64`, `linux-arm64` (a Debian or Ubuntu host).
    Glibc,
}

impl Libc {
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Musl => "musl",
            Libc::Glibc => "glibc",
        }
    }
}

impl std::str::FromStr for Libc {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "musl" => Ok(Libc::Musl),
            "glibc" => Ok(Libc::Glibc),
            _ => Err(format!("unknown C library {s:?}: expected musl or glibc")),
        }
    }
}

/// How a .NET app gets its globalization data.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Globalization {
    /// `InvariantGlobalization=true`: no ICU at all.
    #[default]
    Invariant,
    /// ICU linked statically, its data embedded (`EmbedIcuDataPath`, .NET 10+).
    StaticIcu,
    /// ICU linked statically, the `.dat` shipped in the image with `ICU_DATA`.
    IcuFile,
}

impl std::str::FromStr for Globalization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "invariant" => Ok(Globalization::Invariant),
            "static-icu" => Ok(Globalization::StaticIcu),
            "icu-file" => Ok(Globalization::IcuFile),
            _ => Err(format!(
                "unknown globalization mode {s:?}: expected invariant, static-icu or icu-file"
            )),
        }
    }
}

/// Whether OpenSSL is linked statically.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OpenSsl {
    /// Static when the project looks like it uses TLS or crypto.
    #[default]
    Auto,
    /// Always `StaticOpenSslLinking=true`.
    Static,
    /// Never.
    Off,
}

impl std::str::FromStr for OpenSsl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(OpenSsl::Auto),
            "static" | "true" => Ok(OpenSsl::Static),
            "off" | "false" => Ok(OpenSsl::Off),
            _ => Err(format!(
                "unknown openssl mode {s:?}: expected auto, static or off"
            )),
        }
    }
}

/// `[cargo]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CargoConfig {
    pub features: Option<Vec<String>>,
    pub no_default_features: Option<bool>,
    /// Cargo profile (default `release`).
    pub profile: Option<String>,
    /// Package in a workspace (`-p`).
    pub package: Option<String>,
}

/// `[go]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GoConfig {
    /// The main package (default `.`, or the single `cmd/*`).
    pub package: Option<String>,
    /// `-ldflags` (default `-s -w`).
    pub ldflags: Option<String>,
    /// Build tags.
    pub tags: Option<Vec<String>>,
}

/// `[c]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CConfig {
    /// `make` or `cmake` (default: from the files present).
    pub build: Option<String>,
    /// Extra arguments to make (targets or variables).
    pub make_args: Option<Vec<String>>,
    /// Extra arguments to the cmake configure step.
    pub cmake_args: Option<Vec<String>>,
    /// The C compiler (command line, e.g. `"zig cc -target x86_64-linux-musl"`)
    /// instead of the detected musl one; `-static` is still added.
    pub cc: Option<String>,
    /// The C++ compiler, likewise.
    pub cxx: Option<String>,
}

impl BuildConfig {
    /// Whether the build may use local inputs only (`offline = true`).
    pub fn offline(&self) -> bool {
        self.offline == Some(true)
    }

    /// Whether the binary is stripped (default yes).
    pub fn strip(&self) -> bool {
        self.strip != Some(false)
    }
}

impl Config {
    /// Reads `dir/distroless-pack.toml`; a missing file is an empty config.
    pub fn load_dir(dir: &Path) -> Result<(Config, Option<PathBuf>), BuildError> {
        let file = dir.join(FILE_NAME);
        if !file.exists() {
            return Ok((Config::default(), None));
        }
        Ok((Config::load(&file)?, Some(file)))
    }

    /// Reads and parses one file.
    pub fn load(file: &Path) -> Result<Config, BuildError> {
        let text = std::fs::read_to_string(file).map_err(|e| BuildError::Config {
            file: file.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text).map_err(|message| BuildError::Config {
            file: file.to_path_buf(),
            message,
        })
    }

    /// Parses the text of a file; the error is one line with the line number.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    let key = text.get(span.clone()).unwrap_or("").trim();
                    if msg.starts_with("unknown field") || key.is_empty() || key.len() > 60 {
                        format!("line {line}: {msg}")
                    } else {
                        format!("line {line}: `{key}`: {msg}")
                    }
                }
                None => msg,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let c = Config::parse(
            r#"
kind = "dotnet"
runner = "container"
platforms = ["linux/amd64"]
name = "console"
tags = ["1.0"]
args = ["--x"]
env = { A = "b" }
ports = ["8080/tcp"]
[extras]
ca_certs = true
tzdata = true
[dotnet]
globalization = "icu-file"
openssl = "static"
native_libraries = ["libfoo.a"]
direct_pinvoke = ["foo!add"]
pie = false
libc = "glibc"
"#,
        )
        .unwrap();
        assert_eq!(c.kind, Some(Kind::Dotnet));
        assert_eq!(c.runner, Some(RunnerChoice::Container));
        let d = c.dotnet.unwrap();
        assert_eq!(d.globalization, Some(Globalization::IcuFile));
        assert_eq!(d.openssl, Some(OpenSsl::Static));
        assert_eq!(d.pie, Some(false));
        assert_eq!(d.libc, Some(Libc::Glibc));
        assert_eq!("musl".parse::<Libc>(), Ok(Libc::Musl));
        assert!("bionic".parse::<Libc>().is_err());
        assert_eq!(c.extras.unwrap().ca_certs, Some(PathOrBool::Bool(true)));
    }

    #[test]
    fn build_keys_hold_the_build_settings_and_no_image_key() {
        let c = Config::parse(
            r#"
kind = "go"
runner = "host"
binary = "srv"
offline = true
strip = false
name = "srv"
env = { PORT = "8080" }
[go]
package = "./cmd/srv"
"#,
        )
        .unwrap();
        let b = c.build_keys();
        assert_eq!(b.kind, Some(Kind::Go));
        assert_eq!(b.runner, Some(RunnerChoice::Host));
        assert_eq!(b.binary.as_deref(), Some("srv"));
        assert!(b.offline() && !b.strip());
        assert_eq!(b.go.and_then(|g| g.package).as_deref(), Some("./cmd/srv"));
        // The image keys stay in the file model for the pipeline.
        assert_eq!(c.name.as_deref(), Some("srv"));
        assert!(BuildConfig::default().strip());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e =
            Config::parse("name = \"x\"\n[dotnet]\nglobalisation = \"invariant\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("globalisation"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn cache_is_a_bool_or_a_table_and_a_typo_in_it_is_named() {
        let off = Config::parse("cache = false\n").unwrap();
        assert_eq!(off.cache, Some(CacheSetting::Enabled(false)));
        let t = Config::parse("[cache]\nenabled = true\nmax_size = \"1GiB\"\n").unwrap();
        let t = t.cache.unwrap();
        assert_eq!(t.enabled(), Some(true));
        assert_eq!(t.max_size(), Some(&SizeValue::Text("1GiB".into())));
        let n = Config::parse("[cache]\nmax_size = 4096\n").unwrap();
        assert_eq!(n.cache.unwrap().max_size(), Some(&SizeValue::Bytes(4096)));
        let e = Config::parse("[cache]\nenable = false\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("unknown field `enable`"),
            "{e}"
        );
        let e = Config::parse("cache = \"no\"\n").unwrap_err();
        assert!(e.contains("true, false or a [cache] table"), "{e}");
    }

    #[test]
    fn bad_value_is_one_line() {
        let e = Config::parse("kind = \"java\"\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(e.contains("java"), "{e}");
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// Every TOML example in docs/config.md and every example project's
    /// file parses: the documentation cannot drift from the schema.
    #[test]
    fn documented_examples_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
        let mut blocks = 0;
        for (i, part) in doc.split("```toml\n").enumerate().skip(1) {
            let block = part.split("```").next().unwrap();
            Config::parse(block)
                .unwrap_or_else(|e| panic!("docs/config.md toml block {i}: {e}\n{block}"));
            blocks += 1;
        }
        assert!(blocks >= 6, "found {blocks} blocks");
        for e in std::fs::read_dir(root.join("images")).unwrap().flatten() {
            let f = e.path().join(FILE_NAME);
            if f.is_file() {
                Config::load(&f).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}
