//! The one image model every source produces and every writer consumes.
//!
//! An [`Image`] is one platform's config plus its layers. It is immutable: its config
//! blob is serialised and hashed once, when it is built, so every writer ships the very
//! bytes that were hashed. This module knows manifests and media types; it does not know
//! files, archives, engines or registries.

pub mod config;
pub mod document;
pub mod platform;
pub mod reference;

pub use config::Config;
pub use platform::Platform;
pub use reference::Reference;

use crate::compress::Effort;
use crate::digest::Digest;
use crate::layer::{Compression, Layer};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// OCI media types.
pub mod media_type {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker's schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker's manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// Everything an image is made of, before it is frozen into an [`Image`].
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The platform the image runs on.
    pub platform: Platform,
    /// What the container runs.
    pub config: Config,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// Creation time in seconds since the Unix epoch (from `SOURCE_DATE_EPOCH`).
    pub created: u64,
    /// What made the image, for `docker history` (e.g. `speck pack app`).
    pub created_by: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A blob with its digest: the unit of content addressing.
#[derive(Clone, Debug)]
pub struct Blob {
    /// The exact bytes.
    pub bytes: Arc<[u8]>,
    /// `sha256` of [`Self::bytes`].
    pub digest: Digest,
}

impl Blob {
    /// Wraps bytes with their digest.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            digest: Digest::of(&bytes),
            bytes: bytes.into(),
        }
    }
}

/// One platform's image: config and layers, frozen.
#[derive(Clone, Debug)]
pub struct Image {
    spec: ImageSpec,
    config_blob: Blob,
}

/// How much of the image configuration JSON to write. Each form is a different image
/// (the config's digest is the image ID), so the form is chosen when building.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConfigForm {
    /// Everything `docker build` writes: platform, config, creation time, history, rootfs.
    #[default]
    Full,
    /// What every engine here needs: platform (containerd filters by it), config,
    /// `rootfs` with its type (umoci needs it once the image is an OCI layout).
    Portable,
    /// What `docker load` needs: the config and `rootfs.diff_ids`. An entrypoint without
    /// arguments becomes the Cmd (the same for `docker run IMAGE`, 7 bytes shorter).
    /// containerd's import filters such an image out (no platform), and `docker run`
    /// warns that its platform is unknown.
    DockerOnly,
}

/// Which media types an OCI manifest names. Each form is a different manifest digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestForm {
    /// Every media type: the manifest's own, the config's, each layer's.
    #[default]
    Full,
    /// Only the config's, which podman needs; the others are optional in the OCI spec
    /// (registries take the manifest's type from `Content-Type`; docker and podman sniff
    /// a layer's compression; containerd's ctr pull refuses an untyped layer).
    ConfigTypeOnly,
    /// None: docker pulls it; podman refuses a config without a media type.
    Untyped,
}

/// A content descriptor as the OCI spec writes it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is.
    pub media_type: &'static str,
    /// Its digest.
    pub digest: String,
    /// Its length in bytes.
    pub size: u64,
    /// Annotations (for index entries: the ref name).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform (for index entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
}

/// A platform as the OCI spec writes it in an index.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformJson {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl From<&Platform> for PlatformJson {
    fn from(p: &Platform) -> Self {
        Self {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
        }
    }
}

impl Descriptor {
    /// Describes `bytes` as a blob of `media_type`.
    pub fn of(media_type: &'static str, digest: Digest, size: u64) -> Self {
        Self {
            media_type,
            digest: digest.to_string(),
            size,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

impl ImageSpec {
    /// Freezes the spec: serialises (in full) and hashes the config once.
    pub fn build(self) -> Image {
        self.build_as(ConfigForm::Full)
    }

    /// Freezes the spec with its config written in `form`.
    pub fn build_as(self, form: ConfigForm) -> Image {
        let config_blob = Blob::new(config_json(&self, form));
        Image {
            spec: self,
            config_blob,
        }
    }
}

/// An image config from outside that does not describe its layers.
#[derive(Debug, thiserror::Error)]
pub enum ImageReadError {
    /// Not an image config.
    #[error("the image config is not valid JSON of an image: {0}")]
    Json(#[from] serde_json::Error),
    /// `rootfs.diff_ids` and the layers disagree.
    #[error("the config lists {listed} layer digests (rootfs.diff_ids) for {found} layers")]
    LayerCount {
        /// How many the config lists.
        listed: usize,
        /// How many were found.
        found: usize,
    },
    /// A layer's uncompressed digest is not the one listed.
    #[error("layer {index} is {actual} uncompressed, but the config says {listed}")]
    DiffId {
        /// Which layer, from 1.
        index: usize,
        /// The listed digest.
        listed: String,
        /// The digest of the bytes found.
        actual: Digest,
    },
}

impl Image {
    /// An image read from outside: `config_blob` kept byte for byte (its digest stays the
    /// image ID), its platform and config parsed, its `rootfs.diff_ids` checked against
    /// `layers`.
    pub fn from_config_blob(config_blob: Blob, layers: Vec<Layer>) -> Result<Image, ImageReadError> {
        #[derive(serde::Deserialize)]
        struct ConfigFile {
            #[serde(default)]
            architecture: String,
            #[serde(default)]
            os: String,
            variant: Option<String>,
            config: Option<Config>,
            created: Option<String>,
            rootfs: RootFs,
        }
        #[derive(serde::Deserialize)]
        struct RootFs {
            diff_ids: Vec<String>,
        }
        let file: ConfigFile = serde_json::from_slice(&config_blob.bytes)?;
        let listed = &file.rootfs.diff_ids;
        if listed.len() != layers.len() {
            return Err(ImageReadError::LayerCount {
                listed: listed.len(),
                found: layers.len(),
            });
        }
        for (index, (listed, layer)) in listed.iter().zip(&layers).enumerate() {
            if *listed != layer.diff_id().to_string() {
                return Err(ImageReadError::DiffId {
                    index: index + 1,
                    listed: listed.clone(),
                    actual: layer.diff_id(),
                });
            }
        }
        let created = file
            .created
            .and_then(|text| humantime::parse_rfc3339_weak(&text).ok())
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs());
        let spec = ImageSpec {
            platform: Platform {
                os: file.os,
                architecture: file.architecture,
                variant: file.variant,
            },
            config: file.config.unwrap_or_default(),
            layers,
            created,
            created_by: String::new(),
            annotations: BTreeMap::new(),
        };
        Ok(Image { spec, config_blob })
    }

    /// What the container runs.
    pub fn config(&self) -> &Config {
        &self.spec.config
    }

    /// The same image with its config written in `form` (a new image ID).
    pub fn with_config_form(&self, form: ConfigForm) -> Image {
        self.spec.clone().build_as(form)
    }

    /// The same image (the same config, so the same ID) with every layer gzipped: plain
    /// layers compressed, as `docker push` sends them; gzip layers kept, or compressed
    /// again when `effort` is [`Effort::Smallest`].
    pub fn with_gzip_layers(&self, effort: Effort) -> Image {
        let layers = self
            .layers()
            .iter()
            .map(|layer| match (layer.compression(), effort) {
                (Compression::Gzip, Effort::Default) => layer.clone(),
                _ => {
                    let tar = layer.tar(u64::MAX).expect("a layer that inflated once inflates again");
                    Layer::from_tar_with(tar, Compression::Gzip, effort)
                }
            })
            .collect();
        Image {
            spec: ImageSpec {
                layers,
                ..self.spec.clone()
            },
            config_blob: self.config_blob.clone(),
        }
    }

    /// The platform the image runs on.
    pub fn platform(&self) -> &Platform {
        &self.spec.platform
    }

    /// Layers, bottom first.
    pub fn layers(&self) -> &[Layer] {
        &self.spec.layers
    }

    /// The image configuration JSON, exactly as shipped. Its digest is the image ID.
    pub fn config_blob(&self) -> &Blob {
        &self.config_blob
    }

    /// The OCI manifest, exactly as shipped.
    pub fn oci_manifest(&self) -> Blob {
        self.oci_manifest_as(ManifestForm::Full)
    }

    /// The OCI manifest in `form`.
    pub fn oci_manifest_as(&self, form: ManifestForm) -> Blob {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Manifest<'a> {
            schema_version: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            media_type: Option<&'static str>,
            config: Described,
            layers: Vec<Described>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            annotations: &'a BTreeMap<String, String>,
        }
        /// A descriptor whose media type may be left out.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Described {
            #[serde(skip_serializing_if = "Option::is_none")]
            media_type: Option<&'static str>,
            digest: String,
            size: u64,
        }
        let full = form == ManifestForm::Full;
        let layers = self
            .layers()
            .iter()
            .map(|layer| Described {
                media_type: full.then_some(match layer.compression() {
                    Compression::None => media_type::OCI_LAYER_TAR,
                    Compression::Gzip => media_type::OCI_LAYER_GZIP,
                }),
                digest: layer.digest().to_string(),
                size: layer.blob().len() as u64,
            })
            .collect();
        let manifest = Manifest {
            schema_version: 2,
            media_type: full.then_some(media_type::OCI_MANIFEST),
            config: Described {
                media_type: (form != ManifestForm::Untyped).then_some(media_type::OCI_CONFIG),
                digest: self.config_blob.digest.to_string(),
                size: self.config_blob.bytes.len() as u64,
            },
            layers,
            annotations: &self.spec.annotations,
        };
        Blob::new(serde_json::to_vec(&manifest).expect("a manifest always serialises"))
    }
}

/// An image index as a source stored it (a layout, a registry): its exact bytes and its
/// media type, so that a copy keeps its digest.
pub type StoredIndex = (Blob, &'static str);

/// One image per platform: what a multi-platform build produces.
///
/// Never empty, and no two images share a platform.
#[derive(Clone, Debug)]
pub struct ImageIndex {
    images: Vec<Image>,
}

impl From<Image> for ImageIndex {
    fn from(image: Image) -> Self {
        Self { images: vec![image] }
    }
}

impl ImageIndex {
    /// Groups per-platform images.
    ///
    /// # Panics
    /// If `images` is empty or two of them share a platform: both are caller bugs.
    pub fn new(images: Vec<Image>) -> Self {
        assert!(!images.is_empty(), "an index holds at least one image");
        for (i, a) in images.iter().enumerate() {
            assert!(
                images[i + 1..].iter().all(|b| a.platform() != b.platform()),
                "two images for {}",
                a.platform()
            );
        }
        Self { images }
    }

    /// The images, in the order given.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// Every image with its config written in `form`.
    pub fn with_config_form(&self, form: ConfigForm) -> Self {
        Self {
            images: self.images.iter().map(|image| image.with_config_form(form)).collect(),
        }
    }

    /// The image for `platform`, or the first one when none matches.
    pub fn pick(&self, platform: &Platform) -> &Image {
        self.images
            .iter()
            .find(|image| image.platform().matches(platform))
            .unwrap_or(&self.images[0])
    }
}

/// An OCI image index listing `manifests`.
pub fn index_json(manifests: Vec<Descriptor>) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index {
        schema_version: u32,
        media_type: &'static str,
        manifests: Vec<Descriptor>,
    }
    let index = Index {
        schema_version: 2,
        media_type: media_type::OCI_INDEX,
        manifests,
    };
    serde_json::to_vec(&index).expect("an index always serialises")
}

/// RFC 3339 UTC time for `seconds` after the Unix epoch.
pub fn rfc3339(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The image configuration in `form`, keys in sorted order, as both OCI and Docker read it.
fn config_json(spec: &ImageSpec, form: ConfigForm) -> Vec<u8> {
    #[derive(Serialize)]
    struct ConfigFile<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        architecture: Option<&'a str>,
        config: Cow<'a, Config>,
        #[serde(skip_serializing_if = "Option::is_none")]
        created: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        history: Vec<History<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        os: Option<&'a str>,
        rootfs: RootFs,
        #[serde(skip_serializing_if = "Option::is_none")]
        variant: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct History<'a> {
        created: String,
        created_by: &'a str,
    }
    #[derive(Serialize)]
    struct RootFs {
        diff_ids: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        r#type: Option<&'static str>,
    }
    let full = form == ConfigForm::Full;
    let platform = form != ConfigForm::DockerOnly;
    let mut config = Cow::Borrowed(&spec.config);
    if form == ConfigForm::DockerOnly && spec.config.cmd.is_none() {
        let config = config.to_mut();
        config.cmd = config.entrypoint.take();
    }
    let file = ConfigFile {
        architecture: platform.then_some(spec.platform.architecture.as_str()),
        config,
        created: full.then(|| rfc3339(spec.created)),
        history: if full {
            spec.layers
                .iter()
                .map(|_| History {
                    created: rfc3339(spec.created),
                    created_by: &spec.created_by,
                })
                .collect()
        } else {
            Vec::new()
        },
        os: platform.then_some(spec.platform.os.as_str()),
        rootfs: RootFs {
            diff_ids: spec.layers.iter().map(|l| l.diff_id().to_string()).collect(),
            r#type: platform.then_some("layers"),
        },
        variant: spec.platform.variant.as_deref().filter(|_| platform),
    };
    serde_json::to_vec(&file).expect("a config always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Entry, LayerOptions, TarForm};

    #[test]
    fn config_lists_diff_ids_and_the_epoch_time() {
        let layer = Layer::build(
            &[Entry::file("t", 0o755, b"x".to_vec()).unwrap()],
            &LayerOptions {
                form: TarForm::Minimal,
                mtime: 0,
                compression: Compression::Gzip,
            },
        )
        .unwrap();
        let image = ImageSpec {
            platform: Platform::linux("amd64"),
            config: Config::default(),
            layers: vec![layer.clone()],
            created: 0,
            created_by: "test".into(),
            annotations: BTreeMap::new(),
        }
        .build();
        let json = String::from_utf8(image.config_blob().bytes.to_vec()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"architecture":"amd64","config":{{}},"created":"1970-01-01T00:00:00Z","history":[{{"created":"1970-01-01T00:00:00Z","created_by":"test"}}],"os":"linux","rootfs":{{"diff_ids":["{}"],"type":"layers"}}}}"#,
                layer.diff_id()
            )
        );
        let manifest = String::from_utf8(image.oci_manifest().bytes.to_vec()).unwrap();
        assert!(manifest.contains(media_type::OCI_LAYER_GZIP), "{manifest}");
    }

    #[test]
    fn shorter_config_forms_keep_what_their_readers_need() {
        let layer = Layer::from_tar(b"x".to_vec(), Compression::None);
        let spec = ImageSpec {
            platform: Platform::linux("amd64"),
            config: Config {
                entrypoint: Some(vec!["/pause".into()]),
                ..Config::default()
            },
            layers: vec![layer.clone()],
            created: 0,
            created_by: "test".into(),
            annotations: BTreeMap::new(),
        };
        let json = |form| String::from_utf8(spec.clone().build_as(form).config_blob().bytes.to_vec()).unwrap();
        let diff_id = layer.diff_id();
        assert_eq!(
            json(ConfigForm::Portable),
            format!(
                r#"{{"architecture":"amd64","config":{{"Entrypoint":["/pause"]}},"os":"linux","rootfs":{{"diff_ids":["{diff_id}"],"type":"layers"}}}}"#
            )
        );
        assert_eq!(
            json(ConfigForm::DockerOnly),
            format!(r#"{{"config":{{"Cmd":["/pause"]}},"rootfs":{{"diff_ids":["{diff_id}"]}}}}"#)
        );
    }
}
