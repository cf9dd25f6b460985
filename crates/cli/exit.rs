//! Exit codes, the one map from [`ErrorKind`] to them, and the one-line
//! error report.
//!
//! Every failure reaches `main` as an `anyhow::Error`. Library errors are
//! tagged with the code of their `kind()` ([`fail`]); the CLI's own checks
//! tag theirs with [`WithCode::code`]; untagged errors are bad input. The
//! message is printed on one line. A closed stdout (`| head`) is not a
//! failure: the program ends quietly with success, as ripgrep does.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use distroless_pack_image::ErrorKind;

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
/// `run`: the tool failed before the program started (as `docker run`).
pub const RUN_FAILED: u8 = 125;
/// `run`: the program cannot be invoked (not executable, foreign arch).
pub const CANNOT_INVOKE: u8 = 126;
/// `run`: the program, or the interpreter it needs, is not in the image.
pub const NOT_FOUND: u8 = 127;
/// Interrupted (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// The exit code of a kind of failure: the only such map.
pub fn code_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => USAGE,
        ErrorKind::Findings => FINDINGS,
        ErrorKind::Build => BUILD,
        ErrorKind::Registry => REGISTRY,
        ErrorKind::Auth => AUTH,
        ErrorKind::Engine => ENGINE,
        ErrorKind::Smoke => SMOKE,
        ErrorKind::Output => OUTPUT,
        ErrorKind::RunFailed => RUN_FAILED,
        ErrorKind::CannotInvoke => CANNOT_INVOKE,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::Interrupted => INTERRUPTED,
    }
}

/// A library error: its one-line message (which already names its cause)
/// tagged with the code of its kind.
pub fn fail<E: fmt::Display>(e: E, kind: ErrorKind) -> anyhow::Error {
    tag(anyhow::anyhow!("{e}"), code_of(kind))
}

/// A source that cannot be read is bad input, whatever the cause.
pub fn reading(source: &impl fmt::Display, e: impl fmt::Display) -> anyhow::Error {
    fail(format!("reading {source}: {e}"), ErrorKind::Usage)
}

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

/// Whether `e` is a write to a closed pipe.
fn broken_pipe(e: &anyhow::Error) -> bool {
    let inner = e.downcast_ref::<Tagged>().map(|t| &t.inner).unwrap_or(e);
    inner.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Turns a command's result into the process exit code, printing the error.
pub fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if broken_pipe(&e) => ExitCode::from(OK),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_one_per_kind_as_documented() {
        let table = [
            (ErrorKind::Findings, 1),
            (ErrorKind::Usage, 2),
            (ErrorKind::Build, 3),
            (ErrorKind::Registry, 4),
            (ErrorKind::Auth, 5),
            (ErrorKind::Engine, 6),
            (ErrorKind::Smoke, 7),
            (ErrorKind::Output, 8),
            (ErrorKind::RunFailed, 125),
            (ErrorKind::CannotInvoke, 126),
            (ErrorKind::NotFound, 127),
            (ErrorKind::Interrupted, 130),
        ];
        for (kind, code) in table {
            assert_eq!(code_of(kind), code, "{kind:?}");
        }
    }

    #[test]
    fn exit_codes_outermost_tag_wins_and_untagged_is_usage() {
        let e = tag(tag(anyhow::anyhow!("x"), OUTPUT), ENGINE);
        assert_eq!(e.downcast_ref::<Tagged>().unwrap().code, OUTPUT);
        let e = fail("bad", ErrorKind::Auth);
        assert_eq!(e.downcast_ref::<Tagged>().unwrap().code, AUTH);
    }

    #[test]
    fn exit_codes_broken_pipe_is_success() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = tag(anyhow::Error::new(io).context("writing"), OUTPUT);
        assert!(broken_pipe(&e));
        assert!(!broken_pipe(&anyhow::anyhow!("other")));
    }
}
