//! Registries: push and pull over the OCI distribution API, without a daemon.
//!
//! [`Repository::connect`] opens one repository with credentials found as Docker finds
//! them ([`credentials`]); [`push`] sends an image's blobs (skipping those the registry
//! has, mounting across repositories, uploading small ones whole and large ones in
//! resumable chunks) then its manifests with the exact bytes that were hashed; [`pull`]
//! fetches manifests and blobs, verifying every digest and size, into [`crate::image`]
//! values. Every request goes through `transport`, which retries what may succeed on
//! another attempt (408, 429 with `Retry-After`, 499, 5xx, resets, timeouts), never a
//! digest mismatch nor a registry that cannot be reached, and speaks TLS with what `tls`
//! trusts.
//!
//! Owns the wire protocol; does not write files or know output formats.

pub mod credentials;
pub mod pull;
pub mod push;
mod tls;
mod transport;

pub use credentials::{Credentials, Store};
pub use transport::{Retry, Traffic};

use crate::digest::Digest;
use crate::image::Reference;
use std::sync::atomic::{AtomicUsize, Ordering};
use transport::Transport;

/// What went wrong talking to a registry; each names the request or the blob.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The connection failed (after retries, see [`RegistryError::GaveUp`]).
    #[error("{what}: {source}")]
    Http {
        /// The request.
        what: String,
        /// Why.
        source: Box<ureq::Error>,
    },
    /// The registry cannot be reached: its name, nothing listening, or TLS. Not retried.
    #[error("cannot reach the registry {registry} at {origin}: {reason}")]
    Unreachable {
        /// The registry as the reference names it.
        registry: String,
        /// The scheme and host tried (`https://host:port`).
        origin: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A certificate file for TLS cannot be used.
    #[error("{}: {reason}", path.display())]
    Certificates {
        /// The file or `certs.d` directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A request could not be made, or its answer not read.
    #[error("{0}: {1}")]
    Request(String, String),
    /// Every attempt failed with something that may be transient.
    #[error("{what}: gave up after {attempts} attempts; the last failure: {last}")]
    GaveUp {
        /// The request.
        what: String,
        /// How many were made.
        attempts: u32,
        /// The last failure.
        last: Box<RegistryError>,
    },
    /// The registry answered with an unexpected status.
    #[error("{what}: {message}")]
    Status {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's words.
        message: String,
    },
    /// Authentication failed or is needed.
    #[error("{registry}: {reason}")]
    Auth {
        /// The registry.
        registry: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Content did not match its digest or size: never retried.
    #[error(
        "{what} from {registry} does not match its descriptor: expected {expected}, got {actual}; nothing was written"
    )]
    Mismatch {
        /// The registry.
        registry: String,
        /// Which blob or manifest.
        what: String,
        /// The digest or size expected.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// A manifest or index speck cannot use.
    #[error("{reference}: {reason}")]
    Manifest {
        /// The image.
        reference: String,
        /// Why.
        reason: String,
    },
    /// Credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    /// A pulled image is inconsistent (layer count, diff_ids).
    #[error("{0}: {1}")]
    Image(String, crate::image::ImageReadError),
    /// A pulled layer cannot be read.
    #[error("{0}: {1}")]
    Layer(String, crate::layer::LayerReadError),
}

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct Options {
    /// Insecure, as Docker says, for registries other than loopback ones (which always
    /// are): HTTPS without verifying the certificate, or plain HTTP if not HTTPS.
    pub insecure: bool,
    /// Credentials to use instead of those in the Docker and podman files.
    pub credentials: Option<Credentials>,
    /// Retries per request.
    pub retry: Retry,
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Blobs up to this size are uploaded in one request; larger ones in chunks of this
    /// size, each resumable.
    pub chunk_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            insecure: false,
            credentials: None,
            retry: Retry::default(),
            jobs: 4,
            chunk_size: 16 << 20,
        }
    }
}

/// How a blob transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent to the registry.
    Uploaded,
    /// The registry had it already.
    Existed,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Fetched from the registry.
    Downloaded,
}

/// What a transfer is doing, for progress displays.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A blob transfer begins.
    Started {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of the blob done so far (it may go back after a failed chunk).
    Progressed {
        /// The blob.
        digest: Digest,
        /// Bytes done.
        done: u64,
    },
    /// The blob is done.
    Finished {
        /// The blob.
        digest: Digest,
        /// How.
        outcome: Outcome,
    },
}

/// Receives [`Event`]s, from several threads.
pub type Observer<'a> = &'a (dyn Fn(Event) + Sync);

/// An observer that ignores everything.
pub fn quiet(_: Event) {}

/// One repository of one registry, authenticated for what will be done there.
pub struct Repository {
    transport: Transport,
    /// The repository path (`library/alpine`).
    pub name: String,
    options: Options,
}

impl Repository {
    /// Opens `reference`'s repository for pulling, or for pushing too when `push`;
    /// `mount_from` names repositories of the same registry to mount blobs from.
    /// Credentials: `options.credentials`, else Docker's and podman's files.
    pub fn connect(
        reference: &Reference,
        push: bool,
        mount_from: &[String],
        options: &Options,
    ) -> Result<Self, RegistryError> {
        let credentials = match &options.credentials {
            Some(credentials) => Some(credentials.clone()),
            None => Store::from_env()
                .get(&reference.registry)?
                .map(|(credentials, _)| credentials),
        };
        let actions = if push { "pull,push" } else { "pull" };
        let mut scopes = vec![format!("repository:{}:{actions}", reference.repository)];
        scopes.extend(mount_from.iter().map(|from| format!("repository:{from}:pull")));
        Ok(Self {
            transport: Transport::new(
                &reference.registry,
                options.insecure,
                credentials,
                scopes,
                options.retry,
            )?,
            name: reference.repository.clone(),
            options: options.clone(),
        })
    }

    /// What went over the wire so far.
    pub fn traffic(&self) -> &Traffic {
        &self.transport.traffic
    }

    /// The registry's host as named.
    pub fn registry(&self) -> &str {
        &self.transport.registry
    }

    /// `/v2/NAME/SUFFIX` as an absolute URL.
    fn api(&self, suffix: &str) -> String {
        self.transport.url(&format!("/v2/{}/{suffix}", self.name))
    }
}

/// Checks that `registry` answers and accepts `options.credentials` (what `docker login`
/// does): `GET /v2/` through the authentication handshake, asking for no repository.
pub fn check_login(registry: &str, options: &Options) -> Result<(), RegistryError> {
    let transport = Transport::new(
        registry,
        options.insecure,
        options.credentials.clone(),
        Vec::new(),
        options.retry,
    )?;
    let url = transport.url("/v2/");
    let reply = transport.send(ureq::http::Method::GET, &url, &[], &[])?;
    if reply.status().is_success() {
        Ok(())
    } else {
        Err(transport::status_error(&format!("GET {url}"), reply))
    }
}

/// Runs `work` on every item with up to `jobs` threads; the first error wins.
fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    work: impl Fn(&T) -> Result<R, RegistryError> + Sync,
) -> Result<Vec<R>, RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<std::sync::Mutex<Option<Result<R, RegistryError>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(at) else { break };
                    let result = work(item);
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    *results[at].lock().expect("never poisoned") = Some(result);
                }
            });
        }
    });
    let mut done = Vec::with_capacity(items.len());
    for result in results {
        match result.into_inner().expect("never poisoned") {
            Some(result) => done.push(result?),
            None => continue,
        }
    }
    Ok(done)
}
