//! `distroless-pack verify [--platform P] [--json] FILE...`: checks that ELF
//! executables will run in an empty (scratch) image.
//!
//! Exit status: 0 when no file has an error-level finding, 1 (`FINDINGS`)
//! when one does, 2 (`USAGE`) when a file cannot be read as ELF (each such
//! file also gets a one-line `distroless-pack: error: FILE: problem` on
//! stderr; the other files are still reported).

use std::io::{self, Write};
use std::path::PathBuf;

use distroless_pack_image::Platform;
use distroless_pack_verify::{json_document, verify_file, Report, VerifyError};

use crate::exit::{self, WithCode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Platform the image is for (linux/amd64 or linux/arm64); default: this machine's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
    /// Print a JSON document (schema_version 1) on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// ELF executables to check.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Prints the one-line error for a file that could not be read.
fn print_unreadable(e: &VerifyError) {
    let _ = writeln!(
        io::stderr(),
        "distroless-pack: error: {}",
        e.to_string().replace('\n', " ")
    );
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let platform = args.platform.unwrap_or_else(Platform::host);
    let results: Vec<Result<Report, VerifyError>> = args
        .files
        .iter()
        .map(|f| verify_file(f, &platform))
        .collect();

    let mut code = exit::OK;
    for r in &results {
        match r {
            Ok(report) if report.has_errors() && code == exit::OK => code = exit::FINDINGS,
            Ok(_) => {}
            Err(_) => code = exit::USAGE,
        }
    }
    match write_results(&results, args.json) {
        // `verify ... | head` closing the pipe early is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.code(exit::OUTPUT)?,
    }
    Ok(code)
}

/// The reports on stdout (text or one JSON document), and a one-line error
/// on stderr for each file that could not be read, in the order given.
fn write_results(results: &[Result<Report, VerifyError>], json: bool) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &json_document(results))?;
        writeln!(out)?;
    }
    let mut printed = false;
    for r in results {
        match r {
            Ok(report) if !json => {
                if printed {
                    writeln!(out)?;
                }
                out.write_all(report.render_human().as_bytes())?;
                printed = true;
            }
            Ok(_) => {}
            Err(e) => {
                out.flush()?;
                print_unreadable(e);
            }
        }
    }
    out.flush()
}
