//! The container engines every stage can hand work to: docker and podman.
//! One type for `build --engine`, `--load[=ENGINE]` and `run --engine`;
//! each stage keeps its own check of whether the engine answers, since
//! they need different things of it.

use std::fmt;
use std::str::FromStr;

/// docker or podman.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// Both, in the order "the first one that answers" tries them.
    pub const ALL: [Engine; 2] = [Engine::Docker, Engine::Podman];

    /// The command to run: `docker` or `podman`.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "docker" => Ok(Engine::Docker),
            "podman" => Ok(Engine::Podman),
            other => Err(format!(
                "unknown engine {other:?}: expected docker or podman"
            )),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_parse_and_print_back() {
        for e in Engine::ALL {
            assert_eq!(e.to_string().parse::<Engine>(), Ok(e));
        }
        assert_eq!(
            "auto".parse::<Engine>().unwrap_err(),
            "unknown engine \"auto\": expected docker or podman"
        );
    }
}
