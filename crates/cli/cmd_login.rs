//! `distroless-pack login REGISTRY -u USER --password-stdin`: checks the
//! credentials against the registry and stores them in docker's config.json
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), keeping
//! every other entry; the file is replaced atomically, mode 0600.
//! `distroless-pack logout REGISTRY` removes them again.

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
    let registry = registry_key(&args.registry, "login")?;
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
    let path = config_path()?;
    credentials::store_in_docker_config(&path, &registry, &args.username, &password)
        .map_err(|e| exit::fail(e, distroless_pack_image::ErrorKind::Output))?;
    let _ = writeln!(
        std::io::stderr(),
        "Login succeeded: credentials for {registry} stored in {}",
        path.display()
    );
    Ok(exit::OK)
}

/// `distroless-pack logout REGISTRY`: the other half of `login`.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry: `HOST[:PORT]`, or `docker.io` for Docker Hub.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

/// Removes the registry's `auths` entries (every spelling of it) from
/// docker's config.json, keeping every other entry, as `docker logout`
/// does. Not being logged in is not an error. A credential helper's own
/// copy is left alone (login never writes one) and named.
pub fn run_logout(args: LogoutArgs) -> anyhow::Result<u8> {
    let registry = registry_key(&args.registry, "logout")?;
    let path = config_path()?;
    let removed = credentials::remove_from_docker_config(&path, &registry)
        .map_err(|e| exit::fail(e, distroless_pack_image::ErrorKind::Output))?;
    let mut err = std::io::stderr();
    let _ = if removed.keys.is_empty() {
        writeln!(
            err,
            "Not logged in to {registry}: no entry for it in {}",
            path.display()
        )
    } else {
        writeln!(
            err,
            "Removed the credentials for {registry} from {}",
            path.display()
        )
    };
    if let Some(helper) = removed.helper {
        let _ = writeln!(
            err,
            "note: docker-credential-{helper} may keep credentials for {registry}; `docker logout {registry}` erases them there"
        );
    }
    Ok(exit::OK)
}

/// The config key of a registry argument, refusing a repository or nothing.
fn registry_key(given: &str, command: &str) -> anyhow::Result<String> {
    let registry = credentials::normalise_key(given);
    if registry.is_empty() || registry.contains('/') {
        return Err(anyhow::anyhow!(
            "{command}: {given:?} is not a registry; give HOST[:PORT] or docker.io"
        ))
        .code(exit::USAGE);
    }
    Ok(registry)
}

fn config_path() -> anyhow::Result<std::path::PathBuf> {
    credentials::docker_config_path()
        .context("neither DOCKER_CONFIG nor HOME is set: cannot find docker's config.json")
        .code(exit::USAGE)
}
