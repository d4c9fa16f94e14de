//! Unpacking any bytes as a layer never panics and never writes outside the target:
//! the target's parent holds only the target afterwards.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let limits = speck::run::unpack::Limits { bytes: 1 << 20, entries: 1000 };
    let _ = speck::run::unpack::apply_tar(bytes, &root, &limits);
    let beside: Vec<_> = std::fs::read_dir(base.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside, ["root"]);
});
