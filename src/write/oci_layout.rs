//! The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as a directory
//! or inside a tar.

use super::{Member, blob_path, image_blobs};
use crate::image::{Descriptor, Image, Reference, media_type};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Annotation that names an index entry; umoci and skopeo look images up by it.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd (`ctr import`) names the image by.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The layout's files: one index entry per tag (or one unnamed entry), all pointing at
/// the same manifest.
pub fn members<'a>(image: &'a Image, tags: &[Reference]) -> Vec<Member<'a>> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u32,
        media_type: &'static str,
        manifests: Vec<Descriptor>,
    }
    let manifest = image.oci_manifest();
    let described = || {
        let mut d = Descriptor::of(media_type::OCI_MANIFEST, manifest.digest, manifest.bytes.len() as u64);
        d.platform = Some(image.platform().into());
        d
    };
    let mut manifests: Vec<Descriptor> = tags
        .iter()
        .map(|tag| {
            let mut d = described();
            d.annotations = BTreeMap::from([
                (CONTAINERD_NAME.to_owned(), tag.full_tagged()),
                (REF_NAME.to_owned(), tag.tag_or_latest().to_owned()),
            ]);
            d
        })
        .collect();
    if manifests.is_empty() {
        manifests.push(described());
    }
    let index = Index {
        schema_version: 2,
        media_type: media_type::OCI_INDEX,
        manifests,
    };
    let mut members = vec![
        Member {
            path: "oci-layout".into(),
            bytes: Cow::Borrowed(br#"{"imageLayoutVersion":"1.0.0"}"#),
        },
        Member {
            path: "index.json".into(),
            bytes: Cow::Owned(serde_json::to_vec(&index).expect("an index always serialises")),
        },
        Member {
            path: blob_path(manifest.digest),
            bytes: Cow::Owned(manifest.bytes.to_vec()),
        },
    ];
    members.extend(image_blobs(image));
    members
}
