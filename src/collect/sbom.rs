//! `speck pack --sbom FILE`: an SPDX 2.3 JSON document listing every file of a packed
//! image with its SHA-1 and SHA-256 (of the bytes in the image, stripped or not), and,
//! where the root has a dpkg database, the Debian package each file came from.
//!
//! Owns the SPDX shape and the dpkg lookup (`/var/lib/dpkg/info/*.list` for owners,
//! `/var/lib/dpkg/status` for versions; on merged-/usr systems dpkg names
//! `/lib/x/libc.so.6` where the file is `/usr/lib/x/libc.so.6`, so both are tried).
//! Returns JSON; writing it is the caller's job.

use super::closure::Root;
use super::pack::Content;
use crate::layer::EntryKind;
use serde_json::{Value, json};
use sha1::Digest as _;
use std::collections::{BTreeMap, HashMap};

/// The Debian packages installed in a root, and which owns each path.
#[derive(Clone, Debug, Default)]
pub struct Dpkg {
    owners: HashMap<String, String>,
    versions: HashMap<String, String>,
    distribution: String,
}

impl Dpkg {
    /// Reads the root's dpkg database; empty when there is none.
    pub fn read(root: &Root) -> Dpkg {
        let mut dpkg = Dpkg {
            distribution: os_id(root),
            ..Dpkg::default()
        };
        let Ok(listing) = std::fs::read_dir(root.on_disk("var/lib/dpkg/info")) else {
            return dpkg;
        };
        for file in listing.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some(package) = name.strip_suffix(".list") else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(file.path()) else {
                continue;
            };
            for path in text.lines() {
                dpkg.owners.entry(path.to_owned()).or_insert_with(|| package.to_owned());
            }
        }
        let status = std::fs::read_to_string(root.on_disk("var/lib/dpkg/status")).unwrap_or_default();
        for paragraph in status.split("\n\n") {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                    .unwrap_or_default()
            };
            let (package, arch, version) = (field("Package"), field("Architecture"), field("Version"));
            if !package.is_empty() && field("Status").ends_with(" installed") {
                dpkg.versions.insert(format!("{package}:{arch}"), version.to_owned());
                dpkg.versions
                    .entry(package.to_owned())
                    .or_insert_with(|| version.to_owned());
            }
        }
        dpkg
    }

    /// The package (`name` or `name:arch`, as dpkg files it) that owns a root path.
    pub fn owner(&self, path: &str) -> Option<&str> {
        let path = format!("/{}", path.trim_start_matches('/'));
        let merged = path.strip_prefix("/usr").filter(|rest| {
            ["/lib", "/bin", "/sbin", "/lib64", "/lib32", "/libx32"]
                .iter()
                .any(|dir| rest.starts_with(&format!("{dir}/")))
        });
        self.owners
            .get(&path)
            .or_else(|| merged.and_then(|rest| self.owners.get(rest)))
            .map(String::as_str)
    }
}

fn os_id(root: &Root) -> String {
    let text = std::fs::read_to_string(root.on_disk("etc/os-release")).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("ID="))
        .map_or_else(|| "debian".into(), |id| id.trim_matches('"').to_owned())
}

/// The SPDX document for an image named `name` with digest `digest`, created at
/// `created` (seconds since the epoch: `SOURCE_DATE_EPOCH`, so documents reproduce).
pub fn spdx(name: &str, digest: &str, created: u64, contents: &[Content], root: &Root, dpkg: &Dpkg) -> Value {
    let mut files = Vec::new();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, content) in contents.iter().enumerate() {
        let EntryKind::File(bytes) = &content.entry.kind else {
            continue;
        };
        let id = format!("SPDXRef-File-{n}");
        files.push(json!({
            "fileName": format!("./{}", content.path),
            "SPDXID": id,
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": hex(&sha1::Sha1::digest(bytes))},
                {"algorithm": "SHA256", "checksumValue": crate::digest::Digest::of(bytes).hex()},
            ],
            "copyrightText": "NOASSERTION",
            "comment": content.why.to_string(),
        }));
        let owner = content
            .host
            .as_deref()
            .and_then(|host| host.strip_prefix(root.dir()).ok())
            .and_then(|inside| dpkg.owner(&inside.to_string_lossy()));
        match owner {
            Some(package) => packages.entry(package.to_owned()).or_default().push(id),
            None => relationships.push(contains("SPDXRef-Image", &id)),
        }
    }
    let mut package_list = vec![json!({
        "name": name,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
    })];
    for (n, (package, ids)) in packages.iter().enumerate() {
        let package_id = format!("SPDXRef-Package-{n}");
        let (bare, arch) = package.split_once(':').unwrap_or((package, ""));
        let version = dpkg.versions.get(package).cloned().unwrap_or_default();
        let arch_query = if arch.is_empty() {
            String::new()
        } else {
            format!("?arch={arch}")
        };
        package_list.push(json!({
            "name": bare,
            "SPDXID": package_id,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": format!("pkg:deb/{}/{bare}@{}{arch_query}", dpkg.distribution, encode_version(&version)),
            }],
        }));
        relationships.push(contains("SPDXRef-Image", &package_id));
        relationships.extend(ids.iter().map(|id| contains(&package_id, id)));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://speck.invalid/spdx/{}", digest.replace(':', "-")),
        "creationInfo": {
            "created": humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(created)).to_string(),
            "creators": [format!("Tool: speck-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": package_list,
        "files": files,
        "relationships": relationships,
    })
}

fn contains(from: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": "CONTAINS", "relatedSpdxElement": to})
}

/// A Debian version in a purl: `:` (epochs) and `+` percent-encoded.
fn encode_version(version: &str) -> String {
    version.replace(':', "%3A").replace('+', "%2B")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_paths_find_their_package() {
        let dpkg = Dpkg {
            owners: HashMap::from([("/lib/x86_64-linux-gnu/libc.so.6".to_owned(), "libc6:amd64".to_owned())]),
            ..Dpkg::default()
        };
        assert_eq!(dpkg.owner("usr/lib/x86_64-linux-gnu/libc.so.6"), Some("libc6:amd64"));
        assert_eq!(dpkg.owner("/lib/x86_64-linux-gnu/libc.so.6"), Some("libc6:amd64"));
        assert_eq!(dpkg.owner("usr/share/libc.so.6"), None);
    }
}
