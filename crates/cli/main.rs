//! `distroless-pack`: the command-line front of the pipeline
//! build -> verify -> assemble -> ship.
//!
//! This crate only parses arguments, shows progress and prints results; the
//! work happens in the library crates. Each subcommand lives in its own
//! `cmd_*.rs` file with an `Args` struct and a `run` function.

mod args;
mod cmd_build;
mod cmd_inspect;
mod cmd_login;
mod cmd_pack;
mod cmd_push;
mod cmd_run;
mod cmd_verify;
mod dry_run;
mod exit;
mod progress;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turn an application into a FROM-scratch OCI image holding one static
/// executable: build it, prove it is self-contained, pack it reproducibly,
/// and ship it to a layout, an archive, docker/podman or a registry.
#[derive(Parser, Debug)]
#[command(name = "distroless-pack", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile a project statically, verify it and pack it into an image.
    Build(cmd_build::Args),
    /// Check that ELF executables will run in an empty (scratch) image.
    Verify(cmd_verify::Args),
    /// Wrap a static executable in a reproducible FROM-scratch image.
    Pack(cmd_pack::Args),
    /// Show an image's digest, config and layer contents.
    Inspect(cmd_inspect::Args),
    /// Push an existing image (layout or archive) to a registry, unchanged.
    Push(cmd_push::Args),
    /// Store registry credentials in the docker config file.
    Login(cmd_login::Args),
    /// Run an image's entrypoint without a container engine.
    Run(cmd_run::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Build(a) => cmd_build::run(a),
        Command::Verify(a) => cmd_verify::run(a),
        Command::Pack(a) => cmd_pack::run(a),
        Command::Inspect(a) => cmd_inspect::run(a),
        Command::Push(a) => cmd_push::run(a),
        Command::Login(a) => cmd_login::run(a),
        Command::Run(a) => cmd_run::run(a),
    };
    exit::finish(result)
}
