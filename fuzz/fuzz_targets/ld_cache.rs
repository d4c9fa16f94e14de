//! ld.so.cache reading never panics, and what it reads writes back to the same entries.
#![no_main]
use speck::collect::ld_cache;
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let entries = ld_cache::read(bytes);
    let again = ld_cache::read(&ld_cache::write(&entries));
    assert_eq!(entries.len(), again.len());
});
