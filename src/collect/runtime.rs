//! Runtime files a scratch image lacks and programs expect, added only on request:
//! CA certificates, time zones, a passwd/group pair, `/tmp`, `/etc/os-release`, and what
//! name service lookups read.
//!
//! Owns which files each option means and the generated ones' contents; reads the
//! root's copies of the rest. Never writes; knows nothing about layers beyond entries.

use super::closure::Root;
use crate::layer::{Entry, PathError};

/// The runtime files asked for.
#[derive(Clone, Debug, Default)]
pub struct RuntimeFiles {
    /// `--ca-certs`: the root's CA bundle and the OpenSSL links to it.
    pub ca_certs: bool,
    /// `--tzdata`: `Some(empty)` for every zone, or the zones listed.
    pub tzdata: Option<Vec<String>>,
    /// `--passwd`: the account the image runs as.
    pub passwd: Option<Account>,
    /// `--tmp`: `/tmp` with mode 1777.
    pub tmp: bool,
    /// `--os-release`: the root's `/etc/os-release`.
    pub os_release: bool,
    /// `--nss`: `/etc/nsswitch.conf` (files, then DNS for hosts) and `/etc/hosts`.
    pub nss: bool,
}

/// An account for `/etc/passwd`: `root`, `nonroot` (65532, as distroless), or `NAME:UID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The user and group name.
    pub name: String,
    /// The user and group ID.
    pub uid: u32,
}

impl std::str::FromStr for Account {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let account = |name: &str, uid| Account {
            name: name.to_owned(),
            uid,
        };
        match text.split_once(':') {
            None if text == "root" => Ok(account("root", 0)),
            None if text == "nonroot" => Ok(account("nonroot", 65532)),
            Some((name, uid)) if valid_name(name) => uid
                .parse()
                .map(|uid| account(name, uid))
                .map_err(|_| format!("{uid:?} is not a numeric UID; write NAME:UID, e.g. app:10001")),
            _ => Err(format!(
                "{text:?}: write root, nonroot or NAME:UID (a name of letters, digits, '_' and '-')"
            )),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A runtime file: generated, or a path of the root to copy with its links.
#[derive(Clone, Debug)]
pub enum RuntimeFile {
    /// Generated content.
    Made(Entry),
    /// A file or tree of the root, at the same path in the image.
    FromRoot(String),
}

/// A runtime file and the option that asked for it.
pub type Wanted = (RuntimeFile, &'static str);

/// Why a runtime file cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The root lacks the files an option copies.
    #[error("{option} needs {what}, which is not in {root}: install it ({package}) or drop {option}")]
    Missing {
        /// The option.
        option: &'static str,
        /// What is missing.
        what: String,
        /// The Debian package that has it.
        package: &'static str,
        /// The root searched.
        root: String,
    },
    /// A generated path is invalid (cannot happen for fixed names; kept for the type).
    #[error(transparent)]
    Path(#[from] PathError),
}

/// Where CA bundles are, in the order distributions put them.
const CA_BUNDLES: [&str; 3] = [
    "etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
    "etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "etc/ssl/ca-bundle.pem",             // openSUSE
];

/// OpenSSL's default file, a link to the bundle on Debian; copied when present (its
/// hashed `certs` directory is not: it repeats the bundle as 140 files).
const OPENSSL_BUNDLE: &str = "usr/lib/ssl/cert.pem";

/// The files the options ask for, in a fixed order.
pub fn wanted(files: &RuntimeFiles, root: &Root) -> Result<Vec<Wanted>, RuntimeError> {
    let missing = |option, what: &str, package| RuntimeError::Missing {
        option,
        what: what.to_owned(),
        package,
        root: root.dir().display().to_string(),
    };
    let exists = |path: &str| root.follow(path).is_some_and(|f| root.on_disk(&f.path).exists());
    let mut out: Vec<Wanted> = Vec::new();
    if files.ca_certs {
        let bundle = CA_BUNDLES
            .iter()
            .find(|path| exists(path))
            .ok_or_else(|| missing("--ca-certs", "a CA bundle", "ca-certificates"))?;
        out.push((RuntimeFile::FromRoot((*bundle).to_owned()), "--ca-certs"));
        if exists(OPENSSL_BUNDLE) {
            out.push((RuntimeFile::FromRoot(OPENSSL_BUNDLE.to_owned()), "--ca-certs"));
        }
    }
    if let Some(zones) = &files.tzdata {
        let base = "usr/share/zoneinfo";
        if !exists(base) {
            return Err(missing("--tzdata", base, "tzdata"));
        }
        if zones.is_empty() {
            out.push((RuntimeFile::FromRoot(base.to_owned()), "--tzdata"));
        }
        for zone in zones {
            let path = format!("{base}/{}", zone.trim_matches('/'));
            if zone.contains("..") || !exists(&path) {
                return Err(missing("--tzdata", &format!("the zone {zone}"), "tzdata"));
            }
            out.push((RuntimeFile::FromRoot(path), "--tzdata"));
        }
    }
    if let Some(account) = &files.passwd {
        out.extend(
            accounts(account)?
                .into_iter()
                .map(|e| (RuntimeFile::Made(e), "--passwd")),
        );
    }
    if files.tmp {
        out.push((RuntimeFile::Made(Entry::dir("tmp", 0o1777)?), "--tmp"));
    }
    if files.os_release {
        let release = ["etc/os-release", "usr/lib/os-release"]
            .into_iter()
            .find(|path| exists(path))
            .ok_or_else(|| missing("--os-release", "/etc/os-release", "base-files"))?;
        out.push((RuntimeFile::FromRoot(release.to_owned()), "--os-release"));
    }
    if files.nss {
        out.push((
            RuntimeFile::Made(Entry::file("etc/nsswitch.conf", 0o644, NSSWITCH.to_vec())?),
            "--nss",
        ));
        out.push((
            RuntimeFile::Made(Entry::file("etc/hosts", 0o644, HOSTS.to_vec())?),
            "--nss",
        ));
    }
    Ok(out)
}

/// Local files first for every database, DNS after the hosts file: what a container
/// without NIS, systemd or mDNS can answer. (glibc 2.34 and later have `files` and
/// `dns` built into libc; older ones need `libnss_files.so.2`, `libnss_dns.so.2`.)
const NSSWITCH: &[u8] = b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n";

/// The NSS modules older glibc loads for [`NSSWITCH`]; added when the root has them.
pub const NSS_MODULES: [&str; 2] = ["libnss_files.so.2", "libnss_dns.so.2"];

/// What an engine would otherwise bind-mount; for `speck run` and other runtimes.
const HOSTS: &[u8] = b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// `/etc/passwd`, `/etc/group` and the home directory for an account (and root, which
/// programs look up even when they run as someone else).
fn accounts(account: &Account) -> Result<Vec<Entry>, PathError> {
    let line = |name: &str, uid: u32, home: &str| format!("{name}:x:{uid}:{uid}:{name}:{home}:/sbin/nologin\n");
    let mut passwd = line("root", 0, "/root");
    let mut group = "root:x:0:\n".to_owned();
    let home = if account.uid == 0 {
        "root".to_owned()
    } else {
        passwd.push_str(&line(&account.name, account.uid, &format!("/home/{}", account.name)));
        group.push_str(&format!("{}:x:{}:\n", account.name, account.uid));
        format!("home/{}", account.name)
    };
    let mut home_dir = Entry::dir(&home, 0o700)?;
    (home_dir.uid, home_dir.gid) = (account.uid, account.uid);
    Ok(vec![
        Entry::file("etc/passwd", 0o644, passwd.into_bytes())?,
        Entry::file("etc/group", 0o644, group.into_bytes())?,
        home_dir,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_as_docker_users_expect() {
        assert_eq!("nonroot".parse::<Account>().unwrap().uid, 65532);
        assert_eq!("root".parse::<Account>().unwrap().uid, 0);
        assert_eq!(
            "app:10001".parse::<Account>().unwrap(),
            Account {
                name: "app".into(),
                uid: 10001
            }
        );
        assert!("app:x".parse::<Account>().unwrap_err().contains("numeric UID"));
        assert!("a b".parse::<Account>().unwrap_err().contains("NAME:UID"));
    }

    #[test]
    fn passwd_names_root_and_the_account() {
        let entries = accounts(&"app:10001".parse().unwrap()).unwrap();
        let crate::layer::EntryKind::File(passwd) = &entries[0].kind else {
            panic!()
        };
        assert_eq!(
            std::str::from_utf8(passwd).unwrap(),
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/home/app:/sbin/nologin\n"
        );
        assert_eq!((entries[2].path.as_str(), entries[2].uid), ("home/app", 10001));
    }
}
