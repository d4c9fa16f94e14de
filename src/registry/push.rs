//! Pushing: blobs first (skipped when the registry has them, mounted from another
//! repository when one is named, else uploaded: whole when small, in resumable chunks
//! when large), then each platform's manifest, then the tagged manifest or index, each
//! with the exact bytes whose digest the image was given.

use super::transport::{Failure, header, status_error, transient};
use super::{Event, Observer, Outcome, RegistryError, Repository, parallel};
use crate::digest::Digest;
use crate::image::{Blob, Descriptor, Image, ImageIndex, ManifestForm, index_json, media_type};
use std::sync::atomic::Ordering;
use ureq::http::Method;

/// What a push sends: blobs, the manifests of each platform, and the top object (the
/// one manifest, or an index over several) that the tag names.
pub struct Upload<'a> {
    blobs: Vec<(Digest, &'a [u8])>,
    manifests: Vec<(Blob, &'static str)>,
    top: (Blob, &'static str),
}

impl<'a> Upload<'a> {
    /// Each image's config and layers with its OCI manifest in `form`; an OCI index over
    /// them when there are several platforms.
    pub fn of_index(index: &'a ImageIndex, form: ManifestForm) -> Self {
        let images: Vec<(&Image, Blob)> = index
            .images()
            .iter()
            .map(|image| (image, image.oci_manifest_as(form)))
            .collect();
        Self::of_manifests(
            images
                .into_iter()
                .map(|(image, manifest)| (image, manifest, media_type::OCI_MANIFEST))
                .collect(),
        )
    }

    /// Images with the manifests they came with (exact bytes, digest kept), or their
    /// OCI manifest when they had none.
    pub fn of_manifests(images: Vec<(&'a Image, Blob, &'static str)>) -> Self {
        let mut blobs: Vec<(Digest, &'a [u8])> = Vec::new();
        for (image, _, _) in &images {
            let config = image.config_blob();
            let layers = image.layers().iter().map(|layer| (layer.digest(), layer.blob()));
            for (digest, bytes) in std::iter::once((config.digest, &config.bytes[..])).chain(layers) {
                if !blobs.iter().any(|(known, _)| *known == digest) {
                    blobs.push((digest, bytes));
                }
            }
        }
        if let [(_, manifest, media_type)] = &images[..] {
            return Self {
                blobs,
                manifests: Vec::new(),
                top: (manifest.clone(), media_type),
            };
        }
        let descriptors = images
            .iter()
            .map(|(image, manifest, media_type)| {
                let mut descriptor = Descriptor::of(media_type, manifest.digest, manifest.bytes.len() as u64);
                descriptor.platform = Some(image.platform().into());
                descriptor
            })
            .collect();
        Self {
            blobs,
            manifests: images
                .into_iter()
                .map(|(_, manifest, media_type)| (manifest, media_type))
                .collect(),
            top: (Blob::new(index_json(descriptors)), media_type::OCI_INDEX),
        }
    }

    /// Tags `index` (exact bytes, listing exactly these images' manifests) instead of
    /// the index speck would make, or of the lone manifest: a copy keeps its digest.
    pub fn under_index(self, index: Blob, media_type: &'static str) -> Self {
        let mut manifests = self.manifests;
        if manifests.is_empty() {
            manifests.push(self.top);
        }
        Self {
            blobs: self.blobs,
            manifests,
            top: (index, media_type),
        }
    }

    /// The digest the tag will name: of the manifest, or of the index.
    pub fn digest(&self) -> Digest {
        self.top.0.digest
    }

    /// Bytes of every blob and manifest.
    pub fn bytes(&self) -> u64 {
        let blobs: u64 = self.blobs.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        let manifests: u64 = self.manifests.iter().map(|(blob, _)| blob.bytes.len() as u64).sum();
        blobs + manifests + self.top.0.bytes.len() as u64
    }
}

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Pushed {
    /// The digest of the tagged manifest or index.
    pub digest: String,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub existed: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blob bytes sent (re-sent bytes after failures included).
    pub bytes_sent: u64,
}

impl Repository {
    /// Pushes `upload` and tags it `tag` (or names it by digest alone when `None`);
    /// `mount_from` is a repository of the same registry that may hold the blobs.
    pub fn push(
        &self,
        upload: &Upload,
        tag: Option<&str>,
        mount_from: Option<&str>,
        observe: Observer,
    ) -> Result<Pushed, RegistryError> {
        let outcomes = parallel(self.options.jobs, &upload.blobs, |(digest, bytes)| {
            let outcome = self.push_blob(*digest, bytes, mount_from, observe)?;
            observe(Event::Finished {
                digest: *digest,
                outcome,
            });
            Ok(outcome)
        })?;
        for (manifest, media_type) in &upload.manifests {
            self.put_manifest(manifest, media_type, &manifest.digest.to_string())?;
        }
        let (top, media_type) = &upload.top;
        self.put_manifest(top, media_type, tag.unwrap_or(&top.digest.to_string()))?;
        let count = |wanted: Outcome| outcomes.iter().filter(|outcome| **outcome == wanted).count();
        Ok(Pushed {
            digest: top.digest.to_string(),
            uploaded: count(Outcome::Uploaded),
            existed: count(Outcome::Existed),
            mounted: count(Outcome::Mounted),
            bytes_sent: self.traffic().sent.load(Ordering::Relaxed),
        })
    }

    /// Sends one blob unless the registry has it or can mount it; says which happened.
    fn push_blob(
        &self,
        digest: Digest,
        bytes: &[u8],
        mount_from: Option<&str>,
        observe: Observer,
    ) -> Result<Outcome, RegistryError> {
        let url = self.api(&format!("blobs/{digest}"));
        let reply = self.transport.send(Method::HEAD, &url, &[], &[])?;
        if reply.status() == 200 {
            return Ok(Outcome::Existed);
        }
        if reply.status() != 404 {
            return Err(status_error(&format!("HEAD {url}"), reply));
        }
        observe(Event::Started {
            digest,
            size: bytes.len() as u64,
        });
        let mut session = None;
        if let Some(from) = mount_from {
            let mount = self.api(&format!("blobs/uploads/?mount={digest}&from={from}"));
            let reply = self.transport.send(Method::POST, &mount, &[], &[])?;
            match reply.status().as_u16() {
                201 => return Ok(Outcome::Mounted),
                // A registry that cannot mount starts an upload instead, as the spec
                // allows: use it.
                202 => session = header(&reply, "location").map(|location| self.transport.url(&location)),
                _ => return Err(status_error(&format!("POST {mount}"), reply)),
            }
        }
        if bytes.len() <= self.options.chunk_size {
            self.upload_whole(session, digest, bytes, observe)?;
        } else {
            self.upload_chunks(session, digest, bytes, observe)?;
        }
        Ok(Outcome::Uploaded)
    }

    /// Starts an upload session; its location.
    fn start_upload(&self) -> Result<String, Failure> {
        let url = self.api("blobs/uploads/");
        let reply = self.transport.attempt(&Method::POST, &url, &[], &[], None)?;
        if reply.status() != 202 {
            return Err(Failure::fatal(status_error(&format!("POST {url}"), reply)));
        }
        header(&reply, "location")
            .map(|location| self.transport.url(&location))
            .ok_or_else(|| {
                Failure::fatal(RegistryError::Status {
                    what: format!("POST {url}"),
                    status: 202,
                    message: "the registry gave no upload location".into(),
                })
            })
    }

    /// One PUT with the whole blob into `session` (or a new one); a failure starts over.
    fn upload_whole(
        &self,
        mut session: Option<String>,
        digest: Digest,
        bytes: &[u8],
        observe: Observer,
    ) -> Result<(), RegistryError> {
        self.transport.with_retries(&format!("upload of {digest}"), || {
            let location = match session.take() {
                Some(location) => location,
                None => self.start_upload()?,
            };
            let progress = |done: u64| observe(Event::Progressed { digest, done });
            self.finish_upload(&location, digest, bytes, &progress)
        })
    }

    /// `PUT location?digest=` with the last bytes (or none).
    fn finish_upload(
        &self,
        location: &str,
        digest: Digest,
        bytes: &[u8],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), Failure> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", digest.to_string().replace(':', "%3A"));
        let headers = [("content-type", "application/octet-stream")];
        let reply = self
            .transport
            .attempt(&Method::PUT, &url, &headers, bytes, Some(progress))?;
        if reply.status() == 201 {
            Ok(())
        } else {
            let status = reply.status().as_u16();
            let error = status_error(&format!("PUT {url}"), reply);
            // BLOB_UPLOAD_INVALID / UNKNOWN after a broken session: start over.
            Err(if status == 404 || transient(status) {
                Failure::transient(error)
            } else {
                Failure::fatal(error)
            })
        }
    }

    /// PATCH chunk after chunk, then PUT. After a failure, asks the registry how much it
    /// has (`GET` on the session gives `Range`) and resumes there; when the session is
    /// gone, starts a new one. A registry whose `Range` stops advancing (ECR has been seen
    /// to drop every chunk after the first) gets the rest in one PATCH.
    fn upload_chunks(
        &self,
        session: Option<String>,
        digest: Digest,
        bytes: &[u8],
        observe: Observer,
    ) -> Result<(), RegistryError> {
        let what = format!("upload of {digest}");
        let mut location = match session {
            Some(location) => location,
            None => self.transport.with_retries(&what, || self.start_upload())?,
        };
        let mut offset = 0usize;
        let mut whole_rest = false;
        let mut failures = 0;
        while offset < bytes.len() {
            let end = if whole_rest {
                bytes.len()
            } else {
                (offset + self.options.chunk_size).min(bytes.len())
            };
            let range = format!("{offset}-{}", end - 1);
            let headers = [
                ("content-type", "application/octet-stream"),
                ("content-range", range.as_str()),
            ];
            let base = offset as u64;
            let progress = |done: u64| {
                observe(Event::Progressed {
                    digest,
                    done: base + done,
                })
            };
            let attempt = self.transport.attempt(
                &Method::PATCH,
                &location,
                &headers,
                &bytes[offset..end],
                Some(&progress),
            );
            let failure = match attempt {
                Ok(reply) if matches!(reply.status().as_u16(), 201 | 202) => {
                    let received = header(&reply, "range").and_then(|range| range_end(&range));
                    if let Some(next) = header(&reply, "location") {
                        location = self.transport.url(&next);
                    }
                    let received = received.unwrap_or(end);
                    if received < end {
                        if whole_rest {
                            return Err(RegistryError::Status {
                                what: format!("PATCH {location}"),
                                status: reply.status().as_u16(),
                                message: format!("the registry kept {received} of {end} bytes"),
                            });
                        }
                        whole_rest = true;
                    }
                    offset = received;
                    failures = 0;
                    continue;
                }
                Ok(reply) if reply.status() == 416 => {
                    Failure::transient(status_error(&format!("PATCH {location}"), reply))
                }
                Ok(reply) => Failure::fatal(status_error(&format!("PATCH {location}"), reply)),
                Err(failure) => failure,
            };
            if !failure.transient {
                return Err(failure.error);
            }
            failures += 1;
            if failures >= self.transport.retry.attempts {
                return Err(RegistryError::GaveUp {
                    what,
                    attempts: failures,
                    last: Box::new(failure.error),
                });
            }
            self.transport.traffic.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(self.transport.retry.delay(failures, failure.retry_after));
            match self.upload_status(&location) {
                Some((next, received)) => (location, offset) = (next, received.min(bytes.len())),
                None => {
                    location = self.transport.with_retries(&what, || self.start_upload())?;
                    offset = 0;
                }
            }
        }
        let progress = |_| ();
        self.transport
            .with_retries(&what, || self.finish_upload(&location, digest, &[], &progress))
    }

    /// How much of an upload session the registry holds (`Range` of `GET location`), and
    /// the session's next location; `None` when it cannot say.
    fn upload_status(&self, location: &str) -> Option<(String, usize)> {
        let reply = self.transport.attempt(&Method::GET, location, &[], &[], None).ok()?;
        if reply.status() != 204 {
            return None;
        }
        let received = header(&reply, "range").map_or(Some(0), |range| range_end(&range))?;
        let next = header(&reply, "location").map_or_else(|| location.to_owned(), |next| self.transport.url(&next));
        Some((next, received))
    }

    /// PUTs a manifest or index under `name` (a tag or its digest) and checks the digest
    /// the registry computed, when it says one.
    fn put_manifest(&self, manifest: &Blob, media_type: &str, name: &str) -> Result<(), RegistryError> {
        let url = self.api(&format!("manifests/{name}"));
        let reply = self
            .transport
            .send(Method::PUT, &url, &[("content-type", media_type)], &manifest.bytes)?;
        if reply.status() != 201 {
            return Err(status_error(&format!("PUT {url}"), reply));
        }
        if let Some(said) = header(&reply, "docker-content-digest")
            && said != manifest.digest.to_string()
        {
            return Err(RegistryError::Mismatch {
                registry: self.registry().to_owned(),
                what: format!("the manifest stored as {name}"),
                expected: manifest.digest.to_string(),
                actual: said,
            });
        }
        Ok(())
    }
}

/// The number of bytes a `Range: 0-N` header says were received: N + 1, except that
/// distribution writes `0-0` for an empty session (taken as 0: one byte re-sent at worst).
/// `bytes=0-N` is accepted too.
fn range_end(range: &str) -> Option<usize> {
    let (_, last) = range.trim().trim_start_matches("bytes=").split_once('-')?;
    let last = last.trim().parse::<usize>().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_count_received_bytes() {
        assert_eq!(super::range_end("0-1023"), Some(1024));
        assert_eq!(super::range_end("bytes=0-1"), Some(2));
        assert_eq!(super::range_end("0-0"), Some(0));
        assert_eq!(super::range_end("nonsense"), None);
    }
}
