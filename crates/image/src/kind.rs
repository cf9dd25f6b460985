//! What kind of failure an error is, for the one place (the CLI's
//! `exit.rs`) that turns failures into exit codes. Every library error type
//! has a `kind()` returning one of these.

/// The class of a failure, independent of the crate it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad flags, configuration or input that cannot be read or parsed.
    Usage,
    /// Verify found an error-level problem.
    Findings,
    /// The application's build failed (compiler, toolchain, builder image).
    Build,
    /// A registry could not be reached or refused the push.
    Registry,
    /// A registry refused the credentials.
    Auth,
    /// docker/podman is missing or failed.
    Engine,
    /// The smoke run's program did not start or exited non-zero.
    Smoke,
    /// Writing an output failed (disk full, permissions).
    Output,
    /// `run`: the tool failed before the program started (docker's 125).
    RunFailed,
    /// `run`: the program cannot be invoked (docker's 126).
    CannotInvoke,
    /// `run`: the program or its interpreter is not in the image (docker's 127).
    NotFound,
    /// Interrupted by a signal (Ctrl-C).
    Interrupted,
}
