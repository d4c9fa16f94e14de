//! Hostile layers, written byte by byte: each is refused or contained with a message,
//! and nothing is written outside the target directory.

use speck::run::unpack::{Limits, UnpackError, Unpacked, apply_tar};
use std::path::Path;

/// One tar member: a ustar header (and a PAX header first when the name or link needs
/// one), then the data padded to 512 bytes.
fn member(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut records = Vec::new();
    if name.len() > 100 || name.contains(&0) {
        records.push(pax_record(b"path", name));
    }
    if link.len() > 100 || link.contains(&0) {
        records.push(pax_record(b"linkpath", link));
    }
    if !records.is_empty() {
        let body = records.concat();
        out.extend(header(b"pax", b'x', b"", body.len(), 0));
        out.extend(padded(&body));
    }
    out.extend(header(
        &name[..name.len().min(100)],
        kind,
        &link[..link.len().min(100)],
        data.len(),
        0,
    ));
    out.extend(padded(data));
    out
}

/// A device node member.
fn device(name: &[u8], kind: u8, major: u32, minor: u32) -> Vec<u8> {
    let mut block = header(name, kind, b"", 0, 0);
    block[329..336].copy_from_slice(format!("{major:07o}").as_bytes());
    block[337..344].copy_from_slice(format!("{minor:07o}").as_bytes());
    checksum(&mut block);
    block
}

fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = [b" ".as_slice(), key, b"=", value, b"\n"].concat();
    let mut length = body.len() + 1;
    while length.to_string().len() + body.len() != length {
        length += 1;
    }
    [length.to_string().as_bytes(), &body].concat()
}

fn header(name: &[u8], kind: u8, link: &[u8], size: usize, _mtime: u64) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name);
    let mode: &[u8] = if kind == b'5' { b"0000755" } else { b"0000644" };
    block[100..107].copy_from_slice(mode);
    block[108..115].copy_from_slice(b"0000000");
    block[116..123].copy_from_slice(b"0000000");
    block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    checksum(&mut block);
    block
}

fn checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().next_multiple_of(512), 0);
    out
}

fn file(name: &str, data: &str) -> Vec<u8> {
    member(name.as_bytes(), b'0', b"", data.as_bytes())
}

fn symlink(name: &str, target: &str) -> Vec<u8> {
    member(name.as_bytes(), b'2', target.as_bytes(), b"")
}

fn hardlink(name: &str, target: &str) -> Vec<u8> {
    member(name.as_bytes(), b'1', target.as_bytes(), b"")
}

/// A scratch area: `base/root` is the target; `base` holds nothing else, so anything
/// that escapes the root lands beside it (or at an absolute host path, checked too).
struct Scratch {
    base: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("root")).unwrap();
        Self { base }
    }

    fn root(&self) -> std::path::PathBuf {
        self.base.path().join("root")
    }

    fn apply(&self, members: &[Vec<u8>]) -> Result<Unpacked, UnpackError> {
        apply_tar(&members.concat(), &self.root(), &Limits::default())
    }

    /// Nothing beside the root, and no host path the hostile entries name.
    fn assert_contained(&self) {
        let beside: Vec<_> = std::fs::read_dir(self.base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["root"], "something was written beside the target");
        for host in ["/speck-escape", "/tmp/speck-escape", "/etc/speck-escape"] {
            assert!(!Path::new(host).exists(), "{host} was written");
        }
    }
}

fn refused(members: &[Vec<u8>], says: &str) {
    let scratch = Scratch::new();
    let error = scratch.apply(members).expect_err("refused").to_string();
    assert!(error.contains(says), "{error:?} should say {says:?}");
    scratch.assert_contained();
}

#[test]
fn names_that_climb_out_are_refused() {
    refused(&[file("../speck-escape", "x")], "leads outside the image root");
    refused(&[file("a/../../speck-escape", "x")], "leads outside the image root");
    refused(
        &[hardlink("h", "../../../../etc/passwd")],
        "leads outside the image root",
    );
    refused(&[file(".wh...", "")], "a whiteout must name a file");
    refused(&[file("dir/.wh..", "")], "a whiteout must name a file");
}

#[test]
fn absolute_names_and_links_out_stay_inside() {
    let scratch = Scratch::new();
    let unpacked = scratch
        .apply(&[
            file("/speck-escape", "absolute"),
            symlink("to-root", "/"),
            file("to-root/tmp/speck-escape", "through /"),
            symlink("up", "../../../.."),
            file("up/etc/speck-escape", "through .."),
            symlink("etc-link", "/etc"),
            hardlink("h", "etc-link/speck-escape"),
        ])
        .unwrap();
    scratch.assert_contained();
    let root = scratch.root();
    assert_eq!(std::fs::read_to_string(root.join("speck-escape")).unwrap(), "absolute");
    assert_eq!(
        std::fs::read_to_string(root.join("tmp/speck-escape")).unwrap(),
        "through /"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/speck-escape")).unwrap(),
        "through .."
    );
    assert_eq!(std::fs::read_to_string(root.join("h")).unwrap(), "through ..");
    let notes = unpacked.notes.join("\n");
    assert!(notes.contains("absolute name"), "{notes}");
    assert!(
        notes.contains("/tmp/speck-escape goes through a symlink that points outside the root"),
        "{notes}"
    );
    assert!(notes.contains("/etc/speck-escape goes through a symlink"), "{notes}");
}

#[test]
fn hard_links_to_what_is_not_in_the_image_are_refused() {
    refused(
        &[symlink("etc-link", "/etc"), hardlink("h", "etc-link/passwd")],
        "etc-link/passwd, which is not in the image",
    );
    refused(&[hardlink("h", "missing")], "missing, which is not in the image");
}

#[test]
fn bad_names_and_short_data_are_refused() {
    refused(&[member(b"a\0b", b'0', b"", b"x")], "NUL");
    let long = "d/".repeat(2100) + "f";
    refused(&[file(&long, "x")], "Linux paths are shorter than 4096");
    let mut short = file("big", "0123456789");
    short[124..135].copy_from_slice(format!("{:011o}", 1 << 20).as_bytes());
    checksum(&mut short[..512]);
    refused(&[short], "entry \"big\": the layer ends inside its data");
}

#[test]
fn devices_fifos_duplicates_and_whiteouts_follow_engines() {
    let scratch = Scratch::new();
    let unpacked = scratch
        .apply(&[
            device(b"dev/null", b'3', 1, 3),
            device(b"fifo", b'6', 0, 0),
            file("dup", "first"),
            file("dup", "second"),
            file("gone", "lower"),
            file("dir/kept-lower", "x"),
        ])
        .unwrap();
    scratch.assert_contained();
    let root = scratch.root();
    use std::os::unix::fs::FileTypeExt as _;
    assert!(
        std::fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = std::fs::symlink_metadata(root.join("dev/null"));
    let noted = unpacked
        .notes
        .iter()
        .any(|n| n.contains("device node /dev/null skipped: not permitted here"));
    assert!(
        null.is_ok_and(|m| m.file_type().is_char_device()) || noted,
        "{unpacked:?}"
    );
    assert_eq!(std::fs::read_to_string(root.join("dup")).unwrap(), "second");
    // A second layer: whiteouts hide the lower layer's files; its own files stay.
    apply_tar(
        &[file("dir/new", "y"), file("dir/.wh..wh..opq", ""), file(".wh.gone", "")].concat(),
        &root,
        &Limits::default(),
    )
    .unwrap();
    assert!(!root.join("gone").exists());
    assert!(!root.join("dir/kept-lower").exists());
    assert_eq!(std::fs::read_to_string(root.join("dir/new")).unwrap(), "y");
}

#[test]
fn limits_stop_a_layer_that_claims_too_much() {
    let scratch = Scratch::new();
    let limits = Limits { bytes: 5, entries: 10 };
    let error = apply_tar(&file("f", "0123456789"), &scratch.root(), &limits).unwrap_err();
    assert!(error.to_string().contains("more than 5 bytes"), "{error}");
    let many: Vec<Vec<u8>> = (0..11).map(|i| file(&format!("f{i}"), "")).collect();
    let error = apply_tar(&many.concat(), &scratch.root(), &limits).unwrap_err();
    assert!(error.to_string().contains("more than 10 entries"), "{error}");
}

/// Every hostile layer above, its escaping names carrying `token`.
fn hostile_layers(token: &str) -> Vec<Vec<Vec<u8>>> {
    let escape = |prefix: &str| format!("{prefix}{token}");
    vec![
        vec![file(&escape("../"), "x")],
        vec![file(&escape("a/../../"), "x")],
        vec![file(&escape("/"), "absolute")],
        vec![file(&escape("/tmp/"), "absolute")],
        vec![symlink("to-root", "/"), file(&escape("to-root/tmp/"), "through /")],
        vec![symlink("up", "../../../.."), file(&escape("up/etc/"), "through ..")],
        vec![symlink("up", ".."), file(&escape("up/"), "through ..")],
        vec![symlink("etc-link", "/etc"), hardlink("h", &escape("etc-link/"))],
        vec![
            symlink("etc-link", "/etc"),
            hardlink("h", "etc-link/passwd"),
            file("h", "rewritten"),
        ],
        vec![symlink("dir", "/tmp"), file(&escape("dir/"), "x"), file(".wh.dir", "")],
        vec![file(&escape(".wh...//"), ""), file(&escape("../.wh."), "")],
        vec![
            device(escape("/dev/").as_bytes(), b'3', 1, 3),
            device(escape("../").as_bytes(), b'6', 0, 0),
        ],
        vec![
            file("dup", "first"),
            file("dup", "second"),
            symlink("dup", "/etc/passwd"),
            file("dup", "third"),
        ],
    ]
}

/// The host is scanned after every hostile layer is applied: no file anywhere bears
/// the escaping names (outside the scratch areas), and /etc/passwd is untouched.
#[test]
fn a_scan_of_the_host_finds_nothing_written_outside_the_target() {
    let token = format!("speck-escape-{}", std::process::id());
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let scratches: Vec<Scratch> = hostile_layers(&token)
        .iter()
        .map(|members| {
            let scratch = Scratch::new();
            let _ = scratch.apply(members);
            scratch.assert_contained();
            scratch
        })
        .collect();
    let found = std::process::Command::new("find")
        .args(["/", "/tmp", "/dev/shm", "/run", "/var/tmp", "-xdev"])
        .args(["(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o"])
        .args(["-name", &format!("*{token}*"), "-print"])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let outside: Vec<&str> = std::str::from_utf8(&found.stdout)
        .unwrap()
        .lines()
        .filter(|path| !scratches.iter().any(|s| Path::new(path).starts_with(s.base.path())))
        .collect();
    assert!(outside.is_empty(), "written outside the target: {outside:?}");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd, "/etc/passwd changed");
    let inside = std::str::from_utf8(&found.stdout).unwrap().lines().count();
    assert!(
        inside >= 5,
        "the scan finds the contained copies ({inside}): it looks in the right places"
    );
}
