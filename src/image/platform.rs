//! Platforms (`os/architecture[/variant]`) as OCI and Docker spell them.

use std::fmt;
use std::str::FromStr;

/// The OS and CPU an image runs on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
pub struct Platform {
    /// `linux` for everything speck builds.
    pub os: String,
    /// The GOARCH-style name: `amd64`, `386`, `arm64`, `arm`, `riscv64`, ...
    pub architecture: String,
    /// CPU variant, e.g. `v8` for arm64 or `v7` for arm.
    pub variant: Option<String>,
}

impl Platform {
    /// A Linux platform for `architecture` with no variant.
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The platform of the machine speck runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            other => other,
        };
        Self::linux(architecture).with_default_variant()
    }

    /// Adds the variant Docker writes when none is given (`v8` for arm64).
    pub fn with_default_variant(mut self) -> Self {
        if self.architecture == "arm64" && self.variant.is_none() {
            self.variant = Some("v8".into());
        }
        self
    }

    /// Whether two platforms name the same target, treating a missing variant as the default.
    pub fn matches(&self, other: &Platform) -> bool {
        let (a, b) = (
            self.clone().with_default_variant(),
            other.clone().with_default_variant(),
        );
        a.os == b.os
            && a.architecture == b.architecture
            && (a.variant.is_none() || b.variant.is_none() || a.variant == b.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// A `--platform` value that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("cannot read platform {0:?}: write it as os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(String);

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]` or a bare `arch` (Linux assumed), accepting the usual
    /// aliases (`x86_64`, `aarch64`, `i686`, `armhf`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let (os, arch, variant) = match parts[..] {
            [arch] => ("linux", arch, None),
            [os, arch] => (os, arch, None),
            [os, arch, variant] => (os, arch, Some(variant)),
            _ => return Err(PlatformError(text.into())),
        };
        if os.is_empty() || arch.is_empty() || variant == Some("") {
            return Err(PlatformError(text.into()));
        }
        let (architecture, implied_variant) = match arch.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_owned(), None),
            "i386" | "i486" | "i586" | "i686" | "386" | "x86" => ("386".to_owned(), None),
            "aarch64" | "arm64" => ("arm64".to_owned(), None),
            "armhf" => ("arm".to_owned(), Some("v7")),
            "armel" => ("arm".to_owned(), Some("v6")),
            other => (other.to_owned(), None),
        };
        Ok(Self {
            os: os.to_ascii_lowercase(),
            architecture,
            variant: variant.or(implied_variant).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_with_aliases() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!("aarch64".parse::<Platform>().unwrap().to_string(), "linux/arm64");
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().variant.as_deref(),
            Some("v8")
        );
        assert_eq!("armhf".parse::<Platform>().unwrap().to_string(), "linux/arm/v7");
        assert!("linux/".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn arm64_matches_with_or_without_its_default_variant() {
        let bare = Platform::linux("arm64");
        assert!(bare.matches(&"linux/arm64/v8".parse().unwrap()));
        assert!(!bare.matches(&Platform::linux("amd64")));
    }
}
