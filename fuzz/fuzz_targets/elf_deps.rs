//! ELF dependency reading (goblin under speck's closure) never panics on any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = speck::collect::closure::ElfDeps::read(bytes);
    let _ = speck::collect::executable::Executable::of(bytes);
});
