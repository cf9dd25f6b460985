//! How bad a finding is: the three levels verify's findings (what is in
//! the binary) and run's trace findings (what the program looked for and
//! did not find) share, so that `--smoke` can report both alike.

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The program will not start, or cannot work, in a scratch image.
    Error,
    /// Some feature will fail at run time for want of a file the image
    /// could have.
    Warning,
    /// Good to know (a file an engine provides, one nothing else explains);
    /// never fails verification.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}
