//! Registry credentials where Docker, crane and podman keep them: `$DOCKER_CONFIG/config.json`
//! (or `~/.docker/config.json`) with its `auths`, `credHelpers` and `credsStore`
//! (`docker-credential-NAME get|store` programs), then podman's `auth.json`.
//!
//! Written by hand rather than with the `docker_credential` crate: `speck login` must also
//! *store* credentials as docker does, which that crate does not do.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A user name and its password or token. Docker's convention: the user name `<token>`
/// marks an identity (OAuth refresh) token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.username)
    }
}

/// Credentials that cannot be read or stored, naming the file or helper.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(String);

/// The key Docker files a registry's credentials under (`https://index.docker.io/v1/`
/// for Docker Hub, the host otherwise).
pub fn server_key(registry: &str) -> String {
    if registry == crate::image::reference::DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// A key of `auths` or `credHelpers` reduced to its host, as Docker matches them
/// (`https://ghcr.io/v1/` → `ghcr.io`; Docker Hub's several names → `docker.io`).
fn key_host(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        host => host,
    }
}

/// Where credentials are looked up and stored.
#[derive(Clone, Debug)]
pub struct Store {
    /// Docker's config file.
    pub docker_config: PathBuf,
    /// podman's auth file, read after Docker's.
    pub podman_auth: Option<PathBuf>,
}

/// Where credentials were found or put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// In a config file's `auths`.
    File(PathBuf),
    /// With a credential helper (`docker-credential-NAME`).
    Helper(String),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File(path) => write!(f, "{}", path.display()),
            Place::Helper(name) => write!(f, "docker-credential-{name}"),
        }
    }
}

impl Store {
    /// The files Docker and podman use: `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`; `$REGISTRY_AUTH_FILE` or
    /// `$XDG_RUNTIME_DIR/containers/auth.json`.
    pub fn from_env() -> Self {
        let docker_dir = crate::engine::docker_config_dir();
        let podman_auth = std::env::var_os("REGISTRY_AUTH_FILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(|dir| PathBuf::from(dir).join("containers/auth.json")));
        Self {
            docker_config: docker_dir.join("config.json"),
            podman_auth,
        }
    }

    /// The credentials for `registry`, and where they came from: the registry's
    /// `credHelpers` entry, else `credsStore`, else `auths`; then podman's `auth.json`.
    pub fn get(&self, registry: &str) -> Result<Option<(Credentials, Place)>, CredentialError> {
        let config = read_config(&self.docker_config)?;
        if let Some(helper) = helper_for(&config, registry) {
            if let Some(credentials) = helper_get(&helper, registry)? {
                return Ok(Some((credentials, Place::Helper(helper))));
            }
        } else if let Some(credentials) = from_auths(&config, registry, &self.docker_config)? {
            return Ok(Some((credentials, Place::File(self.docker_config.clone()))));
        }
        if let Some(path) = &self.podman_auth {
            let auth = read_config(path)?;
            if let Some(credentials) = from_auths(&auth, registry, path)? {
                return Ok(Some((credentials, Place::File(path.clone()))));
            }
        }
        Ok(None)
    }

    /// Stores credentials the way `docker login` does: with the registry's helper or
    /// `credsStore` when the config names one (leaving an empty `auths` entry, as docker
    /// does), else base64 in `auths`. The file is replaced atomically, mode 0600, other
    /// settings kept.
    pub fn put(&self, registry: &str, credentials: &Credentials) -> Result<Place, CredentialError> {
        let mut config = read_config(&self.docker_config)?;
        let key = server_key(registry);
        let helper = helper_for(&config, registry);
        let entry = match &helper {
            Some(helper) => {
                helper_store(helper, &key, credentials)?;
                Map::new()
            }
            None => {
                let pair = format!("{}:{}", credentials.username, credentials.secret);
                let mut entry = Map::new();
                entry.insert(
                    "auth".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(pair)),
                );
                entry
            }
        };
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| CredentialError(format!("{}: \"auths\" is not an object", self.docker_config.display())))?;
        auths.retain(|existing, _| key_host(existing) != key_host(&key));
        auths.insert(key, Value::Object(entry));
        write_config(&self.docker_config, &config)?;
        Ok(helper.map_or_else(|| Place::File(self.docker_config.clone()), Place::Helper))
    }
}

/// A config file as a JSON object; a missing file is an empty one.
fn read_config(path: &Path) -> Result<Map<String, Value>, CredentialError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CredentialError(format!(
                "{} is not a valid config file ({e}); fix or remove it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(CredentialError(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write_config(path: &Path, config: &Map<String, Value>) -> Result<(), CredentialError> {
    let fail = |e: std::io::Error| CredentialError(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    let mut bytes = serde_json::to_vec_pretty(config).expect("a JSON object serialises");
    bytes.push(b'\n');
    file.write_all(&bytes).map_err(fail)?;
    // NamedTempFile is created 0600 already: credentials stay private.
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// The helper that holds `registry`'s credentials: its `credHelpers` entry, else
/// `credsStore`.
fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
    let specific = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| helpers.iter().find(|(key, _)| key_host(key) == key_host(registry)))
        .and_then(|(_, name)| name.as_str());
    specific
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// Credentials from an `auths` entry: `auth` (base64 `user:password`), or
/// `identitytoken`.
fn from_auths(
    config: &Map<String, Value>,
    registry: &str,
    path: &Path,
) -> Result<Option<Credentials>, CredentialError> {
    let Some(entry) = config
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|auths| auths.iter().find(|(key, _)| key_host(key) == key_host(registry)))
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    let field = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(token) = field("identitytoken") {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            secret: token.to_owned(),
        }));
    }
    let Some(auth) = field("auth") else {
        return Ok(None);
    };
    let invalid = || {
        CredentialError(format!(
            "{}: the \"auth\" of {registry} is not base64 of user:password; log in again",
            path.display()
        ))
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (username, secret) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Some(Credentials {
        username: username.to_owned(),
        secret: secret.to_owned(),
    }))
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin; its stdout.
fn run_helper(name: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>), CredentialError> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CredentialError(format!(
                "the credential helper {program} (named in the Docker config) cannot be started: {e}; install it or remove it from the config"
            ))
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .map_err(|e| CredentialError(format!("{program} {action}: {e}")))?;
    let output = child
        .wait_with_output()
        .map_err(|e| CredentialError(format!("{program} {action}: {e}")))?;
    let mut said = output.stdout;
    said.extend_from_slice(&output.stderr);
    Ok((output.status.success(), said))
}

fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>, CredentialError> {
    let (ok, output) = run_helper(name, "get", server_key(registry).as_bytes())?;
    if !ok {
        let message = String::from_utf8_lossy(&output).trim().to_owned();
        // The helper protocol's words for "nothing stored for this server".
        if message.contains("credentials not found") {
            return Ok(None);
        }
        return Err(CredentialError(format!(
            "docker-credential-{name} get failed for {registry}: {message}"
        )));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output).map_err(|e| {
        CredentialError(format!(
            "docker-credential-{name} get answered something that is not {{\"Username\",\"Secret\"}} JSON: {e}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
    }))
}

fn helper_store(name: &str, key: &str, credentials: &Credentials) -> Result<(), CredentialError> {
    let input = serde_json::json!({
        "ServerURL": key,
        "Username": credentials.username,
        "Secret": credentials.secret,
    });
    let (ok, output) = run_helper(name, "store", input.to_string().as_bytes())?;
    if ok {
        Ok(())
    } else {
        Err(CredentialError(format!(
            "docker-credential-{name} store failed: {}",
            String::from_utf8_lossy(&output).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_in(dir: &Path, config: &str) -> Store {
        std::fs::write(dir.join("config.json"), config).unwrap();
        Store {
            docker_config: dir.join("config.json"),
            podman_auth: None,
        }
    }

    #[test]
    fn auths_are_matched_by_host_whatever_the_key_form() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(
            dir.path(),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},"http://127.0.0.1:5000/v2/":{"auth":"bWU6c2VjcmV0"}}}"#,
        );
        let (hub, place) = store.get("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.secret.as_str()), ("hub", "pw"));
        assert_eq!(place, Place::File(dir.path().join("config.json")));
        let (local, _) = store.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((local.username.as_str(), local.secret.as_str()), ("me", "secret"));
        assert!(store.get("ghcr.io").unwrap().is_none());
    }

    #[test]
    fn login_keeps_other_settings_and_replaces_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(
            dir.path(),
            r#"{"auths":{"https://ghcr.io":{"auth":"b2xkOm9sZA=="}},"psFormat":"x"}"#,
        );
        let credentials = Credentials {
            username: "me".into(),
            secret: "new".into(),
        };
        store.put("ghcr.io", &credentials).unwrap();
        let config: Value = serde_json::from_slice(&std::fs::read(&store.docker_config).unwrap()).unwrap();
        assert_eq!(config["psFormat"], "x");
        assert_eq!(config["auths"].as_object().unwrap().len(), 1);
        assert_eq!(store.get("ghcr.io").unwrap().unwrap().0, credentials);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&store.docker_config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_broken_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path(), "{not json");
        let error = store.get("ghcr.io").unwrap_err().to_string();
        assert!(error.contains("config.json is not a valid config file"), "{error}");
    }
}
