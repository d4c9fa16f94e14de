//! The docker-archive format read by `docker load`, `podman load` and skopeo.

use super::{Member, blob_path, image_blobs};
use crate::image::{Image, Reference};
use serde::Serialize;
use std::borrow::Cow;

/// `manifest.json`, the config and the layers, all blobs stored under their digests
/// as Docker 25+ does (any member name works; this one is shared with the OCI layout).
pub fn members<'a>(image: &'a Image, tags: &[Reference]) -> Vec<Member<'a>> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ManifestEntry {
        config: String,
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let config = image.config_blob();
    let entry = ManifestEntry {
        config: blob_path(config.digest),
        repo_tags: tags.iter().map(Reference::familiar_tagged).collect(),
        layers: image.layers().iter().map(|l| blob_path(l.digest())).collect(),
    };
    let manifest = serde_json::to_vec(&[entry]).expect("a manifest always serialises");
    let manifest_json = Member {
        path: "manifest.json".into(),
        bytes: Cow::Owned(manifest),
    };
    std::iter::once(manifest_json).chain(image_blobs(image)).collect()
}
