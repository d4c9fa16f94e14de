//! What the container's first process is, by Docker's rules: the command from
//! Entrypoint, Cmd and the overrides; the environment; the user, its groups and HOME
//! from the image's own `/etc/passwd` and `/etc/group`; the working directory.
//!
//! Owns those rules only; reads the unpacked tree through [`super::unpack::read_file`]
//! and starts nothing.

use crate::image::Config;
use std::path::Path;

/// The PATH Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `docker run` options change, as `speck run` takes them.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--entrypoint`: replaces Entrypoint and drops the image's Cmd.
    pub entrypoint: Option<String>,
    /// Arguments after the image: replace Cmd.
    pub args: Vec<String>,
    /// `-e KEY=value` (or `-e KEY`, taken from this environment).
    pub env: Vec<String>,
    /// `-w DIR`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
}

/// The first process of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// `argv`; `argv[0]` is looked up in the container's PATH when it has no `/`.
    pub argv: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// A process that cannot be made from the config and overrides.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    /// Neither Entrypoint, Cmd nor arguments.
    #[error("no command: the image has no Entrypoint or Cmd; give one after the image (speck run IMAGE -- COMMAND)")]
    NoCommand,
    /// A user name the image's /etc/passwd does not list.
    #[error(
        "unable to find user {0}: no matching entry in the image's /etc/passwd; use a numeric UID or add the user (speck pack --passwd)"
    )]
    NoUser(String),
    /// A group name the image's /etc/group does not list.
    #[error("unable to find group {0}: no matching entry in the image's /etc/group; use a numeric GID")]
    NoGroup(String),
    /// A relative working directory.
    #[error("working directory {0:?} must be an absolute path")]
    Workdir(String),
}

/// The process `docker run` would start for `config` with `overrides`, with user names
/// looked up in the unpacked tree `root`; `hostname` goes in `HOSTNAME` as Docker sets it.
pub fn process(config: &Config, overrides: &Overrides, root: &Path, hostname: &str) -> Result<Process, ProcessError> {
    let (entrypoint, cmd) = match &overrides.entrypoint {
        Some(entrypoint) => (vec![entrypoint.clone()], overrides.args.clone()),
        None if overrides.args.is_empty() => (
            config.entrypoint.clone().unwrap_or_default(),
            config.cmd.clone().unwrap_or_default(),
        ),
        None => (config.entrypoint.clone().unwrap_or_default(), overrides.args.clone()),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.first().is_none_or(String::is_empty) {
        return Err(ProcessError::NoCommand);
    }
    let cwd = overrides
        .workdir
        .clone()
        .or_else(|| config.working_dir.clone())
        .filter(|dir| !dir.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(ProcessError::Workdir(cwd));
    }
    let user = overrides
        .user
        .clone()
        .or_else(|| config.user.clone())
        .unwrap_or_default();
    let account = account(&user, root)?;
    let mut env = vec![format!("HOSTNAME={hostname}")];
    for entry in config
        .env
        .iter()
        .cloned()
        .chain(overrides.env.iter().filter_map(|e| from_host(e)))
    {
        set(&mut env, entry);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", account.home));
    }
    Ok(Process {
        argv,
        env,
        cwd,
        uid: account.uid,
        gid: account.gid,
        groups: account.groups,
    })
}

/// `KEY=value` as it is, `KEY` from this process's environment (dropped if unset), as
/// `docker run -e` does.
fn from_host(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_owned());
    }
    std::env::var(entry).ok().map(|value| format!("{entry}={value}"))
}

/// Sets `KEY=value` in `env`, replacing an earlier value of KEY.
fn set(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default().to_owned();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

/// A user as the container's files describe it.
struct Account {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

/// Resolves `user[:group]` (names or numbers) as runc does: numbers need no entry, a
/// name must be in the image's /etc/passwd; HOME and the primary group come from the
/// user's entry, supplementary groups from /etc/group.
fn account(spec: &str, root: &Path) -> Result<Account, ProcessError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = table(root, "/etc/passwd");
    let entry = passwd.iter().find(|fields| {
        fields.first().map(String::as_str) == Some(user) || fields.get(2).map(String::as_str) == Some(user)
    });
    let uid = match (user.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(fields)) => fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
        (Err(_), None) => return Err(ProcessError::NoUser(user.to_owned())),
    };
    let entry = entry.filter(|fields| fields.get(2).and_then(|f| f.parse::<u32>().ok()) == Some(uid));
    let home = entry
        .and_then(|fields| fields.get(5))
        .filter(|home| !home.is_empty())
        .cloned()
        .unwrap_or_else(|| "/".into());
    let groups_table = table(root, "/etc/group");
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups_table
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(group))
                .and_then(|fields| fields.get(2)?.parse().ok())
                .ok_or_else(|| ProcessError::NoGroup(group.to_owned()))?,
        },
        None => entry.and_then(|fields| fields.get(3)?.parse().ok()).unwrap_or(0),
    };
    let name = entry.and_then(|fields| fields.first()).cloned().unwrap_or_default();
    let groups = groups_table
        .iter()
        .filter(|fields| {
            fields
                .get(3)
                .is_some_and(|members| members.split(',').any(|m| !m.is_empty() && m == name))
        })
        .filter_map(|fields| fields.get(2)?.parse().ok())
        .filter(|&g| g != gid)
        .collect();
    Ok(Account { uid, gid, groups, home })
}

/// The colon-separated lines of a file of the image (none if it is missing).
fn table(root: &Path, path: &str) -> Vec<Vec<String>> {
    let bytes = super::unpack::read_file(root, path).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entrypoint: &[&str], cmd: &[&str]) -> Config {
        let list = |items: &[&str]| (!items.is_empty()).then(|| items.iter().map(|s| s.to_string()).collect());
        Config {
            entrypoint: list(entrypoint),
            cmd: list(cmd),
            env: vec!["A=1".into()],
            ..Config::default()
        }
    }

    fn argv(config: &Config, overrides: Overrides) -> Result<Vec<String>, ProcessError> {
        let root = tempfile::tempdir().unwrap();
        process(config, &overrides, root.path(), "h").map(|p| p.argv)
    }

    #[test]
    fn arguments_replace_cmd_and_entrypoint_drops_it() {
        let image = config(&["/app", "-v"], &["serve"]);
        assert_eq!(argv(&image, Overrides::default()).unwrap(), ["/app", "-v", "serve"]);
        let args = Overrides {
            args: vec!["x".into()],
            ..Overrides::default()
        };
        assert_eq!(argv(&image, args).unwrap(), ["/app", "-v", "x"]);
        let entrypoint = Overrides {
            entrypoint: Some("/sh".into()),
            ..Overrides::default()
        };
        assert_eq!(argv(&image, entrypoint).unwrap(), ["/sh"]);
        assert_eq!(
            argv(&config(&[], &[]), Overrides::default()),
            Err(ProcessError::NoCommand)
        );
    }

    #[test]
    fn environment_and_user_follow_docker() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nnonroot:x:65532:\nextra:x:7:nonroot\n",
        )
        .unwrap();
        let overrides = Overrides {
            env: vec!["A=2".into(), "B=3".into()],
            user: Some("nonroot".into()),
            ..Overrides::default()
        };
        let process = process(&config(&["/app"], &[]), &overrides, root.path(), "h").unwrap();
        assert_eq!(
            process.env,
            [
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h",
                "A=2",
                "B=3",
                "HOME=/home/nonroot"
            ]
        );
        assert_eq!((process.uid, process.gid, process.groups), (65532, 65532, vec![7]));
        let unknown = Overrides {
            user: Some("nobody".into()),
            ..Overrides::default()
        };
        let error = super::process(&config(&["/app"], &[]), &unknown, root.path(), "h").unwrap_err();
        assert_eq!(error, ProcessError::NoUser("nobody".into()));
    }
}
