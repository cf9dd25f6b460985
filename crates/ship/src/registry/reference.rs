//! Image references: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`, normalised the
//! way docker does (`docker.io`, `library/` for official images).

use std::fmt;
use std::str::FromStr;

use distroless_pack_image::Digest;

/// The registry docker means when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// The host docker actually talks to for `docker.io`.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker's config.json and credential helpers use for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`, ...
    pub registry: String,
    /// `library/nginx`, `org/app`, ...
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A string that is not a valid image reference.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    /// Parses `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.contains("://") {
            return Err(err("give REGISTRY/NAME[:TAG] without a URL scheme"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Digest>().map_err(|e| err(&e.to_string()))?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(err(
                    "a tag has at most 128 letters, digits, '_', '.' or '-'",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                DOCKER_HUB.to_string()
            }
            _ => registry,
        };
        // host names are case-insensitive; keep them lower-case
        let registry = registry.to_lowercase();
        let (host, port) = match registry.rsplit_once(':') {
            Some((h, p)) if !registry.ends_with(']') => (h, Some(p)),
            _ => (registry.as_str(), None),
        };
        let host_ok = (host.starts_with('[') && host.ends_with(']'))
            || (!host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(err("the registry must be HOST[:PORT]"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(err("no repository name"));
        }
        for component in repository.split('/') {
            let ok = !component.is_empty()
                && component.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
                && component
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && component
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err(err(
                    "repository path components are lower-case letters, digits and separators (. _ -)",
                ));
            }
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `REGISTRY/REPOSITORY`, the name printed before `@sha256:...`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host (and port) to send API requests to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The tag to push to: the given one, else `latest` unless a digest was given.
    pub fn push_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    /// Whether plain HTTP may be tried for this registry without `--insecure`.
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "::1"
    }
}

/// The host part of `HOST[:PORT]`.
pub fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry
            .split_once(']')
            .map(|(h, _)| &registry[..h.len() + 1])
            .unwrap_or(registry);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_are_normalised() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.push_tag(), Some("latest"));
        let r = Reference::parse("index.docker.io/me/app:v1").unwrap();
        assert_eq!(r.to_string(), "docker.io/me/app:v1");
        assert_eq!(Reference::parse("me/app").unwrap().repository, "me/app");
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:t1@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("t1"));
        assert_eq!(r.digest.as_ref().unwrap().as_str(), d);
        assert!(r.is_loopback());
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!(r.registry, "localhost");
        assert!(r.is_loopback());
        let r = Reference::parse("ghcr.io/o/x").unwrap();
        assert!(!r.is_loopback());
        assert_eq!(r.name(), "ghcr.io/o/x");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "Upper/case",
            "a:b:c/d",
            "x:",
            "https://ghcr.io/a",
            "a//b",
            "x@sha256:12",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
