//! HTTP to one registry repository: the scheme and API host, retries with backoff, and the
//! authentication handshake (anonymous, Basic, Bearer token from the registry's
//! `WWW-Authenticate` challenge, with the repository's scope).
//!
//! The scheme is Docker's: HTTPS, verified (see `tls`); for an insecure registry (one on
//! this machine, or `--insecure`) HTTPS without verification when the registry speaks
//! it, else plain HTTP. A registry that cannot be reached (no such name, nothing
//! listening, a certificate not trusted) fails at once, with what to do.
//!
//! Owns every request speck sends to a registry; knows nothing of manifests or blobs.

use super::RegistryError;
use super::credentials::Credentials;
use base64::Engine as _;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;
use ureq::http::{self, Method, Response};

/// A response whose body has not been read yet.
pub(crate) type Reply = Response<ureq::Body>;

/// How hard to try before giving up on a request.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts per request (the first one included).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub first_delay: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait before attempt `attempt + 1` (`attempt` counts from 1), or the server's
    /// `Retry-After` when it said one, both capped.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.first_delay.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// Whether a status means "try again": timeouts, rate limits, client-closed and server
/// errors other than "not implemented".
pub(crate) fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 499) || (500..=599).contains(&status) && !matches!(status, 501 | 505)
}

/// One failed attempt: what went wrong, whether another attempt may succeed, and how long
/// the server asked us to wait.
pub(crate) struct Failure {
    pub error: RegistryError,
    pub transient: bool,
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure that another attempt cannot fix.
    pub fn fatal(error: RegistryError) -> Self {
        Self {
            error,
            transient: false,
            retry_after: None,
        }
    }

    /// A failure another attempt may not meet (a dropped connection, a timeout).
    pub fn transient(error: RegistryError) -> Self {
        Self {
            error,
            transient: true,
            retry_after: None,
        }
    }
}

/// Counters of what went over the wire.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests sent, retries included.
    pub requests: AtomicU64,
    /// Attempts that failed and were repeated.
    pub retries: AtomicU64,
    /// Request body bytes sent (blob and manifest uploads).
    pub sent: AtomicU64,
    /// Response body bytes received (blob and manifest downloads).
    pub received: AtomicU64,
}

/// The client side of one registry repository.
pub(crate) struct Transport {
    agent: ureq::Agent,
    /// The registry as the reference names it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// `host[:port]` of its API.
    host: String,
    /// Whether it is insecure, as Docker says: HTTPS unverified, or plain HTTP.
    insecure: bool,
    /// `scheme://host[:port]` of its API, once known (see [`Transport::base`]).
    base: OnceLock<String>,
    credentials: Option<Credentials>,
    /// `repository:NAME:pull[,push]` (and any other repository mounted from).
    scopes: Vec<String>,
    /// The `Authorization` header value in use, once the handshake has run.
    authorization: RwLock<Option<String>>,
    pub retry: Retry,
    pub traffic: Traffic,
}

/// Why `registry` cannot be reached, if `error` says it cannot: its name does not
/// resolve (a temporary DNS failure aside), nothing listens, or TLS fails. Docker and
/// crane do not retry these either.
fn unreachable(error: &ureq::Error, registry: &str) -> Option<String> {
    let ureq::Error::Io(io) = error else {
        return matches!(error, ureq::Error::HostNotFound).then(|| "its name does not resolve".to_owned());
    };
    let text = io.to_string();
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => Some(format!(
            "nothing listens there ({io}); is the registry running, and on that port?"
        )),
        std::io::ErrorKind::InvalidData => super::tls::explain(io, registry),
        _ if text.contains("failed to lookup address") && !text.contains("Temporary failure") => Some(format!(
            "its name does not resolve ({io}); check the reference's registry part"
        )),
        _ => None,
    }
}

/// Whether a registry is on this machine, which Docker treats as insecure.
pub(crate) fn loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            host
        } else {
            registry
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Transport {
    /// A transport for `registry`, asking for `scopes`; insecure on loopback or when
    /// `insecure`. Docker Hub's API lives at `registry-1.docker.io`. Fails when a
    /// certificate file the registry's TLS needs cannot be read.
    pub fn new(
        registry: &str,
        insecure: bool,
        credentials: Option<Credentials>,
        scopes: Vec<String>,
        retry: Retry,
    ) -> Result<Self, RegistryError> {
        let insecure = insecure || loopback(registry);
        let host = if registry == crate::image::reference::DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            registry
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("speck/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(8)
            .tls_config(super::tls::config(registry, !insecure)?)
            .build()
            .new_agent();
        Ok(Self {
            agent,
            registry: registry.to_owned(),
            host: host.to_owned(),
            insecure,
            base: OnceLock::new(),
            credentials,
            scopes,
            authorization: RwLock::new(None),
            retry,
            traffic: Traffic::default(),
        })
    }

    /// `scheme://host[:port]` of the API: HTTPS, unless the registry is insecure and
    /// does not answer HTTPS (asked once, with `GET /v2/`, as Docker pings it).
    fn base(&self) -> &str {
        self.base.get_or_init(|| {
            let https = format!("https://{}", self.host);
            let answers = || {
                self.traffic.requests.fetch_add(1, Ordering::Relaxed);
                let Ok(ping) = http::Request::get(format!("{https}/v2/")).body(()) else {
                    return false;
                };
                // Docker's handshake timeout: a server that neither speaks TLS nor
                // answers the garbage it hears must not hold every command up.
                let ping = self
                    .agent
                    .configure_request(ping)
                    .timeout_global(Some(Duration::from_secs(10)));
                self.agent.run(ping.build()).is_ok()
            };
            if !self.insecure || answers() {
                https
            } else {
                format!("http://{}", self.host)
            }
        })
    }

    /// An absolute URL for an API path (`/v2/...`) or for a `Location` the registry gave
    /// (absolute, or relative to its host).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base())
        }
    }

    /// Sends a request, retrying transient failures with backoff, and authenticating when
    /// the registry challenges. Returns any response that is not transient, success or not.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, RegistryError> {
        self.with_retries(&format!("{method} {url}"), || {
            self.attempt(&method, url, headers, body, None)
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or has used every attempt.
    pub fn with_retries<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, RegistryError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Ok(value) => return Ok(value),
                Err(failure) if !failure.transient => return Err(failure.error),
                Err(failure) if tries >= self.retry.attempts => {
                    return Err(RegistryError::GaveUp {
                        what: what.to_owned(),
                        attempts: tries,
                        last: Box::new(failure.error),
                    });
                }
                Err(failure) => {
                    self.traffic.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(self.retry.delay(tries, failure.retry_after));
                }
            }
        }
    }

    /// One attempt (plus one re-send after an authentication challenge). A body is sent
    /// with its length; `progress` hears of every chunk written.
    pub fn attempt(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Reply, Failure> {
        let mut challenged = false;
        loop {
            let reply = self.request(method, url, headers, body, progress)?;
            if reply.status() == 401 && !challenged {
                challenged = true;
                let challenge = header(&reply, "www-authenticate").unwrap_or_default();
                self.authenticate(&challenge)?;
                continue;
            }
            if reply.status() == 401 {
                return Err(Failure::fatal(self.unauthorized(reply)));
            }
            if transient(reply.status().as_u16()) {
                let retry_after = header(&reply, "retry-after").map(|value| parse_retry_after(&value));
                let error = status_error(&format!("{method} {url}"), reply);
                return Err(Failure {
                    error,
                    transient: true,
                    retry_after,
                });
            }
            return Ok(reply);
        }
    }

    fn request(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<Reply, Failure> {
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let mut builder = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(authorization) = self.authorization.read().expect("never poisoned").as_deref() {
            builder = builder.header("authorization", authorization);
        }
        let sends_body = !body.is_empty() || matches!(*method, Method::PUT | Method::POST | Method::PATCH);
        let result = if sends_body {
            let mut reader = Counting {
                bytes: body,
                progress,
                traffic: &self.traffic,
            };
            let request = builder
                .header("content-length", body.len())
                .body(ureq::SendBody::from_reader(&mut reader))
                .map_err(|e| Failure::fatal(RegistryError::Request(url.to_owned(), e.to_string())))?;
            self.agent.run(request)
        } else {
            let request = builder
                .body(())
                .map_err(|e| Failure::fatal(RegistryError::Request(url.to_owned(), e.to_string())))?;
            self.agent.run(request)
        };
        result.map_err(|error| self.failure(method, url, error))
    }

    /// What a request that got no answer means: the registry cannot be reached (fatal),
    /// a request that cannot be made (fatal), or anything else, which another attempt
    /// may not meet (a reset, a timeout, a dropped connection).
    fn failure(&self, method: &Method, url: &str, error: ureq::Error) -> Failure {
        if let Some(reason) = unreachable(&error, &self.registry) {
            let origin = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            return Failure::fatal(RegistryError::Unreachable {
                registry: self.registry.clone(),
                origin,
                reason,
            });
        }
        let transient = !matches!(
            error,
            ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl
        );
        Failure {
            error: RegistryError::Http {
                what: format!("{method} {url}"),
                source: Box::new(error),
            },
            transient,
            retry_after: None,
        }
    }

    /// Answers a `WWW-Authenticate` challenge: Basic with the credentials, or a Bearer
    /// token from the realm it names, for this transport's scopes.
    fn authenticate(&self, challenge: &str) -> Result<(), Failure> {
        let Some((scheme, params)) = parse_challenge(challenge) else {
            return Err(Failure::fatal(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: format!("it asked for credentials with a challenge speck does not understand: {challenge:?}"),
            }));
        };
        let header = if scheme.eq_ignore_ascii_case("basic") {
            let credentials = self
                .credentials
                .as_ref()
                .ok_or_else(|| Failure::fatal(self.needs_login()))?;
            basic(credentials)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            format!("Bearer {}", self.token(&params)?)
        } else {
            return Err(Failure::fatal(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: format!("it asked for {scheme} authentication; speck speaks Basic and Bearer"),
            }));
        };
        *self.authorization.write().expect("never poisoned") = Some(header);
        Ok(())
    }

    /// Fetches a Bearer token: GET the realm with Basic credentials (or none), or, for an
    /// identity token (username `<token>`, as Docker stores OAuth refresh tokens), POST
    /// the refresh-token grant.
    fn token(&self, params: &[(String, String)]) -> Result<String, Failure> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let realm = param("realm").ok_or_else(|| {
            Failure::fatal(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: "its Bearer challenge names no realm".into(),
            })
        })?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        for scope in &self.scopes {
            query.push(("scope", scope));
        }
        let encode =
            |text: &str| percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
        let form: String = query
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let identity_token = self.credentials.as_ref().filter(|c| c.username == "<token>");
        let request = if let Some(identity) = identity_token {
            let body = format!(
                "grant_type=refresh_token&client_id=speck&refresh_token={}&{form}",
                encode(&identity.secret)
            );
            http::Request::post(realm)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.into_bytes())
        } else {
            let separator = if realm.contains('?') { '&' } else { '?' };
            let mut builder = http::Request::get(format!("{realm}{separator}{form}"));
            if let Some(credentials) = &self.credentials {
                builder = builder.header("authorization", basic(credentials));
            }
            builder.body(Vec::new())
        }
        .map_err(|e| Failure::fatal(RegistryError::Request(realm.to_owned(), e.to_string())))?;
        let what = format!("the token service {realm}");
        let mut reply = self.agent.run(request).map_err(|error| {
            Failure::transient(RegistryError::Http {
                what: what.clone(),
                source: Box::new(error),
            })
        })?;
        let status = reply.status().as_u16();
        if transient(status) {
            return Err(Failure::transient(status_error(&what, reply)));
        }
        if status == 401 || status == 403 {
            return Err(Failure::fatal(if self.credentials.is_some() {
                RegistryError::Auth {
                    registry: self.registry.clone(),
                    reason: format!("its token service refused the credentials (HTTP {status})"),
                }
            } else {
                self.needs_login()
            }));
        }
        if status != 200 {
            return Err(Failure::fatal(status_error(&what, reply)));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = reply
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| Failure::transient(RegistryError::Request(what.clone(), e.to_string())))?;
        let token: Token = serde_json::from_slice(&body).map_err(|e| {
            Failure::fatal(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: format!("its token service answered something that is not a token: {e}"),
            })
        })?;
        token.token.or(token.access_token).ok_or_else(|| {
            Failure::fatal(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: "its token service answered without a token".into(),
            })
        })
    }

    fn needs_login(&self) -> RegistryError {
        RegistryError::Auth {
            registry: self.registry.clone(),
            reason: format!(
                "it needs credentials and none were found: run `speck login {}` (or docker login), or pass --username with --password-stdin",
                self.registry
            ),
        }
    }

    fn unauthorized(&self, reply: Reply) -> RegistryError {
        let message = error_message(reply);
        RegistryError::Auth {
            registry: self.registry.clone(),
            reason: if self.credentials.is_some() {
                match self.scopes.as_slice() {
                    [] => format!("it refused the credentials: {message}"),
                    scopes => format!("it refused the credentials for {}: {message}", scopes.join(" ")),
                }
            } else {
                format!("{message}; {}", self.needs_login())
            },
        }
    }
}

/// A request body that counts what it hands to the socket.
struct Counting<'a> {
    bytes: &'a [u8],
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    traffic: &'a Traffic,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.bytes.read(buf)?;
        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(progress) = self.progress {
            progress(n as u64);
        }
        Ok(n)
    }
}

fn basic(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.username, credentials.secret);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A response header as text.
pub(crate) fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds; the HTTP-date form, rare from registries, is taken as one
/// second.
fn parse_retry_after(value: &str) -> Duration {
    Duration::from_secs(value.trim().parse().unwrap_or(1))
}

/// `Bearer realm="...",service="...",scope="a,b"` → ("Bearer", [(realm, ...), ...]).
pub(crate) fn parse_challenge(challenge: &str) -> Option<(String, Vec<(String, String)>)> {
    let challenge = challenge.trim();
    let (scheme, mut rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.push((key.trim().to_ascii_lowercase(), value.to_owned()));
        rest = after;
    }
    Some((scheme.to_owned(), params))
}

/// The registry's own words for a failed request (`errors[0].message` of the OCI error
/// body), or the status line.
pub(crate) fn error_message(mut reply: Reply) -> String {
    let status = reply.status();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorBody>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: Option<String>,
        message: Option<String>,
    }
    let body = reply
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    let detail = serde_json::from_str::<Errors>(&body)
        .ok()
        .and_then(|errors| errors.errors.into_iter().next())
        .map(|e| [e.code, e.message].into_iter().flatten().collect::<Vec<_>>().join(": "))
        .unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_owned());
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// An unexpected response, with the registry's message.
pub(crate) fn status_error(what: &str, reply: Reply) -> RegistryError {
    let status = reply.status().as_u16();
    RegistryError::Status {
        what: what.to_owned(),
        status,
        message: error_message(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_inside_quotes() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(params[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(params[2], ("scope".into(), "repository:a/b:pull,push".into()));
        assert_eq!(parse_challenge(r#"Basic realm="speck""#).unwrap().0, "Basic");
    }

    #[test]
    fn transient_statuses_are_retried_and_others_not() {
        for status in [408, 429, 499, 500, 502, 503, 504] {
            assert!(transient(status), "{status}");
        }
        for status in [400, 401, 403, 404, 416, 501] {
            assert!(!transient(status), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_and_retry_after_wins_up_to_the_cap() {
        let retry = Retry {
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(retry.delay(1, None), Duration::from_millis(100));
        assert_eq!(retry.delay(3, None), Duration::from_millis(400));
        assert_eq!(retry.delay(9, None), Duration::from_secs(2));
        assert_eq!(retry.delay(1, Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(retry.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(2));
        assert_eq!(parse_retry_after("3"), Duration::from_secs(3));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for registry in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
            "127.0.0.2",
        ] {
            assert!(loopback(registry), "{registry}");
        }
        for registry in ["ghcr.io", "docker.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!loopback(registry), "{registry}");
        }
    }
}
