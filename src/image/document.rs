//! Manifests and indexes as read from outside (OCI and Docker schema 2, from layouts and
//! registries): the one parser `read` and `registry` share, and how to tell their kinds
//! apart.

use super::{Platform, media_type};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A manifest or an index, whichever the JSON is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// 2 for every form speck reads (1 is Docker's deprecated schema 1).
    #[serde(default)]
    pub schema_version: u32,
    /// The document's own media type, when it names it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// An index's entries.
    #[serde(default)]
    pub manifests: Option<Vec<Described>>,
    /// A manifest's config.
    pub config: Option<Described>,
    /// A manifest's layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Described>,
}

/// A descriptor as read: everything but the digest may be missing.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Described {
    /// Its media type, or empty.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`, not yet checked to be one.
    pub digest: String,
    /// Its size in bytes (0 when missing).
    #[serde(default)]
    pub size: u64,
    /// Annotations (an index entry's ref name).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// An index entry's platform.
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Described {
    /// Whether it names an index (OCI) or a manifest list (Docker).
    pub fn is_index(&self) -> bool {
        matches!(
            self.media_type.as_str(),
            media_type::OCI_INDEX | media_type::DOCKER_LIST
        )
    }
}

impl Document {
    /// The media type to serve or store it under: the one it names, else an OCI index
    /// when it lists manifests, else an OCI manifest.
    pub fn kind(&self) -> &'static str {
        match (self.media_type.as_deref(), &self.manifests) {
            (Some(media_type::DOCKER_MANIFEST), _) => media_type::DOCKER_MANIFEST,
            (Some(media_type::DOCKER_LIST), _) => media_type::DOCKER_LIST,
            (_, Some(_)) => media_type::OCI_INDEX,
            _ => media_type::OCI_MANIFEST,
        }
    }
}
