//! Random file trees go through the layer writer and come back out of an independent tar
//! reader (the tar crate) exactly: paths, kinds, modes, owners, times, bytes, link targets.

use proptest::prelude::*;
use speck::layer::{Compression, Entry, EntryKind, Layer, LayerOptions, TarForm};
use std::collections::BTreeMap;
use std::io::Read as _;

/// What a reader sees of one member.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Seen {
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

fn read_back(mut tar: Vec<u8>, form: TarForm) -> BTreeMap<String, Seen> {
    if form == TarForm::Minimal {
        // The tar crate, like GNU tar, wants the last block whole; engines do not.
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut seen = BTreeMap::new();
    for member in archive.entries().expect("a tar") {
        let mut member = member.expect("a member");
        let header = member.header().clone();
        let path = member
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let link = || member_link(&header);
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                member.read_to_end(&mut data).unwrap();
                EntryKind::File(data.into())
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink(link()),
            tar::EntryType::Link => EntryKind::Hardlink(link()),
            other => panic!("unexpected member type {other:?}"),
        };
        let long_link = member.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let kind = match (kind, long_link) {
            (EntryKind::Symlink(_), Some(l)) => EntryKind::Symlink(l),
            (EntryKind::Hardlink(_), Some(l)) => EntryKind::Hardlink(l),
            (kind, _) => kind,
        };
        // Values too large for the header come in PAX records, as Go's reader applies them.
        let mut pax = BTreeMap::new();
        if let Some(extensions) = member.pax_extensions().unwrap() {
            for extension in extensions {
                let extension = extension.unwrap();
                pax.insert(
                    extension.key().unwrap().to_owned(),
                    extension.value().unwrap().to_owned(),
                );
            }
        }
        let number = |key: &str, header_value: u64| pax.get(key).map_or(header_value, |v| v.parse().unwrap());
        let entry = Seen {
            kind,
            mode: header.mode().unwrap(),
            uid: number("uid", header.uid().unwrap()),
            gid: number("gid", header.gid().unwrap()),
            mtime: number("mtime", header.mtime().unwrap()),
        };
        assert!(seen.insert(path.clone(), entry).is_none(), "{path} twice");
    }
    seen
}

fn member_link(header: &tar::Header) -> String {
    header
        .link_name()
        .unwrap()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// One path component: short or long, ASCII or not, so both the ustar prefix and PAX
/// records are exercised.
fn component() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{1,12}", "[a-zé€]{1,8}", "[a-z]{60,99}",]
        .prop_filter("not . or ..", |c| c != "." && c != "..")
}

fn tree() -> impl Strategy<Value = Vec<Entry>> {
    let path = proptest::collection::vec(component(), 1..5).prop_map(|parts| parts.join("/"));
    let kind = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..2000).prop_map(|d| EntryKind::File(d.into())),
        1 => Just(EntryKind::Dir),
        1 => "[a-z/.]{1,150}".prop_map(EntryKind::Symlink),
    ];
    let entry = (path, kind, 0u32..0o7777, 0u32..70000, 0u32..3000).prop_map(|(path, kind, mode, uid, gid)| Entry {
        path,
        kind,
        mode,
        uid,
        gid,
    });
    proptest::collection::vec(entry, 0..24).prop_map(|entries| {
        // A tree cannot hold a file and a directory at the same path, nor a file where
        // another entry needs a parent directory.
        let mut by_path = BTreeMap::new();
        for e in entries {
            by_path.entry(e.path.clone()).or_insert(e);
        }
        let paths: Vec<String> = by_path.keys().cloned().collect();
        let mut entries: Vec<Entry> = by_path
            .into_values()
            .filter(|e| {
                matches!(e.kind, EntryKind::Dir) || !paths.iter().any(|p| p.starts_with(&format!("{}/", e.path)))
            })
            .collect();
        // Hard link the last file to the first, when there are two.
        let files: Vec<usize> = (0..entries.len())
            .filter(|&i| matches!(entries[i].kind, EntryKind::File(_)))
            .collect();
        if let [first, .., last] = files[..] {
            let target = entries[first].path.clone();
            entries[last].kind = EntryKind::Hardlink(target);
        }
        entries
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn layers_round_trip_through_a_tar_reader(entries in tree(), mtime in 0u64..(1 << 34), conventional in any::<bool>()) {
        let form = if conventional { TarForm::Conventional } else { TarForm::Minimal };
        let options = LayerOptions { form, mtime, compression: Compression::None };
        let layer = Layer::build(&entries, &options).unwrap();
        let seen = read_back(layer.blob().to_vec(), form);

        let by_path: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
        for entry in &entries {
            let got = seen.get(&entry.path).unwrap_or_else(|| panic!("{} missing", entry.path));
            // A hard link carries its target's mode and owner: they describe one inode.
            let owner = match &entry.kind {
                EntryKind::Hardlink(target) => by_path[target.as_str()],
                _ => entry,
            };
            let expected = Seen {
                kind: entry.kind.clone(),
                mode: owner.mode,
                uid: owner.uid.into(),
                gid: owner.gid.into(),
                mtime,
            };
            prop_assert_eq!(got, &expected, "{}", entry.path);
        }
        // Only the conventional form adds entries: the parent directories.
        for (path, got) in &seen {
            if !by_path.contains_key(path.as_str()) {
                prop_assert_eq!(form, TarForm::Conventional);
                prop_assert_eq!(&got.kind, &EntryKind::Dir);
                let prefix = format!("{path}/");
                prop_assert!(entries.iter().any(|e| e.path.starts_with(&prefix)));
            }
        }
    }

    #[test]
    fn equal_entries_in_any_order_give_equal_bytes(entries in tree()) {
        let options = LayerOptions { form: TarForm::Minimal, mtime: 0, compression: Compression::Gzip };
        let mut reversed = entries.clone();
        reversed.reverse();
        let a = Layer::build(&entries, &options).unwrap();
        let b = Layer::build(&reversed, &options).unwrap();
        prop_assert_eq!(a.blob(), b.blob());
        prop_assert_eq!(a.diff_id(), b.diff_id());
    }
}
