//! Exit codes and the one-line error report.
//!
//! Every failure reaches `main` as an `anyhow::Error`. Commands tag the kind
//! of failure with [`Coded`] (through [`WithCode::code`]); untagged errors are
//! treated as bad input. The message is printed on one line, with the chain of
//! contexts joined by ": ".

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// `verify` (or the verify step of pack/build) found an error-level problem.
pub const FINDINGS: u8 = 1;
/// Usage error, or input that cannot be read or parsed.
pub const USAGE: u8 = 2;
/// The application's build (compiler, toolchain, builder image) failed.
pub const BUILD: u8 = 3;
/// A registry could not be reached or refused the push.
pub const REGISTRY: u8 = 4;
/// A registry refused the credentials.
pub const AUTH: u8 = 5;
/// docker/podman is missing or failed.
pub const ENGINE: u8 = 6;
/// The image's program did not start or exited non-zero in a smoke run.
pub const SMOKE: u8 = 7;
/// Writing the output failed (disk full, permissions).
pub const OUTPUT: u8 = 8;

/// Attaches an exit code to an error.
pub trait WithCode<T> {
    fn code(self, code: u8) -> anyhow::Result<T>;
}

impl<T, E> WithCode<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn code(self, code: u8) -> anyhow::Result<T> {
        self.map_err(|e| tag(e.into(), code))
    }
}

/// Tags an existing error with an exit code (the outermost tag wins).
pub fn tag(e: anyhow::Error, code: u8) -> anyhow::Error {
    if e.downcast_ref::<Tagged>().is_some() {
        return e;
    }
    anyhow::Error::new(Tagged { code, inner: e })
}

/// Turns a command's result into the process exit code, printing the error.
pub fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.downcast_ref::<Tagged>().map(|t| t.code).unwrap_or(USAGE);
            let msg = match e.downcast_ref::<Tagged>() {
                Some(t) => format!("{:#}", t.inner),
                None => format!("{e:#}"),
            };
            let line = msg.replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "distroless-pack: error: {line}");
            ExitCode::from(code)
        }
    }
}

struct Tagged {
    code: u8,
    inner: anyhow::Error,
}

impl fmt::Debug for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.inner)
    }
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.inner)
    }
}

impl std::error::Error for Tagged {}
