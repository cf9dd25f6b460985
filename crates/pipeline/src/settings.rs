//! Settings, resolved once (ripgrep's `lowargs` -> `hiargs`): the flags as
//! given ([`ImageFlags`], [`BuildFlags`], the platforms) are laid over
//! `distroless-pack.toml` and the defaults here and nowhere else, into typed
//! values: a [`compile::Request`](distroless_pack_compile::Request) per
//! platform, an [`ImageSettings`] that makes each
//! [`ImageSpec`](distroless_pack_assemble::ImageSpec), and the platforms.
//!
//! Precedence, for every key: a flag over the file over the default. For
//! the maps (env, labels, annotations) it holds per key: the file's entries
//! stay unless a flag sets the same key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use distroless_pack_assemble::Cache;
/// The layer compression (`--compression`), for the CLI's flag.
pub use distroless_pack_assemble::Compression;
use distroless_pack_assemble::{self as assemble, Extras, ImageSpec};
use distroless_pack_compile::config::{
    Config, Globalization, Libc, OpenSsl, PathOrBool, SizeValue,
};
use distroless_pack_compile::{BuildError, Kind, RunnerChoice};
use distroless_pack_image::Platform;

use crate::PipelineError;

/// The host CA bundle `--ca-certs` copies when given no FILE.
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The host zoneinfo tree `--tzdata` copies when given no DIR.
pub const HOST_ZONEINFO: &str = "/usr/share/zoneinfo";

/// The image flags of `pack`/`build` as given: unset is `None` or empty.
#[derive(Clone, Debug, Default)]
pub struct ImageFlags {
    pub tags: Vec<String>,
    pub path: Option<String>,
    /// `KEY=VALUE`, in order.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub ports: Vec<String>,
    /// `KEY=VALUE`, in order.
    pub labels: Vec<String>,
    /// `KEY=VALUE`, in order.
    pub annotations: Vec<String>,
    pub icu_data: Option<PathBuf>,
    pub ca_certs: Option<PathBuf>,
    pub tzdata: Option<PathBuf>,
    pub passwd: bool,
    /// `--no-runtime-defaults`.
    pub no_runtime_defaults: bool,
    /// `--no-cache`: neither read nor write the layer cache.
    pub no_cache: bool,
    /// `--compression gzip[:LEVEL]|zstd[:LEVEL]`.
    pub compression: Option<Compression>,
    pub args: Vec<String>,
}

/// The build flags of `build` as given.
#[derive(Clone, Debug, Default)]
pub struct BuildFlags {
    pub kind: Option<Kind>,
    pub runner: Option<RunnerChoice>,
    pub builder_image: Option<String>,
    pub engine: Option<String>,
    pub bin: Option<String>,
    pub project: Option<String>,
    pub globalization: Option<Globalization>,
    pub openssl: Option<OpenSsl>,
    pub no_pie: bool,
    /// `--libc musl|glibc` (.NET: picks the RID).
    pub libc: Option<Libc>,
    pub go_package: Option<String>,
    /// `--offline`: local inputs only.
    pub offline: bool,
    /// `--save-debug DIR`.
    pub save_debug: Option<PathBuf>,
    /// `--nuget-source DIR`: the only NuGet feed.
    pub nuget_source: Option<PathBuf>,
}

/// An image name split into repository and tag, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `registry/path/name` (lowercase).
    pub repository: String,
    pub tag: String,
}

impl ImageName {
    /// `repository:tag`.
    pub fn full(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// Parses `NAME[:TAG]` (a registry `host:port/` prefix is not a tag).
pub fn parse_image_name(s: &str) -> Result<ImageName, PipelineError> {
    let bad = |why: &str| PipelineError::usage(format!("invalid --tag {s:?}: {why}"));
    if s.contains('@') {
        return Err(bad("digests cannot be given here; use NAME[:TAG]"));
    }
    let (repo, tag) = match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], &s[i + 1..]),
        _ => (s, "latest"),
    };
    if repo.is_empty() {
        return Err(bad("the name is empty"));
    }
    const TAG_RULE: &str =
        "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`";
    // `a::b`: the colon that starts the tag is followed by another.
    let last = repo.rfind('/').map(|i| i + 1).unwrap_or(0);
    if let Some(c) = repo[last..].find(':') {
        let tag = &s[last + c + 1..];
        return Err(bad(&format!("the tag {tag:?} is not valid: {TAG_RULE}")));
    }
    if !distroless_pack_ship::sink::valid_tag(tag) {
        return Err(bad(TAG_RULE));
    }
    if !distroless_pack_ship::sink::valid_repository(repo) {
        return Err(bad(
            "the name must be lowercase letters, digits, `.`, `_`, `-` and `/`",
        ));
    }
    Ok(ImageName {
        repository: repo.to_string(),
        tag: tag.to_string(),
    })
}

/// The default image name for a binary: its file name, lowercased, with
/// characters a repository name cannot hold replaced by `-`.
pub fn default_name(binary: &Path) -> ImageName {
    let stem = binary.file_name().and_then(|n| n.to_str()).unwrap_or("app");
    let mut repo: String = stem
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    repo = repo
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if repo.is_empty() {
        repo = "app".into();
    }
    ImageName {
        repository: repo,
        tag: "latest".into(),
    }
}

fn split_kv<'a>(what: &str, s: &'a str) -> Result<(&'a str, &'a str), PipelineError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(PipelineError::usage(format!(
            "invalid {what} {s:?}: expected KEY=VALUE"
        ))),
    }
}

/// A file's map with the flags' `KEY=VALUE` entries over it: the file's
/// entries first (unless a flag sets their key), then the flags in order.
fn merge_pairs(
    what: &str,
    file: Option<&BTreeMap<String, String>>,
    flags: &[String],
) -> Result<Vec<(String, String)>, PipelineError> {
    let mut flag_pairs = Vec::new();
    for f in flags {
        let (k, v) = split_kv(what, f)?;
        flag_pairs.push((k.to_string(), v.to_string()));
    }
    let mut out: Vec<(String, String)> = file
        .into_iter()
        .flatten()
        .filter(|(k, _)| !flag_pairs.iter().any(|(fk, _)| fk == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(flag_pairs);
    Ok(out)
}

/// The image settings: names and everything of the spec but the binary
/// and the platform.
#[derive(Clone, Debug)]
pub struct ImageSettings {
    /// From `--tag`, else `name`/`tags` of the file; empty: the binary's
    /// name (see [`ImageSettings::names`]).
    pub names: Vec<ImageName>,
    /// `None`: `/app/NAME` of each binary.
    pub path: Option<String>,
    pub args: Vec<String>,
    /// `KEY=VALUE` in order (the extras' variables are added by assemble).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: String,
    pub ports: Vec<String>,
    /// Only the given labels; the standard title/version labels are added
    /// under them by [`ImageSettings::spec`].
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub extras: Extras,
    /// Add what the kind of program needs (a NativeAOT binary: its user's
    /// passwd entry and /tmp), decided after verify; off with
    /// `--no-runtime-defaults`.
    pub runtime_defaults: bool,
    /// `SOURCE_DATE_EPOCH`, else 0.
    pub created: u64,
    /// The layers' compression: `--compression`, else the file's
    /// `compression`, else gzip.
    pub compression: Compression,
    /// Where layer temp files go.
    pub temp_dir: PathBuf,
    /// The layer cache; `None` with `--no-cache`, `[cache] enabled = false`,
    /// or no directory to put it in.
    pub cache: Option<Cache>,
}

impl ImageSettings {
    /// The image names: the ones given, else the default for `binary`.
    pub fn names(&self, binary: &Path) -> Vec<ImageName> {
        if self.names.is_empty() {
            vec![default_name(binary)]
        } else {
            self.names.clone()
        }
    }

    /// The assemble spec for `binary` on `platform`, named `name`.
    pub fn spec(&self, binary: &Path, platform: &Platform, name: &ImageName) -> ImageSpec {
        let mut spec = ImageSpec::new(binary);
        if let Some(p) = &self.path {
            spec.path = p.clone();
        }
        spec.args = self.args.clone();
        spec.env = self.env.clone();
        spec.workdir = self.workdir.clone();
        spec.user = (!self.user.is_empty()).then(|| self.user.clone());
        spec.ports = self.ports.clone();
        let mut labels = assemble::standard_labels(&name.repository, Some(&name.tag));
        labels.extend(self.labels.clone());
        spec.labels = labels;
        spec.annotations = self.annotations.clone();
        spec.extras = self.extras.clone();
        spec.platform = platform.clone();
        spec.created = self.created;
        spec.compression = self.compression;
        spec.temp_dir = self.temp_dir.clone();
        spec.cache = self.cache.clone();
        spec
    }
}

/// Lays the image flags over the file's image keys (`cfg`, read in `dir`)
/// and the defaults.
pub fn image_settings(
    flags: &ImageFlags,
    file: Option<(&Config, &Path)>,
) -> Result<ImageSettings, PipelineError> {
    let empty = Config::default();
    let (cfg, dir) = file.unwrap_or((&empty, Path::new(".")));
    let rel = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    let tags: Vec<String> = if !flags.tags.is_empty() {
        flags.tags.clone()
    } else if let Some(name) = &cfg.name {
        cfg.tags
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| vec!["latest".into()])
            .iter()
            .map(|t| format!("{name}:{t}"))
            .collect()
    } else {
        Vec::new()
    };
    let names = tags
        .iter()
        .map(|t| parse_image_name(t))
        .collect::<Result<Vec<_>, _>>()?;

    let x = cfg.extras.clone().unwrap_or_default();
    let ca_certs = flags.ca_certs.clone().or_else(|| match &x.ca_certs {
        Some(PathOrBool::Bool(true)) => Some(PathBuf::from(HOST_CA_BUNDLE)),
        Some(PathOrBool::Path(p)) => Some(rel(p)),
        _ => None,
    });
    if let Some(ca) = &ca_certs {
        if !ca.is_file() {
            let hint = if ca == Path::new(HOST_CA_BUNDLE) {
                " (install the host bundle with `apt-get install -y ca-certificates`, or give --ca-certs=FILE)"
            } else {
                ""
            };
            return Err(PipelineError::usage(format!(
                "{}: CA bundle not found or not a file{hint}",
                ca.display()
            )));
        }
    }
    let extras = Extras {
        icu_data: flags
            .icu_data
            .clone()
            .or_else(|| x.icu_data.as_deref().map(rel)),
        ca_certs,
        tzdata: flags
            .tzdata
            .clone()
            .or_else(|| (x.tzdata == Some(true)).then(|| PathBuf::from(HOST_ZONEINFO))),
        passwd: flags.passwd || x.passwd == Some(true),
        // `--passwd` makes /tmp too, as gcr.io/distroless/static has.
        tmp: flags.passwd || x.passwd == Some(true),
    };
    let user = flags
        .user
        .clone()
        .or_else(|| cfg.user.clone())
        .unwrap_or_else(|| assemble::NONROOT_USER.to_string());
    check_user(&user, extras.passwd)?;
    let env = merge_env(cfg.env.as_ref(), &flags.env);
    let labels = merge_pairs("--label", cfg.labels.as_ref(), &flags.labels)?;
    let annotations = merge_pairs("--annotation", cfg.annotations.as_ref(), &flags.annotations)?;
    let compression = match (flags.compression, &cfg.compression) {
        (Some(c), _) => c,
        (None, Some(text)) => text.parse::<Compression>().map_err(|e| {
            PipelineError::usage(format!(
                "{}: compression: {e}",
                dir.join(distroless_pack_compile::config::FILE_NAME)
                    .display()
            ))
        })?,
        (None, None) => Compression::default(),
    };
    Ok(ImageSettings {
        names,
        path: flags.path.clone().or_else(|| cfg.path.clone()),
        args: if flags.args.is_empty() {
            cfg.args.clone().unwrap_or_default()
        } else {
            flags.args.clone()
        },
        env,
        workdir: flags.workdir.clone().or_else(|| cfg.workdir.clone()),
        user,
        ports: if flags.ports.is_empty() {
            cfg.ports.clone().unwrap_or_default()
        } else {
            flags.ports.clone()
        },
        labels: labels.into_iter().collect(),
        annotations: annotations.into_iter().collect(),
        extras,
        runtime_defaults: !flags.no_runtime_defaults,
        created: assemble::source_date_epoch()?,
        compression,
        temp_dir: std::env::temp_dir(),
        cache: cache_settings(flags.no_cache, file.map(|(c, _)| c), &process_env)?,
    })
}

/// Names the layer cache's directory, overriding `$XDG_CACHE_HOME`.
pub const CACHE_DIR_ENV: &str = "DISTROLESS_PACK_CACHE_DIR";
/// Bounds the layer cache's size, over `[cache] max_size`.
pub const CACHE_MAX_SIZE_ENV: &str = "DISTROLESS_PACK_CACHE_MAX_SIZE";

/// The process's environment, for [`cache_settings`] and [`cache_location`].
pub fn process_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

/// Where the layer cache is and its bound, without a project:
/// `DISTROLESS_PACK_CACHE_DIR`, else `$XDG_CACHE_HOME/distroless-pack`,
/// else `~/.cache/distroless-pack`; the bound from
/// `DISTROLESS_PACK_CACHE_MAX_SIZE`, else `file_max` (the project's
/// `[cache] max_size`), else [`assemble::cache::DEFAULT_MAX_SIZE`].
/// `Ok(None)` when there is no directory to use (no HOME).
pub fn cache_location(
    file_max: Option<&SizeValue>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<Cache>, PipelineError> {
    let dir = match env(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(d) => Some(std::path::absolute(PathBuf::from(&d)).unwrap_or_else(|_| d.into())),
        None => Cache::default_dir(env("XDG_CACHE_HOME"), env("HOME")),
    };
    let max = match env(CACHE_MAX_SIZE_ENV).filter(|v| !v.is_empty()) {
        Some(v) => {
            let v = v.to_string_lossy();
            parse_size(&v).map_err(|why| {
                PipelineError::usage(format!("invalid {CACHE_MAX_SIZE_ENV} {v:?}: {why}"))
            })?
        }
        None => match file_max {
            Some(SizeValue::Bytes(n)) => *n,
            Some(SizeValue::Text(t)) => parse_size(t).map_err(|why| {
                PipelineError::usage(format!("invalid [cache] max_size {t:?}: {why}"))
            })?,
            None => assemble::cache::DEFAULT_MAX_SIZE,
        },
    };
    Ok(dir.map(|d| Cache::new(d, max)))
}

/// The layer cache for `pack`/`build`: off with `--no-cache` (over the
/// file's `cache = false` or `[cache] enabled`, over the default: on), else where
/// [`cache_location`] says.
pub fn cache_settings(
    no_cache: bool,
    file: Option<&Config>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<Cache>, PipelineError> {
    let setting = file.and_then(|c| c.cache.as_ref());
    let enabled = !no_cache && setting.and_then(|c| c.enabled()).unwrap_or(true);
    let location = cache_location(setting.and_then(|c| c.max_size()), env)?;
    Ok(location.filter(|_| enabled))
}

/// `2GiB`, `500MB`, `1.5G`, `1048576`: a size in bytes. `K`/`M`/`G`/`T`
/// alone and the `iB` units are powers of 1024; `KB`/`MB`/`GB`/`TB` of 1000.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| "expected a size such as 2GiB, 500MB or 1048576".to_string())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err("too large".into());
    }
    Ok(bytes as u64)
}

/// The names `--passwd`'s /etc/passwd and /etc/group hold.
const PASSWD_NAMES: &[&str] = &["root", "nobody", "nonroot"];

/// Checks `USER[:GROUP]` as docker will read it at start: ids in docker's
/// range, at most one `:`, and names only when the image's /etc/passwd
/// (`--passwd`) has them: docker refuses to start an image whose user it
/// cannot find ("unable to find user").
fn check_user(user: &str, passwd: bool) -> Result<(), PipelineError> {
    if user.is_empty() {
        // `--user=`: unset, i.e. root.
        return Ok(());
    }
    let bad = |why: String| PipelineError::usage(format!("invalid user {user:?}: {why}"));
    let parts: Vec<&str> = user.split(':').collect();
    if parts.len() > 2 {
        return Err(bad(
            "expected UID[:GID] or NAME[:GROUP], with at most one ':'".into(),
        ));
    }
    for p in parts {
        if p.is_empty() {
            return Err(bad("expected UID[:GID] or NAME[:GROUP]".into()));
        }
        if p.bytes().all(|b| b.is_ascii_digit()) {
            if p.parse::<u32>().map_or(true, |id| id > 2_147_483_647) {
                return Err(bad(format!(
                    "{p} is out of range (ids are 0 to 2147483647)"
                )));
            }
        } else if !passwd {
            return Err(bad(format!(
                "{p:?} is a name and the image has no /etc/passwd to look it up in (docker would refuse to start it); give UID[:GID], e.g. 65532:65532, or add --passwd (root, nobody, nonroot)"
            )));
        } else if !PASSWD_NAMES.contains(&p) {
            return Err(bad(format!(
                "{p:?} is not in the image's /etc/passwd (--passwd has root, nobody and nonroot); give UID[:GID]"
            )));
        }
    }
    Ok(())
}

/// Env keeps its order (it is a list in the image config) and leaves a
/// malformed flag to assemble, which names it.
fn merge_env(file: Option<&BTreeMap<String, String>>, flags: &[String]) -> Vec<String> {
    let set: Vec<&str> = flags
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, _)| k))
        .collect();
    file.into_iter()
        .flatten()
        .filter(|(k, _)| !set.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .chain(flags.iter().cloned())
        .collect()
}

/// `distroless-pack.toml` (the `--config` file, else the project's when
/// present) with the build flags over it.
pub fn build_config(
    dir: &Path,
    config_file: Option<&Path>,
    flags: &BuildFlags,
) -> Result<(Config, Option<PathBuf>), BuildError> {
    let (mut cfg, file) = match config_file {
        Some(f) => (Config::load(f)?, Some(f.to_path_buf())),
        None => Config::load_dir(dir)?,
    };
    lay_build_flags(&mut cfg, flags);
    Ok((cfg, file))
}

fn lay_build_flags(cfg: &mut Config, flags: &BuildFlags) {
    if flags.kind.is_some() {
        cfg.kind = flags.kind;
    }
    if flags.runner.is_some() {
        cfg.runner = flags.runner;
    }
    if flags.builder_image.is_some() {
        cfg.builder_image = flags.builder_image.clone();
    }
    if flags.engine.is_some() {
        cfg.engine = flags.engine.clone();
    }
    if flags.bin.is_some() {
        cfg.binary = flags.bin.clone();
    }
    if flags.go_package.is_some() {
        cfg.go.get_or_insert_with(Default::default).package = flags.go_package.clone();
    }
    if flags.offline {
        cfg.offline = Some(true);
    }
    // Paths given as flags are the caller's (the current directory's); the
    // file's stay relative to the project.
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    if let Some(p) = &flags.save_debug {
        cfg.save_debug = Some(absolute(p));
    }
    let d = cfg.dotnet.get_or_insert_with(Default::default);
    if let Some(p) = &flags.nuget_source {
        d.source = Some(absolute(p).display().to_string());
    }
    if flags.project.is_some() {
        d.project = flags.project.clone();
    }
    if flags.globalization.is_some() {
        d.globalization = flags.globalization;
    }
    if flags.openssl.is_some() {
        d.openssl = flags.openssl;
    }
    if flags.no_pie {
        d.pie = Some(false);
    }
    if flags.libc.is_some() {
        d.libc = flags.libc;
    }
}

/// The platforms: the flags', else the file's, else this machine's; sorted
/// and without repeats, so the index digest does not depend on the order.
pub fn platforms(
    flags: &[Platform],
    file: Option<(&Config, Option<&Path>)>,
) -> Result<Vec<Platform>, PipelineError> {
    let mut list = if !flags.is_empty() {
        flags.to_vec()
    } else {
        match file.and_then(|(c, f)| c.platforms.as_ref().map(|p| (p, f))) {
            Some((list, f)) if !list.is_empty() => {
                let choices = list
                    .iter()
                    .map(|p| {
                        p.parse::<distroless_pack_image::PlatformChoice>()
                            .map_err(|e| {
                                PipelineError::usage(format!(
                                    "{}: platforms: {e}",
                                    f.map(|f| f.display().to_string()).unwrap_or_default()
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                distroless_pack_image::expand_choices(&choices)
            }
            _ => vec![Platform::host()],
        }
    };
    list.sort();
    list.dedup();
    Ok(list)
}

/// `--smoke[=ARGS]`, `--smoke-timeout` and `--smoke-strict`, checked.
#[derive(Clone, Debug)]
pub struct Smoke {
    /// Replace the image's cmd (`None`: the image's).
    pub args: Option<Vec<String>>,
    pub timeout: std::time::Duration,
    /// Fail on any warning-level finding of the traced run.
    pub strict: bool,
}

/// The smoke settings: `None` without `--smoke` (`--smoke-strict` implies
/// it).
pub fn smoke(
    args: Option<&str>,
    timeout_secs: f64,
    strict: bool,
) -> Result<Option<Smoke>, PipelineError> {
    let a = match (args, strict) {
        (Some(a), _) => a,
        (None, true) => "",
        (None, false) => return Ok(None),
    };
    if !(timeout_secs.is_finite() && timeout_secs > 0.0) {
        return Err(PipelineError::usage(
            "--smoke-timeout must be a positive number of seconds",
        ));
    }
    let words: Vec<String> = a.split_whitespace().map(str::to_string).collect();
    Ok(Some(Smoke {
        args: (!words.is_empty()).then_some(words),
        timeout: std::time::Duration::from_secs_f64(timeout_secs),
        strict,
    }))
}

/// `--sbom`, `--sbom-format`, `--provenance` and `--sbom-output` as given.
#[derive(Clone, Debug, Default)]
pub struct AttestFlags {
    /// `--sbom=BOOL`.
    pub sbom: Option<bool>,
    /// `--sbom-format spdx|cyclonedx|both`.
    pub sbom_format: Option<String>,
    /// `--provenance=BOOL`.
    pub provenance: Option<bool>,
    /// `--sbom-output FILE`.
    pub sbom_output: Option<PathBuf>,
}

/// The documents made for each image: the SBOM formats (none with
/// `--sbom=false`), the provenance, where `--sbom-output` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attest {
    /// SPDX first when both.
    pub formats: Vec<distroless_pack_sbom::Format>,
    pub provenance: bool,
    pub sbom_output: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, else 0 (the documents' creation time).
    pub created: u64,
}

impl Attest {
    /// Nothing to make.
    pub fn none() -> Attest {
        Attest {
            formats: Vec::new(),
            provenance: false,
            sbom_output: None,
            created: 0,
        }
    }

    /// Whether any document is made.
    pub fn any(&self) -> bool {
        !self.formats.is_empty() || self.provenance
    }
}

/// `SOURCE_DATE_EPOCH`, else 0; a value that is not a number is a usage
/// error.
pub fn source_date_epoch() -> Result<u64, PipelineError> {
    Ok(assemble::source_date_epoch()?)
}

/// Parses `spdx`, `cyclonedx` or `both`.
pub fn sbom_formats(s: &str) -> Result<Vec<distroless_pack_sbom::Format>, String> {
    use distroless_pack_sbom::Format;
    match s {
        "spdx" => Ok(vec![Format::Spdx]),
        "cyclonedx" => Ok(vec![Format::CycloneDx]),
        "both" => Ok(vec![Format::Spdx, Format::CycloneDx]),
        _ => Err(format!(
            "unknown SBOM format {s:?}: expected spdx, cyclonedx or both"
        )),
    }
}

/// Lays the attestation flags over the file's `[sbom]` and the defaults
/// (an SPDX SBOM and the provenance, both on).
pub fn attest(flags: &AttestFlags, file: Option<&Config>) -> Result<Attest, PipelineError> {
    let x = file.and_then(|c| c.sbom.clone()).unwrap_or_default();
    let enabled = flags.sbom.or(x.enabled).unwrap_or(true);
    let format = flags
        .sbom_format
        .clone()
        .or(x.format)
        .unwrap_or_else(|| "spdx".to_string());
    let formats = sbom_formats(&format).map_err(PipelineError::usage)?;
    if !enabled && flags.sbom_output.is_some() {
        return Err(PipelineError::usage(
            "--sbom-output needs an SBOM: drop --sbom=false (or `enabled = false` under [sbom])",
        ));
    }
    Ok(Attest {
        formats: if enabled { formats } else { Vec::new() },
        provenance: flags.provenance.or(x.provenance).unwrap_or(true),
        sbom_output: flags.sbom_output.clone(),
        created: assemble::source_date_epoch()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> Config {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("distroless-pack.toml");
        std::fs::write(&f, toml_text).unwrap();
        Config::load(&f).unwrap()
    }

    #[test]
    fn image_names() {
        assert_eq!(parse_image_name("hello").unwrap().full(), "hello:latest");
        assert_eq!(parse_image_name("hello:1.0").unwrap().full(), "hello:1.0");
        let n = parse_image_name("localhost:5000/a/b").unwrap();
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("localhost:5000/a/b", "latest")
        );
        assert_eq!(parse_image_name("localhost:5000/a/b:v2").unwrap().tag, "v2");
        assert!(parse_image_name("Hello").is_err());
        assert!(parse_image_name("a@sha256:00").is_err());
        assert!(parse_image_name("a:").is_err());
        assert_eq!(default_name(Path::new("/x/My App")).full(), "my-app:latest");
    }

    #[test]
    fn tag_with_two_colons_is_reported_as_a_bad_tag_not_a_bad_name() {
        let e = parse_image_name("a::b").unwrap_err().to_string();
        assert!(e.contains("a tag is"), "{e}");
    }

    #[test]
    fn settings_precedence_env_flag_over_file_over_default() {
        let cfg = file("env = { A = \"file\", B = \"file\" }\n");
        let flags = ImageFlags {
            env: vec!["B=flag".into(), "C=flag".into()],
            ..Default::default()
        };
        let s = image_settings(&flags, Some((&cfg, Path::new(".")))).unwrap();
        assert_eq!(s.env, ["A=file", "B=flag", "C=flag"]);
        let none = image_settings(&ImageFlags::default(), None).unwrap();
        assert!(none.env.is_empty());
    }

    #[test]
    fn settings_precedence_labels_and_annotations_per_key() {
        let cfg = file("labels = { a = \"file\", b = \"file\" }\nannotations = { x = \"file\" }\n");
        let flags = ImageFlags {
            labels: vec!["b=flag".into()],
            annotations: vec!["x=flag".into(), "y=flag".into()],
            ..Default::default()
        };
        let s = image_settings(&flags, Some((&cfg, Path::new(".")))).unwrap();
        assert_eq!(s.labels["a"], "file");
        assert_eq!(s.labels["b"], "flag");
        assert_eq!(s.annotations["x"], "flag");
        assert_eq!(s.annotations["y"], "flag");
        // A flag label overrides a standard label too.
        let flags = ImageFlags {
            labels: vec!["org.opencontainers.image.version=9".into()],
            ..Default::default()
        };
        let s = image_settings(&flags, None).unwrap();
        let spec = s.spec(
            Path::new("app"),
            &Platform::host(),
            &default_name(Path::new("app")),
        );
        assert_eq!(spec.labels["org.opencontainers.image.version"], "9");
        assert!(image_settings(
            &ImageFlags {
                labels: vec!["novalue".into()],
                ..Default::default()
            },
            None
        )
        .is_err());
    }

    #[test]
    fn settings_precedence_user_path_names_flag_over_file_over_default() {
        let cfg = file(
            "name = \"web\"\ntags = [\"1\", \"2\"]\nuser = \"1000:1000\"\npath = \"/srv/web\"\n",
        );
        let s = image_settings(&ImageFlags::default(), Some((&cfg, Path::new(".")))).unwrap();
        assert_eq!(s.user, "1000:1000");
        assert_eq!(s.path.as_deref(), Some("/srv/web"));
        assert_eq!(
            s.names.iter().map(ImageName::full).collect::<Vec<_>>(),
            ["web:1", "web:2"]
        );
        // An explicit --user wins even when it is the default's value.
        let flags = ImageFlags {
            user: Some(assemble::NONROOT_USER.into()),
            tags: vec!["other:3".into()],
            ..Default::default()
        };
        let s = image_settings(&flags, Some((&cfg, Path::new(".")))).unwrap();
        assert_eq!(s.user, assemble::NONROOT_USER);
        assert_eq!(s.names[0].full(), "other:3");
        let s = image_settings(&ImageFlags::default(), None).unwrap();
        assert_eq!(s.user, assemble::NONROOT_USER);
        assert!(s.names.is_empty());
        assert_eq!(s.names(Path::new("/x/hello"))[0].full(), "hello:latest");
    }

    #[test]
    fn settings_precedence_extras_flag_over_file_relative_to_the_project() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.pem"), "x").unwrap();
        std::fs::write(d.path().join("icu.dat"), "x").unwrap();
        let cfg = file("[extras]\nca_certs = \"ca.pem\"\ntzdata = true\npasswd = true\nicu_data = \"icu.dat\"\n");
        let s = image_settings(&ImageFlags::default(), Some((&cfg, d.path()))).unwrap();
        assert_eq!(s.extras.ca_certs, Some(d.path().join("ca.pem")));
        assert_eq!(s.extras.icu_data, Some(d.path().join("icu.dat")));
        assert_eq!(s.extras.tzdata, Some(PathBuf::from(HOST_ZONEINFO)));
        assert!(s.extras.passwd);
        let other = d.path().join("other.pem");
        std::fs::write(&other, "x").unwrap();
        let flags = ImageFlags {
            ca_certs: Some(other.clone()),
            tzdata: Some("/tz".into()),
            ..Default::default()
        };
        let s = image_settings(&flags, Some((&cfg, d.path()))).unwrap();
        assert_eq!(s.extras.ca_certs, Some(other));
        assert_eq!(s.extras.tzdata, Some(PathBuf::from("/tz")));
        let s = image_settings(&ImageFlags::default(), None).unwrap();
        assert!(s.extras.ca_certs.is_none() && s.extras.tzdata.is_none() && !s.extras.passwd);
        let missing = ImageFlags {
            ca_certs: Some(d.path().join("missing.pem")),
            ..Default::default()
        };
        assert!(image_settings(&missing, None).is_err());
    }

    #[test]
    fn settings_precedence_platforms_flag_over_file_over_host() {
        let cfg = file("platforms = [\"linux/arm64\", \"linux/amd64\", \"linux/arm64\"]\n");
        let amd = Platform::linux("amd64");
        let arm = Platform::linux("arm64");
        assert_eq!(
            platforms(&[], Some((&cfg, None))).unwrap(),
            [amd.clone(), arm.clone()]
        );
        assert_eq!(
            platforms(std::slice::from_ref(&arm), Some((&cfg, None))).unwrap(),
            [arm]
        );
        assert_eq!(platforms(&[], None).unwrap(), [Platform::host()]);
        let all = file("platforms = [\"all\"]\n");
        assert_eq!(platforms(&[], Some((&all, None))).unwrap(), Platform::all());
        let bad = file("platforms = [\"windows/amd64\"]\n");
        let e = platforms(&[], Some((&bad, Some(Path::new("x.toml"))))).unwrap_err();
        assert!(e.to_string().starts_with("x.toml: platforms:"), "{e}");
    }

    #[test]
    fn settings_precedence_build_flags_over_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("distroless-pack.toml"),
            "kind = \"go\"\nbinary = \"a\"\n[go]\npackage = \"./cmd/a\"\n",
        )
        .unwrap();
        let (cfg, f) = build_config(d.path(), None, &BuildFlags::default()).unwrap();
        assert_eq!(f, Some(d.path().join("distroless-pack.toml")));
        assert_eq!(cfg.binary.as_deref(), Some("a"));
        let flags = BuildFlags {
            kind: Some(Kind::Cargo),
            bin: Some("b".into()),
            go_package: Some("./cmd/b".into()),
            no_pie: true,
            libc: Some(Libc::Glibc),
            ..Default::default()
        };
        let (cfg, _) = build_config(d.path(), None, &flags).unwrap();
        assert_eq!(cfg.kind, Some(Kind::Cargo));
        assert_eq!(cfg.binary.as_deref(), Some("b"));
        assert_eq!(cfg.go.unwrap().package.as_deref(), Some("./cmd/b"));
        let dotnet = cfg.dotnet.unwrap();
        assert_eq!(dotnet.pie, Some(false));
        assert_eq!(dotnet.libc, Some(Libc::Glibc));
    }

    #[test]
    fn settings_precedence_compression_flag_over_file_over_default() {
        let d = tempfile::tempdir().unwrap();
        let cfg = file("compression = \"zstd:7\"\n");
        let at = Some((&cfg, d.path()));
        let s = image_settings(&ImageFlags::default(), at).unwrap();
        assert_eq!(s.compression, Compression::Zstd { level: 7 });
        let flags = ImageFlags {
            compression: Some(Compression::Gzip { level: 9 }),
            ..Default::default()
        };
        let s = image_settings(&flags, at).unwrap();
        assert_eq!(s.compression, Compression::Gzip { level: 9 });
        let spec = s.spec(
            Path::new("app"),
            &Platform::host(),
            &default_name(Path::new("app")),
        );
        assert_eq!(spec.compression, Compression::Gzip { level: 9 });
        let s = image_settings(&ImageFlags::default(), None).unwrap();
        assert_eq!(s.compression, Compression::default());
        assert_eq!(s.compression.kind(), "gzip");
        // A bare kind takes its default level.
        let cfg = file("compression = \"zstd\"\n");
        let s = image_settings(&ImageFlags::default(), Some((&cfg, d.path()))).unwrap();
        assert_eq!(s.compression, Compression::Zstd { level: 3 });
    }

    #[test]
    fn bad_compression_in_the_file_names_the_file_and_the_value() {
        let d = tempfile::tempdir().unwrap();
        let cfg = file("compression = \"xz:3\"\n");
        let e = image_settings(&ImageFlags::default(), Some((&cfg, d.path())))
            .unwrap_err()
            .to_string();
        assert!(e.contains("distroless-pack.toml"), "{e}");
        assert!(e.contains("\"xz:3\""), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn user_name_without_passwd_is_refused_at_pack_time() {
        let with = |user: &str, passwd: bool| {
            image_settings(
                &ImageFlags {
                    user: Some(user.into()),
                    passwd,
                    ..Default::default()
                },
                None,
            )
        };
        let e = with("app", false).unwrap_err().to_string();
        assert!(
            e.contains("no /etc/passwd") && e.contains("--passwd"),
            "{e}"
        );
        assert!(with("nonroot", true).is_ok());
        assert!(with("nonroot:nonroot", true).is_ok());
        assert!(with("app", true)
            .unwrap_err()
            .to_string()
            .contains("not in the image's /etc/passwd"));
        assert!(with("1000:1000", false).is_ok());
        assert!(with("0", false).is_ok());
        assert!(with("", false).is_ok(), "--user= leaves it unset");
    }

    #[test]
    fn user_out_of_range_or_with_two_colons_is_refused() {
        let with = |user: &str| {
            image_settings(
                &ImageFlags {
                    user: Some(user.into()),
                    ..Default::default()
                },
                None,
            )
        };
        assert!(with("4294967296")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(with("2147483648:0").is_err());
        assert!(with("a:b:c")
            .unwrap_err()
            .to_string()
            .contains("at most one ':'"));
        assert!(with("1:").is_err());
    }

    fn env_of(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
    }

    #[test]
    fn settings_precedence_cache_flag_over_file_over_default() {
        let env = env_of(&[("HOME", "/home/u")]);
        let on = cache_settings(false, None, &env).unwrap().unwrap();
        assert_eq!(on.dir(), Path::new("/home/u/.cache/distroless-pack"));
        assert_eq!(on.max_size(), assemble::cache::DEFAULT_MAX_SIZE);
        let off = file("[cache]\nenabled = false\n");
        assert!(cache_settings(false, Some(&off), &env).unwrap().is_none());
        let off = file("cache = false\n");
        assert!(cache_settings(false, Some(&off), &env).unwrap().is_none());
        let on = file("cache = true\n");
        assert!(cache_settings(false, Some(&on), &env).unwrap().is_some());
        let on_file = file("[cache]\nenabled = true\n");
        assert!(
            cache_settings(true, Some(&on_file), &env)
                .unwrap()
                .is_none(),
            "--no-cache wins"
        );
        assert!(cache_settings(true, None, &env).unwrap().is_none());
        assert!(
            cache_settings(false, None, &env_of(&[])).unwrap().is_none(),
            "no HOME: no cache"
        );
    }

    #[test]
    fn settings_precedence_cache_dir_env_over_xdg_over_home() {
        let c = |env| cache_settings(false, None, &env).unwrap().unwrap();
        assert_eq!(
            c(env_of(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")])).dir(),
            Path::new("/x/distroless-pack")
        );
        assert_eq!(
            c(env_of(&[
                ("HOME", "/h"),
                ("XDG_CACHE_HOME", "/x"),
                ("DISTROLESS_PACK_CACHE_DIR", "/d")
            ]))
            .dir(),
            Path::new("/d")
        );
    }

    #[test]
    fn settings_precedence_cache_max_size_env_over_file_over_default() {
        let home = env_of(&[("HOME", "/h")]);
        let f = file("[cache]\nmax_size = \"500MB\"\n");
        assert_eq!(
            cache_settings(false, Some(&f), &home)
                .unwrap()
                .unwrap()
                .max_size(),
            500_000_000
        );
        let n = file("[cache]\nmax_size = 4096\n");
        assert_eq!(
            cache_settings(false, Some(&n), &home)
                .unwrap()
                .unwrap()
                .max_size(),
            4096
        );
        let env = env_of(&[("HOME", "/h"), ("DISTROLESS_PACK_CACHE_MAX_SIZE", "1GiB")]);
        assert_eq!(
            cache_settings(false, Some(&f), &env)
                .unwrap()
                .unwrap()
                .max_size(),
            1 << 30
        );
        let bad = file("[cache]\nmax_size = \"lots\"\n");
        let e = cache_settings(false, Some(&bad), &home)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[cache] max_size"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5 KiB").unwrap(), 1536);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn smoke_timeout_must_be_positive() {
        assert!(smoke(None, -1.0, false).unwrap().is_none());
        assert!(smoke(Some(""), 0.0, false).is_err());
        let s = smoke(Some("--version  -q"), 2.0, false).unwrap().unwrap();
        assert_eq!(s.args.unwrap(), ["--version", "-q"]);
        assert!(smoke(Some(""), 1.0, false).unwrap().unwrap().args.is_none());
    }

    #[test]
    fn smoke_strict_implies_smoke() {
        let s = smoke(None, 1.0, true).unwrap().unwrap();
        assert!(s.strict && s.args.is_none());
        assert!(!smoke(Some(""), 1.0, false).unwrap().unwrap().strict);
    }
    #[test]
    fn settings_precedence_sbom_flag_over_file_over_default() {
        use distroless_pack_sbom::Format;
        let d = attest(&AttestFlags::default(), None).unwrap();
        assert_eq!(d.formats, [Format::Spdx]);
        assert!(d.provenance && d.sbom_output.is_none());
        let cfg = file("[sbom]\nformat = \"both\"\nprovenance = false\n");
        let f = attest(&AttestFlags::default(), Some(&cfg)).unwrap();
        assert_eq!(f.formats, [Format::Spdx, Format::CycloneDx]);
        assert!(!f.provenance);
        let flags = AttestFlags {
            sbom_format: Some("cyclonedx".into()),
            provenance: Some(true),
            ..Default::default()
        };
        let g = attest(&flags, Some(&cfg)).unwrap();
        assert_eq!(g.formats, [Format::CycloneDx]);
        assert!(g.provenance);
        let off = file("[sbom]\nenabled = false\n");
        assert!(attest(&AttestFlags::default(), Some(&off))
            .unwrap()
            .formats
            .is_empty());
        let on = AttestFlags {
            sbom: Some(true),
            ..Default::default()
        };
        assert_eq!(attest(&on, Some(&off)).unwrap().formats, [Format::Spdx]);
        let bad = AttestFlags {
            sbom_format: Some("xml".into()),
            ..Default::default()
        };
        assert!(attest(&bad, None)
            .unwrap_err()
            .to_string()
            .contains("spdx, cyclonedx or both"));
        let conflict = AttestFlags {
            sbom: Some(false),
            sbom_output: Some("x.json".into()),
            ..Default::default()
        };
        assert!(attest(&conflict, None).is_err());
    }
}
