//! The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as a directory
//! or inside a tar.
//!
//! One platform: `index.json` names its manifest directly (umoci needs that). Several:
//! `index.json` names a nested image index that lists each platform's manifest, as
//! buildx and Docker 25+ write multi-platform layouts.

use super::{Member, blob_path, image_blobs};
use crate::image::{Blob, Descriptor, Image, Reference, index_json, media_type};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Annotation that names an index entry; umoci and skopeo look images up by it.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd (`ctr import`) names the image by.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The layout's files: one `index.json` entry per tag (or one unnamed entry), all
/// pointing at the same manifest or nested index.
pub fn members<'a>(images: &'a [Image], tags: &[Reference]) -> Vec<Member<'a>> {
    let mut members = vec![Member {
        path: "oci-layout".into(),
        bytes: Cow::Borrowed(br#"{"imageLayoutVersion":"1.0.0"}"#),
    }];
    let top = match images {
        [image] => {
            let manifest = image.oci_manifest();
            let mut descriptor = described(media_type::OCI_MANIFEST, &manifest);
            descriptor.platform = Some(image.platform().into());
            members.push(blob_member(manifest));
            descriptor
        }
        images => {
            let manifests = images.iter().map(|image| image.oci_manifest()).collect::<Vec<_>>();
            let listed = images
                .iter()
                .zip(&manifests)
                .map(|(image, manifest)| {
                    let mut descriptor = described(media_type::OCI_MANIFEST, manifest);
                    descriptor.platform = Some(image.platform().into());
                    descriptor
                })
                .collect();
            let nested = Blob::new(index_json(listed));
            let descriptor = described(media_type::OCI_INDEX, &nested);
            members.push(blob_member(nested));
            members.extend(manifests.into_iter().map(blob_member));
            descriptor
        }
    };
    let mut entries: Vec<Descriptor> = tags
        .iter()
        .map(|tag| {
            let mut entry = top.clone();
            entry.annotations = BTreeMap::from([
                (CONTAINERD_NAME.to_owned(), tag.full_tagged()),
                (REF_NAME.to_owned(), tag.tag_or_latest().to_owned()),
            ]);
            entry
        })
        .collect();
    if entries.is_empty() {
        entries.push(top);
    }
    members.push(Member {
        path: "index.json".into(),
        bytes: Cow::Owned(index_json(entries)),
    });
    for image in images {
        members.extend(image_blobs(image));
    }
    members
}

fn described(media_type: &'static str, blob: &Blob) -> Descriptor {
    Descriptor::of(media_type, blob.digest, blob.bytes.len() as u64)
}

fn blob_member<'a>(blob: Blob) -> Member<'a> {
    Member {
        path: blob_path(blob.digest),
        bytes: Cow::Owned(blob.bytes.to_vec()),
    }
}
