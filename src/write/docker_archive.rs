//! The docker-archive format read by `docker load`, `podman load` and skopeo.

use super::{Member, image_blobs};
use crate::image::{Image, Reference};
use serde::Serialize;
use std::borrow::Cow;

/// `manifest.json`, the config and the layers. Blobs are stored under their digests as
/// Docker 25+ does (a path shared with the OCI layout), or with `short_names` under one or
/// two letters (any member name works): `c` for the config, `z` (or `z0`, `z1`…) for the
/// layers, which sort last, so that the archive ends with the program unpadded: 9 bytes
/// less after deflate than with the layer first.
pub fn members<'a>(image: &'a Image, tags: &[Reference], short_names: bool) -> Vec<Member<'a>> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ManifestEntry {
        config: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let mut blobs: Vec<Member> = image_blobs(image).collect();
    if short_names {
        blobs[0].path = "c".into();
        let one_layer = blobs.len() == 2;
        for (index, layer) in blobs[1..].iter_mut().enumerate() {
            layer.path = if one_layer { "z".into() } else { format!("z{index}") };
        }
    }
    let entry = ManifestEntry {
        config: blobs[0].path.clone(),
        repo_tags: tags.iter().map(Reference::familiar_tagged).collect(),
        layers: blobs[1..].iter().map(|layer| layer.path.clone()).collect(),
    };
    let manifest = serde_json::to_vec(&[entry]).expect("a manifest always serialises");
    let manifest_json = Member {
        path: "manifest.json".into(),
        bytes: Cow::Owned(manifest),
    };
    std::iter::once(manifest_json).chain(blobs).collect()
}
