//! Unpacking any bytes as a layer never panics and never writes outside the target:
//! afterwards the target's parent holds only the target, and the temporary directory
//! (run the fuzzer with a TMPDIR of its own) and `/` list what they listed before.
#![no_main]

fn listing(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    names
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (tmp, host_root) = (listing(&std::env::temp_dir()), listing(std::path::Path::new("/")));
    let limits = speck::run::unpack::Limits { bytes: 1 << 20, entries: 1000 };
    let _ = speck::run::unpack::apply_tar(bytes, &root, &limits);
    assert_eq!(listing(base.path()), ["root"]);
    assert_eq!(listing(&std::env::temp_dir()), tmp);
    assert_eq!(listing(std::path::Path::new("/")), host_root);
});
