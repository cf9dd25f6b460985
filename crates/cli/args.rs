//! The option groups `pack`, `build`, `push`, `login` and `run` share, as
//! given on the command line (the pipeline's settings lay them over the
//! file and the defaults), and the flags with fixed choices.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use distroless_pack_pipeline::pack::Outputs;
use distroless_pack_pipeline::settings::{self, ImageFlags};
use distroless_pack_ship::registry::{
    CredentialOptions, PushOptions, RegistryTarget, Secret, UploadMode,
};
use distroless_pack_ship::{Engine, Output, Sink};

use crate::exit::{self, WithCode};

/// `--json` and `--no-verify` of `pack` and `build`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Mode {
    /// Pack even when verify would refuse the binary: verify is skipped
    /// (a warning says so) and os/arch come from the ELF header.
    #[arg(long)]
    pub no_verify: bool,

    /// Print a JSON summary on stdout (digest, size, platform, layers,
    /// findings, outputs) instead of the digest; no progress lines.
    #[arg(long)]
    pub json: bool,
}

/// `--load`'s engine.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadEngine {
    Auto,
    Docker,
    Podman,
}

/// `--engine` of `build` and `run`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineName {
    Docker,
    Podman,
}

impl EngineName {
    pub fn engine(self) -> Engine {
        match self {
            EngineName::Docker => Engine::Docker,
            EngineName::Podman => Engine::Podman,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Docker => "docker",
            EngineName::Podman => "podman",
        }
    }
}

/// `run --network`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkArg {
    None,
    Host,
}

/// `run --isolation`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationArg {
    Auto,
    Bwrap,
    Chroot,
}

impl From<NetworkArg> for distroless_pack_run::Network {
    fn from(n: NetworkArg) -> Self {
        match n {
            NetworkArg::Host => distroless_pack_run::Network::Host,
            NetworkArg::None => distroless_pack_run::Network::None,
        }
    }
}

impl From<IsolationArg> for distroless_pack_run::Isolation {
    fn from(i: IsolationArg) -> Self {
        match i {
            IsolationArg::Bwrap => distroless_pack_run::Isolation::Bwrap,
            IsolationArg::Chroot => distroless_pack_run::Isolation::Chroot,
            IsolationArg::Auto => distroless_pack_run::Isolation::Auto,
        }
    }
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ImageArgs {
    /// Image name and tag, NAME[:TAG] (e.g. `ghcr.io/acme/hello:1.2`; TAG
    /// defaults to `latest`). Repeatable: the first names the image in every
    /// output; further tags are added to `oci:DIR` outputs that give no TAG.
    /// Default: the binary's file name, `:latest`.
    #[arg(
        long = "tag",
        short = 't',
        value_name = "NAME[:TAG]",
        help_heading = "Image"
    )]
    pub tags: Vec<String>,

    /// Absolute path of the binary in the image (the entrypoint).
    /// Default: /app/NAME, NAME being the binary's file name.
    #[arg(long, value_name = "PATH", help_heading = "Image")]
    pub path: Option<String>,

    /// Environment variable KEY=VALUE in the image config. Repeatable.
    #[arg(
        long = "env",
        short = 'e',
        value_name = "KEY=VALUE",
        help_heading = "Image"
    )]
    pub env: Vec<String>,

    /// Working directory (absolute). Default: the binary's directory (/app).
    #[arg(long, value_name = "DIR", help_heading = "Image")]
    pub workdir: Option<String>,

    /// User the entrypoint runs as: UID[:GID] or a name (a name needs
    /// --passwd). Default: 65532:65532.
    #[arg(long, value_name = "USER", help_heading = "Image")]
    pub user: Option<String>,

    /// Port the program listens on, PORT[/tcp|udp|sctp] (ExposedPorts). Repeatable.
    #[arg(
        long = "port",
        short = 'p',
        value_name = "PORT[/PROTO]",
        help_heading = "Image"
    )]
    pub ports: Vec<String>,

    /// Config label KEY=VALUE (added to, and overriding, the standard
    /// org.opencontainers.image.title/version labels). Repeatable.
    #[arg(
        long = "label",
        short = 'l',
        value_name = "KEY=VALUE",
        help_heading = "Image"
    )]
    pub labels: Vec<String>,

    /// Manifest annotation KEY=VALUE. Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE", help_heading = "Image")]
    pub annotations: Vec<String>,

    /// Add an ICU data file (icudtNNl.dat) at /usr/share/icu/ and set ICU_DATA=/usr/share/icu.
    #[arg(
        long,
        value_name = "FILE.dat",
        help_heading = "Extras (off by default)"
    )]
    pub icu_data: Option<PathBuf>,

    /// Add a CA bundle at /etc/ssl/certs/ca-certificates.crt and set
    /// SSL_CERT_FILE to it. `--ca-certs` alone copies the host's bundle
    /// (/etc/ssl/certs/ca-certificates.crt); `--ca-certs=FILE` another one.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = settings::HOST_CA_BUNDLE,
        help_heading = "Extras (off by default)"
    )]
    pub ca_certs: Option<PathBuf>,

    /// Add time-zone data at /usr/share/zoneinfo (where Go, musl, glibc and
    /// .NET look). `--tzdata` alone copies the host's /usr/share/zoneinfo;
    /// `--tzdata=DIR` another tree. Symbolic links are kept.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = settings::HOST_ZONEINFO,
        help_heading = "Extras (off by default)"
    )]
    pub tzdata: Option<PathBuf>,

    /// Add /etc/passwd and /etc/group (root 0, nobody 65534, nonroot 65532),
    /// /home/nonroot (owned by 65532), /root and /tmp (1777), as
    /// gcr.io/distroless/static has.
    #[arg(long, help_heading = "Extras (off by default)")]
    pub passwd: bool,

    /// Do not add what the kind of program needs to run (for a .NET
    /// NativeAOT binary: the passwd/group entry of the image user and a
    /// writable /tmp, see docs/dotnet.md).
    #[arg(long, help_heading = "Extras (off by default)")]
    pub no_runtime_defaults: bool,

    /// Neither read nor write the layer cache ($DISTROLESS_PACK_CACHE_DIR,
    /// else $XDG_CACHE_HOME/distroless-pack, else ~/.cache/distroless-pack;
    /// see `distroless-pack cache`). The bytes are the same either way.
    #[arg(long)]
    pub no_cache: bool,
    /// Layer compression: `gzip[:LEVEL]` (1-9; the default, gzip:2, which
    /// every engine reads) or `zstd[:LEVEL]` (1-19, default zstd:3: faster
    /// and smaller; docker before 23.0 cannot read it, so `--load` to such
    /// a docker and `docker-archive:` outputs refuse it).
    #[arg(long, value_name = "KIND[:LEVEL]", help_heading = "Image")]
    pub compression: Option<settings::Compression>,

    /// Arguments given to the entrypoint (the config's Cmd), after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

impl ImageArgs {
    /// The flags as the settings take them.
    pub fn flags(&self) -> ImageFlags {
        ImageFlags {
            tags: self.tags.clone(),
            path: self.path.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            ports: self.ports.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            icu_data: self.icu_data.clone(),
            ca_certs: self.ca_certs.clone(),
            tzdata: self.tzdata.clone(),
            passwd: self.passwd,
            no_runtime_defaults: self.no_runtime_defaults,
            no_cache: self.no_cache,
            compression: self.compression,
            args: self.args.clone(),
        }
    }
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the image to SINK: `oci:DIR[:TAG]` (OCI layout; other tags in
    /// DIR are kept), `oci-archive:FILE`, or `docker-archive:FILE` (a tar
    /// that `docker load` and `podman load` take). Repeatable.
    #[arg(long = "output", value_name = "SINK", help_heading = "Outputs")]
    pub outputs: Vec<Sink>,

    /// Load the image into docker or podman (`--load` picks docker when
    /// its daemon answers, else podman; `--load=podman` forces one).
    #[arg(
        long,
        value_name = "ENGINE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto",
        help_heading = "Outputs"
    )]
    pub load: Option<LoadEngine>,

    /// Push the image to a registry as REF (`registry/repo:tag`). Repeatable.
    #[arg(long = "push", value_name = "REF", help_heading = "Outputs")]
    pub push: Vec<String>,

    /// Blobs uploaded at once by `--push`, across every platform (1-32;
    /// default 4).
    #[arg(
        long,
        value_name = "N",
        env = "DISTROLESS_PACK_PUSH_JOBS",
        value_parser = distroless_pack_ship::registry::parse_jobs,
        help_heading = "Outputs"
    )]
    pub push_jobs: Option<usize>,

    /// Write the image's digest (`sha256:...`, of the manifest or index) to
    /// FILE, for CI (written whether or not the image is pushed).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub digest_file: Option<PathBuf>,

    /// Registry credentials and TLS for `--push`.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl OutputArgs {
    /// Every output, checked before any work: files, then the engine, then
    /// the registries (the push references are parsed here).
    pub fn outputs(&self, json: bool) -> anyhow::Result<Outputs> {
        let mut list: Vec<Output> = self.outputs.iter().cloned().map(Output::File).collect();
        if let Some(e) = self.load {
            list.push(Output::Load(match e {
                LoadEngine::Auto => None,
                LoadEngine::Docker => Some(Engine::Docker),
                LoadEngine::Podman => Some(Engine::Podman),
            }));
        }
        let mut push = PushOptions::default();
        if !self.push.is_empty() {
            list.push(Output::Push(parse_targets(&self.push)?));
            push = self.registry.push_options()?;
            push.jobs = self.push_jobs.unwrap_or(push.jobs);
        }
        let outputs = Outputs {
            list,
            digest_file: self.digest_file.clone(),
            push,
        };
        outputs
            .check_stdout(json)
            .map_err(crate::report::pipeline)?;
        Ok(outputs)
    }
}

/// Parses registry references, as usage errors naming the flag's value.
pub fn parse_targets(refs: &[String]) -> anyhow::Result<Vec<RegistryTarget>> {
    refs.iter()
        .map(|r| RegistryTarget::parse(r).map_err(|e| exit::fail(&e, e.kind())))
        .collect()
}

/// Registry connection and credential options (shared by `push` and
/// `--push` of `pack`/`build`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry user name; the password (or token) is read from stdin
    /// with --password-stdin. Without these, credentials come from
    /// DISTROLESS_PACK_REGISTRY_USERNAME/_PASSWORD, docker's config.json
    /// (and its credential helpers), then podman's auth.json.
    #[arg(
        long,
        short = 'u',
        value_name = "USER",
        requires = "password_stdin",
        help_heading = "Registry"
    )]
    pub username: Option<String>,

    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username", help_heading = "Registry")]
    pub password_stdin: bool,

    /// Also trust the PEM CA certificates in FILE (besides the system roots).
    #[arg(long, value_name = "FILE", help_heading = "Registry")]
    pub ca_file: Option<PathBuf>,

    /// Allow plain HTTP and unverified TLS for every registry (plain HTTP is
    /// always allowed for localhost and 127.0.0.1).
    #[arg(long, help_heading = "Registry")]
    pub insecure: bool,

    /// Upload blobs in chunks (PATCH) instead of one PUT each (the default
    /// falls back to chunks only when a registry refuses a single PUT).
    #[arg(long, help_heading = "Registry")]
    pub chunked: bool,

    /// Give up on a request (and retry it) when no byte has moved for this
    /// long: seconds, or 500ms / 20s / 2m. Default 20s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "DISTROLESS_PACK_STALL_TIMEOUT",
        value_parser = distroless_pack_ship::registry::parse_duration,
        help_heading = "Registry"
    )]
    pub stall_timeout: Option<std::time::Duration>,
}

impl RegistryArgs {
    /// The library options; reads the password from stdin when asked.
    pub fn push_options(&self) -> anyhow::Result<PushOptions> {
        let explicit = match (&self.username, self.password_stdin) {
            (Some(u), true) => Some((u.clone(), read_password_stdin()?)),
            _ => None,
        };
        Ok(PushOptions {
            credentials: CredentialOptions {
                explicit,
                only_explicit: false,
            },
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
            upload_mode: if self.chunked {
                UploadMode::Chunked
            } else {
                UploadMode::Monolithic
            },
            stall_timeout: self
                .stall_timeout
                .unwrap_or(distroless_pack_ship::registry::DEFAULT_STALL_TIMEOUT),
            ..PushOptions::default()
        })
    }
}

/// Reads a password from stdin (one line; the trailing newline dropped).
pub fn read_password_stdin() -> anyhow::Result<Secret> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")
        .code(exit::USAGE)?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    let s = s.strip_suffix('\r').unwrap_or(s);
    if s.is_empty() {
        return Err(anyhow::anyhow!("--password-stdin: standard input is empty")).code(exit::USAGE);
    }
    Ok(Secret::new(s))
}

/// `--sbom`, `--sbom-format`, `--provenance`, `--sbom-output`, for `pack`
/// and `build` (docs/commands/sbom.md).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AttestArgs {
    /// Make an SBOM of each image (default: true, or `enabled` under
    /// [sbom]); `--sbom=false` turns it off.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Supply chain"
    )]
    pub sbom: Option<bool>,

    /// The SBOM format: spdx (SPDX 2.3 JSON, default), cyclonedx
    /// (CycloneDX 1.6 JSON) or both.
    #[arg(long, value_name = "FORMAT", value_parser = ["spdx", "cyclonedx", "both"], help_heading = "Supply chain")]
    pub sbom_format: Option<String>,

    /// Make the build provenance of each image (in-toto Statement, SLSA
    /// Provenance v1; default true); `--provenance=false` turns it off.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Supply chain"
    )]
    pub provenance: Option<bool>,

    /// Also write the SBOM to FILE (for outputs that cannot hold it:
    /// docker-archive, --load). An index writes FILE-OS-ARCH per platform;
    /// `--sbom-format both` puts .spdx / .cdx before the extension.
    #[arg(long, value_name = "FILE", help_heading = "Supply chain")]
    pub sbom_output: Option<PathBuf>,
}

impl AttestArgs {
    pub fn flags(&self) -> settings::AttestFlags {
        settings::AttestFlags {
            sbom: self.sbom,
            sbom_format: self.sbom_format.clone(),
            provenance: self.provenance,
            sbom_output: self.sbom_output.clone(),
        }
    }
}

/// `--smoke[=ARGS]` and `--smoke-timeout`, for `pack` and `build`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SmokeArgs {
    /// Before writing any output, run the image (as `distroless-pack run`
    /// does, every platform) and fail unless the program starts: it must
    /// exit 0, or still be running at --smoke-timeout (a server). ARGS,
    /// split at spaces, replace the image's cmd for this run.
    #[arg(
        long,
        value_name = "ARGS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        allow_hyphen_values = true,
        help_heading = "Smoke test"
    )]
    pub smoke: Option<String>,

    /// Seconds the smoke run may take; a program still running then has
    /// started (and is stopped).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        help_heading = "Smoke test"
    )]
    pub smoke_timeout: f64,

    /// Smoke-test (as --smoke) and fail when the trace of the run finds a
    /// warning: a file the program looked for and the image lacks.
    #[arg(long, help_heading = "Smoke test")]
    pub smoke_strict: bool,
}

impl SmokeArgs {
    pub fn settings(&self) -> anyhow::Result<Option<settings::Smoke>> {
        settings::smoke(self.smoke.as_deref(), self.smoke_timeout, self.smoke_strict)
            .map_err(crate::report::pipeline)
    }
}

/// `run --env`: `KEY=VALUE`, or `NAME` for the host's value.
pub fn parse_env(env: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    env.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Some((k.to_string(), v.to_string()))),
            _ if kv.is_empty() || kv.starts_with('=') => {
                Err(anyhow::anyhow!("--env {kv:?}: expected KEY=VALUE"))
            }
            // `-e NAME` passes the host's value, and nothing when NAME is
            // unset, as docker does.
            _ => Ok(std::env::var(kv).ok().map(|v| (kv.clone(), v))),
        })
        .filter_map(Result::transpose)
        .collect()
}
