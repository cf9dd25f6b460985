//! `distroless-pack login REGISTRY -u USER --password-stdin`: checks the
//! credentials against the registry and stores them in docker's config.json
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), keeping
//! every other entry; the file is replaced atomically, mode 0600.

use std::io::Write;

use anyhow::Context;
use distroless_pack_ship::registry::{self, credentials, CredentialOptions, PushOptions};

use crate::args::read_password_stdin;
use crate::exit::{self, WithCode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The registry: `HOST[:PORT]`, or `docker.io` for Docker Hub.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,

    /// User name.
    #[arg(long, short = 'u', value_name = "USER")]
    pub username: String,

    /// Read the password or token from standard input (required: passwords
    /// are never taken as arguments).
    #[arg(long, required = true)]
    pub password_stdin: bool,

    /// Also trust the PEM CA certificates in FILE.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Allow plain HTTP and unverified TLS.
    #[arg(long)]
    pub insecure: bool,

    /// Store the credentials without checking them against the registry.
    #[arg(long)]
    pub no_check: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let password = read_password_stdin()?;
    let registry = credentials::normalise_key(&args.registry);
    if registry.is_empty() || registry.contains('/') {
        return Err(anyhow::anyhow!(
            "login: {:?} is not a registry; give HOST[:PORT] or docker.io",
            args.registry
        ))
        .code(exit::USAGE);
    }
    if !args.no_check {
        let opts = PushOptions {
            credentials: CredentialOptions {
                explicit: Some((args.username.clone(), password.clone())),
                only_explicit: true,
            },
            ca_file: args.ca_file.clone(),
            insecure: args.insecure,
            ..PushOptions::default()
        };
        registry::check_login(&registry, &opts)
            .map_err(|e| exit::fail(format!("logging in to {registry}: {e}"), e.kind()))?;
    }
    let path = credentials::docker_config_path()
        .context("neither DOCKER_CONFIG nor HOME is set: cannot find docker's config.json")
        .code(exit::USAGE)?;
    credentials::store_in_docker_config(&path, &registry, &args.username, &password)
        .map_err(|e| exit::fail(e, distroless_pack_image::ErrorKind::Output))?;
    let _ = writeln!(
        std::io::stderr(),
        "Login succeeded: credentials for {registry} stored in {}",
        path.display()
    );
    Ok(exit::OK)
}
