//! Pulling: the manifest or index a tag or digest names, the platforms asked for, then
//! every config and layer, each checked against its descriptor's size and digest as it
//! streams in (an interrupted download resumes with a `Range` request), and each layer
//! against the config's `rootfs.diff_ids`.

use super::transport::{Failure, error_message, header, status_error};
use super::{Event, Observer, Outcome, RegistryError, Repository, parallel};
use crate::digest::Digest;
use crate::image::document::{Described, Document};
use crate::image::media_type::{self, DOCKER_LIST, DOCKER_MANIFEST};
use crate::image::{Blob, Image, Platform, Reference, StoredIndex};
use crate::layer::{Entry, Inflating, Layer};
use sha2::Digest as _;
use std::io::Read as _;
use std::sync::atomic::Ordering;
use ureq::http::Method;

/// The most bytes a manifest or index may have (registries cap them at 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// The most bytes one layer may inflate to.
const INFLATE_LIMIT: u64 = 64 << 30;

/// One platform's image as pulled.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// Config and layers, exact bytes.
    pub image: Image,
    /// Its manifest, exact bytes.
    pub manifest: Blob,
    /// The manifest's media type.
    pub media_type: &'static str,
    /// Each layer's entries, when asked for.
    pub entries: Vec<Vec<Entry>>,
}

/// What a pull fetched.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The digest of what the reference names (manifest or index).
    pub digest: Digest,
    /// The images of the platforms asked for.
    pub images: Vec<PulledImage>,
    /// The index the reference names, exact bytes, with its media type, when every
    /// image it lists was pulled: pushed elsewhere, it keeps its digest.
    pub index: Option<StoredIndex>,
}

/// Which platforms to take from an index.
#[derive(Clone, Debug)]
pub enum Platforms {
    /// Every platform the index lists.
    All,
    /// Those matching one of these (the host's by default).
    These(Vec<Platform>),
}

impl Repository {
    /// Pulls what `reference` names (its digest if it has one, else its tag), keeping
    /// the platforms asked for from an index; reads each layer's entries when
    /// `with_entries`.
    pub fn pull(
        &self,
        reference: &Reference,
        platforms: &Platforms,
        with_entries: bool,
        observe: Observer,
    ) -> Result<Pulled, RegistryError> {
        let name = reference
            .digest
            .clone()
            .unwrap_or_else(|| reference.tag_or_latest().to_owned());
        let (top, media_type, document) = self.manifest(&name, reference.digest.as_deref())?;
        let mut index = None;
        let manifests: Vec<(Blob, &'static str, Document)> = match document.manifests {
            Some(listed) => {
                let chosen: Vec<&Described> = listed.iter().filter(|d| wanted(d, platforms)).collect();
                if chosen.len() == listed.len() {
                    index = Some((top.clone(), media_type));
                }
                if chosen.is_empty() {
                    return Err(RegistryError::Manifest {
                        reference: reference.to_string(),
                        reason: format!(
                            "no image for {} in its index, which lists {}",
                            describe(platforms),
                            listed
                                .iter()
                                .filter_map(|d| d.platform.as_ref())
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                chosen
                    .into_iter()
                    .map(|descriptor| self.manifest(&descriptor.digest, Some(&descriptor.digest)))
                    .collect::<Result<_, _>>()?
            }
            None => vec![(top.clone(), media_type, document)],
        };
        let mut images = Vec::new();
        for (manifest, media_type, document) in manifests {
            if document.manifests.is_some() {
                return Err(RegistryError::Manifest {
                    reference: reference.to_string(),
                    reason: "an index inside an index is not supported".into(),
                });
            }
            images.push(self.image(reference, manifest, media_type, document, with_entries, observe)?);
        }
        Ok(Pulled {
            digest: top.digest,
            images,
            index,
        })
    }

    /// Fetches a manifest or index by tag or digest, checked against `expected` (and
    /// against the digest the registry says, when it says one).
    fn manifest(&self, name: &str, expected: Option<&str>) -> Result<(Blob, &'static str, Document), RegistryError> {
        let url = self.api(&format!("manifests/{name}"));
        let accept = [
            media_type::OCI_INDEX,
            media_type::OCI_MANIFEST,
            DOCKER_LIST,
            DOCKER_MANIFEST,
        ]
        .join(", ");
        let what = format!("GET {url}");
        let (bytes, said) = self.transport.with_retries(&what, || {
            let mut reply = self
                .transport
                .attempt(&Method::GET, &url, &[("accept", &accept)], &[], None)?;
            if reply.status() == 404 {
                let named = if name.contains(':') { "digest" } else { "tag" };
                let reason = format!(
                    "the registry has no such image ({}); check the repository and the {named}",
                    error_message(reply)
                );
                return Err(Failure::fatal(self.manifest_problem(name, &reason)));
            }
            if reply.status() != 200 {
                return Err(Failure::fatal(status_error(&what, reply)));
            }
            let said = header(&reply, "docker-content-digest");
            let mut bytes = Vec::new();
            reply
                .body_mut()
                .as_reader()
                .take(MANIFEST_LIMIT + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::transient(RegistryError::Request(what.clone(), e.to_string())))?;
            Ok((bytes, said))
        })?;
        self.traffic().received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if bytes.len() as u64 > MANIFEST_LIMIT {
            return Err(self.manifest_problem(name, "it is larger than 4 MiB"));
        }
        let blob = Blob::new(bytes);
        for expected in [expected.map(str::to_owned), said].into_iter().flatten() {
            if expected != blob.digest.to_string() {
                return Err(RegistryError::Mismatch {
                    registry: self.registry().to_owned(),
                    what: format!("the manifest {name}"),
                    expected,
                    actual: blob.digest.to_string(),
                });
            }
        }
        let document: Document = serde_json::from_slice(&blob.bytes)
            .map_err(|e| self.manifest_problem(name, &format!("it is not a manifest or index: {e}")))?;
        if document.schema_version != 2 {
            return Err(self.manifest_problem(
                name,
                "it is a schema 1 manifest (deprecated); speck reads Docker schema 2 and OCI",
            ));
        }
        let media_type = document.kind();
        Ok((blob, media_type, document))
    }

    /// A problem with the manifest `name` (a tag, or a digest).
    fn manifest_problem(&self, name: &str, reason: &str) -> RegistryError {
        let separator = if name.contains(':') { '@' } else { ':' };
        RegistryError::Manifest {
            reference: format!("{}/{}{separator}{name}", self.registry(), self.name),
            reason: reason.to_owned(),
        }
    }

    /// Fetches one manifest's config and layers and checks them against each other.
    fn image(
        &self,
        reference: &Reference,
        manifest: Blob,
        media_type: &'static str,
        document: Document,
        with_entries: bool,
        observe: Observer,
    ) -> Result<PulledImage, RegistryError> {
        let config = document
            .config
            .ok_or_else(|| self.manifest_problem(&manifest.digest.to_string(), "the manifest has no config"))?;
        let config_blob = Blob::new(self.fetch_blob(&config, false, observe)?.0);
        // Each layer is fetched and inflated (for its diff_id) on a worker of its own.
        let read = parallel(self.options.jobs, &document.layers, |descriptor| {
            let (blob, digest, inflating) = self.fetch_blob(descriptor, true, observe)?;
            let name = format!("layer {} of {reference}", descriptor.digest);
            let layer = inflating
                .expect("layers are inflated as they arrive")
                .finish(blob, digest)
                .map_err(|e| RegistryError::Layer(name.clone(), e))?;
            let entries = if with_entries {
                let tar = layer
                    .tar(INFLATE_LIMIT)
                    .map_err(|e| RegistryError::Layer(name.clone(), e))?;
                crate::layer::tar::read(&tar).map_err(|e| RegistryError::Manifest {
                    reference: name,
                    reason: e.to_string(),
                })?
            } else {
                Vec::new()
            };
            Ok((layer, entries))
        })?;
        let (layers, entries): (Vec<Layer>, Vec<Vec<Entry>>) = read.into_iter().unzip();
        let entries = if with_entries { entries } else { Vec::new() };
        let image =
            Image::from_config_blob(config_blob, layers).map_err(|e| RegistryError::Image(reference.to_string(), e))?;
        Ok(PulledImage {
            image,
            manifest,
            media_type,
            entries,
        })
    }

    /// Downloads a blob, hashing and counting as it streams; an interrupted download
    /// resumes where it stopped (`Range`), and a blob that is longer than its descriptor
    /// says is cut off and refused.
    /// A layer (`inflate`) is inflated as it arrives, to hash its tar: the returned
    /// `Inflating` only needs finishing.
    fn fetch_blob(
        &self,
        descriptor: &Described,
        inflate: bool,
        observe: Observer,
    ) -> Result<(Vec<u8>, Digest, Option<Inflating>), RegistryError> {
        let expected: Digest = descriptor.digest.parse().map_err(|_| {
            self.manifest_problem(
                &descriptor.digest,
                "a descriptor's digest is not sha256:<64 hex digits>",
            )
        })?;
        let size = descriptor.size;
        let url = self.api(&format!("blobs/{expected}"));
        let what = format!("GET {url}");
        observe(Event::Started { digest: expected, size });
        let mut bytes: Vec<u8> = Vec::with_capacity(size.min(1 << 30) as usize);
        let mut hasher = sha2::Sha256::new();
        let mut inflating = inflate.then(|| Inflating::new(INFLATE_LIMIT));
        let mut broken = None;
        self.transport.with_retries(&what, || {
            let range = format!("bytes={}-", bytes.len());
            let headers: &[(&str, &str)] = if bytes.is_empty() { &[] } else { &[("range", &range)] };
            let mut reply = self.transport.attempt(&Method::GET, &url, headers, &[], None)?;
            match reply.status().as_u16() {
                200 => {
                    bytes.clear();
                    hasher = sha2::Sha256::new();
                    inflating = inflate.then(|| Inflating::new(INFLATE_LIMIT));
                    broken = None;
                }
                206 if !bytes.is_empty() => {}
                _ => return Err(Failure::fatal(status_error(&what, reply))),
            }
            let mut reader = reply.body_mut().as_reader().take(size + 1 - bytes.len() as u64);
            loop {
                // Read straight into the blob (no copy through a buffer); what arrived
                // before an error is kept, hashed, and resumed after.
                let start = bytes.len();
                let read = (&mut reader).take(256 << 10).read_to_end(&mut bytes);
                let arrived = &bytes[start..];
                hasher.update(arrived);
                // Bytes that do not inflate are reported once the digest is known to
                // match: a tampered blob is named as such.
                if let Some(Err(e)) = inflating.as_mut().map(|inflating| inflating.update(arrived)) {
                    inflating = None;
                    broken = Some(e);
                }
                self.traffic()
                    .received
                    .fetch_add(arrived.len() as u64, Ordering::Relaxed);
                observe(Event::Progressed {
                    digest: expected,
                    done: bytes.len() as u64,
                });
                match read {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(Failure::transient(RegistryError::Request(what.clone(), e.to_string()))),
                }
            }
        })?;
        let mismatch = |expected: String, actual: String| RegistryError::Mismatch {
            registry: self.registry().to_owned(),
            what: format!("blob {}", descriptor.digest),
            expected,
            actual,
        };
        if bytes.len() as u64 != size {
            let actual = if bytes.len() as u64 > size {
                "more".to_owned()
            } else {
                bytes.len().to_string()
            };
            return Err(mismatch(format!("{size} bytes"), format!("{actual} bytes")));
        }
        let actual = Digest::from_bytes(hasher.finalize().into());
        if actual != expected {
            return Err(mismatch(expected.to_string(), actual.to_string()));
        }
        if let Some(e) = broken {
            return Err(RegistryError::Layer(format!("layer {}", descriptor.digest), e));
        }
        observe(Event::Finished {
            digest: expected,
            outcome: Outcome::Downloaded,
        });
        Ok((bytes, actual, inflating))
    }
}

/// Whether an index entry is wanted: attestation manifests (platform unknown/unknown)
/// never are.
fn wanted(descriptor: &Described, platforms: &Platforms) -> bool {
    let Some(platform) = &descriptor.platform else {
        return matches!(platforms, Platforms::All) && !descriptor.is_index();
    };
    if platform.os == "unknown" {
        return false;
    }
    match platforms {
        Platforms::All => true,
        Platforms::These(these) => these.iter().any(|p| platform.matches(p)),
    }
}

fn describe(platforms: &Platforms) -> String {
    match platforms {
        Platforms::All => "any platform".into(),
        Platforms::These(these) => these.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    }
}
