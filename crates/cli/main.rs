//! `distroless-pack`: the command-line front of the pipeline
//! build -> verify -> assemble -> ship.
//!
//! This crate only parses arguments, shows progress and prints results; the
//! work happens in the library crates. Each subcommand lives in its own
//! `cmd_*.rs` file with an `Args` struct and a `run` function.

mod args;
mod cmd_attach;
mod cmd_build;
mod cmd_cache;
mod cmd_inspect;
mod cmd_login;
mod cmd_pack;
mod cmd_push;
mod cmd_run;
mod cmd_sbom;
mod cmd_verify;
mod dry_run;
mod exit;
mod inspect_view;
mod progress;
mod report;

use std::io::Write;
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
    /// Remove a registry's credentials from the docker config file.
    Logout(cmd_login::LogoutArgs),
    /// Run an image's entrypoint without a container engine.
    Run(cmd_run::Args),
    /// Attach a document (SBOM, provenance, ...) to an image as an OCI artifact.
    Attach(cmd_attach::Args),
    /// Print the SBOM of an image or of a bare executable.
    Sbom(cmd_sbom::Args),
    /// Show or prune the layer cache.
    Cache(cmd_cache::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
        Err(e) => {
            let _ = std::io::stderr().write_all(usage_error(&e.render().to_string()).as_bytes());
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = match cli.command {
        Command::Build(a) => cmd_build::run(a),
        Command::Verify(a) => cmd_verify::run(a),
        Command::Pack(a) => cmd_pack::run(a),
        Command::Inspect(a) => cmd_inspect::run(a),
        Command::Push(a) => cmd_push::run(a),
        Command::Login(a) => cmd_login::run(a),
        Command::Logout(a) => cmd_login::run_logout(a),
        Command::Run(a) => cmd_run::run(a),
        Command::Attach(a) => cmd_attach::run(a),
        Command::Sbom(a) => cmd_sbom::run(a),
        Command::Cache(a) => cmd_cache::run(a),
    };
    exit::finish(result)
}

/// clap's error as our one line, plus one hint line: its tips and where
/// the help is (clap's own text spreads over several lines with the usage).
fn usage_error(rendered: &str) -> String {
    let mut lines = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    let first = lines.next().unwrap_or("invalid arguments");
    let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" lists them on
    // the lines after it: they go on the one line
    if first.ends_with(':') {
        let mut listed = Vec::new();
        while let Some(l) = lines.next_if(|l| {
            !["Usage: ", "tip: ", "For more information"]
                .iter()
                .any(|p| l.starts_with(p))
        }) {
            listed.push(l);
        }
        if !listed.is_empty() {
            first = format!("{first} {}", listed.join(", "));
        }
    }
    let mut hints: Vec<String> = Vec::new();
    let mut usage = None;
    for l in lines {
        if let Some(t) = l.strip_prefix("tip: ") {
            hints.push(t.to_string());
        } else if let Some(u) = l.strip_prefix("Usage: ") {
            usage = u
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .into();
        }
    }
    hints.push(format!(
        "see `{} --help`",
        usage.unwrap_or_else(|| "distroless-pack".to_string())
    ));
    format!(
        "distroless-pack: error: {first}\nhint: {}\n",
        hints.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_argument_is_named_on_the_one_line() {
        let e = Cli::try_parse_from(["distroless-pack", "push", "oci:x"]).unwrap_err();
        let text = usage_error(&e.render().to_string());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with(
                "distroless-pack: error: the following required arguments were not provided: <REF>"
            ),
            "{text}"
        );
    }

    #[test]
    fn argument_errors_are_one_line_plus_a_hint() {
        let e = Cli::try_parse_from(["distroless-pack", "pack", "--nope", "x"]).unwrap_err();
        let text = usage_error(&e.render().to_string());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("distroless-pack: error: unexpected argument '--nope'"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains("distroless-pack pack --help"),
            "{text}"
        );
    }
}
