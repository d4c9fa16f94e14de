//! The container configuration (what runs, as whom, with what), and the checks that
//! keep its values valid before they reach an engine.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// What a container runs and how: the `config` object of an image configuration.
///
/// Serialises with sorted keys and without empty fields, so equal values give equal bytes.
/// Reads any image's config: unknown fields are ignored, `null` reads as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// Default arguments, appended to the entrypoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The program to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` pairs.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// `port/proto` values such as `8000/tcp`.
    #[serde(
        skip_serializing_if = "BTreeSet::is_empty",
        serialize_with = "as_empty_objects",
        deserialize_with = "keys_of"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Signal that stops the container (`SIGTERM` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `user[:group]`, names or numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory of the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// `{"80/tcp":{}}`, as the image spec writes a set.
fn as_empty_objects<S: Serializer>(set: &BTreeSet<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(set.iter().map(|key| (key, BTreeMap::<(), ()>::new())))
}

/// `null` or absent as the empty value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(deserializer: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `{"80/tcp":{}}` back into a set.
fn keys_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeSet<String>, D::Error> {
    let map: Option<BTreeMap<String, serde::de::IgnoredAny>> = Option::deserialize(deserializer)?;
    Ok(map.unwrap_or_default().into_keys().collect())
}

/// A config value that an engine would reject or misread.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// An environment entry without `=`.
    #[error("environment entry {0:?} has no '=': write it as KEY=value")]
    Env(String),
    /// A label without `=`.
    #[error("label/annotation {0:?} has no '=': write it as key=value")]
    KeyValue(String),
    /// A port that is not `1-65535[/tcp|udp|sctp]`.
    #[error("port {0:?} is not valid: write it as NUMBER[/tcp|/udp|/sctp] with NUMBER from 1 to 65535")]
    Port(String),
    /// A signal name or number Linux does not have.
    #[error("stop signal {0:?} is not a Linux signal: use a name like SIGTERM or SIGINT, or a number from 1 to 64")]
    Signal(String),
    /// A relative working directory.
    #[error("working directory {0:?} must be an absolute path")]
    WorkingDir(String),
    /// A user that is not `USER[:GROUP]`.
    #[error("user {0:?} is not valid: write it as a name or UID, optionally :group or :GID, without spaces")]
    User(String),
}

/// Checks a `KEY=value` environment entry.
pub fn env_entry(text: &str) -> Result<String, ConfigError> {
    match text.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(text.to_owned()),
        _ => Err(ConfigError::Env(text.to_owned())),
    }
}

/// Splits a `key=value` label or annotation.
pub fn key_value(text: &str) -> Result<(String, String), ConfigError> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(ConfigError::KeyValue(text.to_owned())),
    }
}

/// Normalises a port to `number/proto` (`80` → `80/tcp`).
pub fn exposed_port(text: &str) -> Result<String, ConfigError> {
    let (number, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = proto.to_ascii_lowercase();
    match number.parse::<u16>() {
        Ok(port) if port > 0 && matches!(proto.as_str(), "tcp" | "udp" | "sctp") => Ok(format!("{port}/{proto}")),
        _ => Err(ConfigError::Port(text.to_owned())),
    }
}

const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
    "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO",
    "PWR", "SYS",
];

/// Normalises a stop signal to its `SIGNAME` form (`term`, `15` → `SIGTERM`); real-time
/// signals stay numeric.
pub fn stop_signal(text: &str) -> Result<String, ConfigError> {
    let refuse = || ConfigError::Signal(text.to_owned());
    if let Ok(number) = text.parse::<usize>() {
        return match number {
            1..=31 => Ok(format!("SIG{}", SIGNALS[number - 1])),
            32..=64 => Ok(number.to_string()),
            _ => Err(refuse()),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.contains(&name).then(|| format!("SIG{name}")).ok_or_else(refuse)
}

/// Checks a `USER[:GROUP]` value, each a name or a number, as engines split it (an empty
/// group, `65532:`, means none).
pub fn user(text: &str) -> Result<String, ConfigError> {
    let (user, group) = text.split_once(':').unwrap_or((text, ""));
    let part = |part: &str| !part.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control());
    if !user.is_empty() && part(user) && part(group) {
        Ok(text.to_owned())
    } else {
        Err(ConfigError::User(text.to_owned()))
    }
}

/// Checks that a working directory is absolute.
pub fn working_dir(text: &str) -> Result<String, ConfigError> {
    if text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err(ConfigError::WorkingDir(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_serialises_sorted_and_without_empty_fields() {
        let config = Config {
            entrypoint: Some(vec!["/app".into()]),
            exposed_ports: ["8000/tcp".to_owned()].into(),
            labels: [("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())].into(),
            ..Config::default()
        };
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"Entrypoint":["/app"],"ExposedPorts":{"8000/tcp":{}},"Labels":{"a":"1","b":"2"}}"#
        );
    }

    #[test]
    fn configs_of_other_tools_read_back() {
        let json = r#"{"Env":null,"Cmd":["/hello"],"ExposedPorts":{"80/tcp":{}},"Labels":null,"Healthcheck":{}}"#;
        let config: Config = serde_json::from_str(json).unwrap();
        assert_eq!(config.cmd, Some(vec!["/hello".to_owned()]));
        assert_eq!(config.exposed_ports, ["80/tcp".to_owned()].into());
        assert!(config.env.is_empty() && config.labels.is_empty());
    }

    #[test]
    fn users_are_one_name_or_number_and_an_optional_group() {
        for good in ["65532", "nonroot", "65532:65532", "app:staff", "65532:"] {
            assert_eq!(user(good).as_deref(), Ok(good));
        }
        for bad in ["", ":0", "1000:1000:x", "a b", "1000:\n"] {
            assert_eq!(user(bad), Err(ConfigError::User(bad.to_owned())));
        }
    }

    #[test]
    fn values_are_checked_and_normalised() {
        assert_eq!(exposed_port("80").unwrap(), "80/tcp");
        assert_eq!(exposed_port("53/UDP").unwrap(), "53/udp");
        assert!(exposed_port("0").is_err() && exposed_port("70000").is_err() && exposed_port("1/ip").is_err());
        assert_eq!(stop_signal("term").unwrap(), "SIGTERM");
        assert_eq!(stop_signal("2").unwrap(), "SIGINT");
        assert_eq!(stop_signal("40").unwrap(), "40");
        assert!(stop_signal("SIGNOPE").is_err() && stop_signal("65").is_err());
        assert!(env_entry("K").is_err() && env_entry("=v").is_err());
        assert_eq!(key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(working_dir("rel").is_err());
    }
}
