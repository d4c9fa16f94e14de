//! Image references (`[registry/]repository[:tag][@digest]`), parsed and normalised as
//! Docker does: `alpine` is `docker.io/library/alpine:latest`.

use std::fmt;
use std::str::FromStr;

/// The registry Docker assumes when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/alpine`).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:<hex>`), if given.
    pub digest: Option<String>,
}

/// A reference that is not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {text:?}: {reason}")]
pub struct ReferenceError {
    text: String,
    reason: &'static str,
}

impl Reference {
    /// The tag, defaulting to `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The fully qualified `registry/repository:tag` (`docker.io/library/app:1`).
    pub fn full_tagged(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag_or_latest())
    }

    /// The short form Docker prints and writes in `RepoTags` (`app:1`, `me/app:1`,
    /// `localhost:5000/app:1`).
    pub fn familiar_tagged(&self) -> String {
        let name = if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        format!("{name}:{}", self.tag_or_latest())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| ReferenceError {
            text: text.into(),
            reason,
        };
        if text.len() > 255 {
            return Err(refuse("it is longer than 255 characters"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    parse_digest(digest)
                        .ok_or_else(|| refuse("the digest must be sha256: followed by 64 lowercase hex digits"))?,
                ),
            ),
            None => (text, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let (name, tag) = match rest.rfind(':') {
            Some(at) if !rest[at..].contains('/') => (&rest[..at], Some(&rest[at + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(refuse(
                "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        if !valid_registry(&registry) {
            return Err(refuse(
                "the registry must be a host name or address, with an optional :port",
            ));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(refuse("repository names must be lowercase"));
        }
        if repository.is_empty() || !repository.split('/').all(valid_path_component) {
            return Err(refuse(
                "repository path components are lowercase letters and digits, separated by '.', '_', '__' or dashes",
            ));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

fn parse_digest(text: &str) -> Option<String> {
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(|| text.to_owned())
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || registry.starts_with('[') => (host, Some(port)),
        _ => (registry, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    port_ok && host_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(&b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__") && !separator.bytes().all(|s| s == b'-') {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Reference {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn references_normalise_as_docker_does() {
        assert_eq!(parse("alpine").to_string(), "docker.io/library/alpine");
        assert_eq!(parse("alpine").full_tagged(), "docker.io/library/alpine:latest");
        assert_eq!(parse("alpine").familiar_tagged(), "alpine:latest");
        assert_eq!(parse("me/app:1").full_tagged(), "docker.io/me/app:1");
        assert_eq!(
            parse("localhost:5000/app").familiar_tagged(),
            "localhost:5000/app:latest"
        );
        let r = parse(&format!("127.0.0.1:5000/a/b:v1.2@sha256:{}", "ab".repeat(32)));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v1.2"));
        assert!(r.digest.is_some());
    }

    #[test]
    fn invalid_references_say_why() {
        for (text, reason) in [
            ("App", "lowercase"),
            ("app:", "a tag is"),
            ("app:-x", "a tag is"),
            ("a//b", "path components"),
            ("a@sha256:12", "digest"),
            ("bad_host:5000/app", "registry"),
        ] {
            let error = text.parse::<Reference>().unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
