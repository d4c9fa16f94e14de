//! Stripping never panics, and a stripped file is never larger than the original.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Some(stripped) = speck::collect::strip::strip(bytes) {
        assert!(stripped.len() < bytes.len());
    }
});
