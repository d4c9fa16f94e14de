//! Replays the cargo-fuzz corpus of `fuzz/` (inputs that reached new code, and every
//! crash once found) through the readers the fuzz targets exercise, with the same
//! checks, so a regression fails `cargo test` without a fuzzer installed.

use speck::collect::{closure::ElfDeps, executable::Executable, ld_cache, strip};
use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        inputs.len() > 10,
        "{} holds only {} inputs",
        dir.display(),
        inputs.len()
    );
    inputs
}

#[test]
fn elf_readers_survive_the_corpus() {
    for bytes in corpus("elf_deps") {
        let _ = ElfDeps::read(&bytes);
        let _ = Executable::of(&bytes);
    }
}

#[test]
fn ld_cache_reads_back_what_it_writes_for_the_corpus() {
    let key = |e: &ld_cache::CacheEntry| (e.name.clone(), e.path.clone(), e.flags, e.hwcap);
    for bytes in corpus("ld_cache") {
        let mut entries: Vec<_> = ld_cache::read(&bytes).iter().map(key).collect();
        let mut again: Vec<_> = ld_cache::read(&ld_cache::write(&ld_cache::read(&bytes)))
            .iter()
            .map(key)
            .collect();
        entries.sort();
        again.sort();
        assert_eq!(entries, again);
    }
}

#[test]
fn strip_never_grows_or_panics_on_the_corpus() {
    for bytes in corpus("strip") {
        if let Some(stripped) = strip::strip(&bytes) {
            assert!(stripped.len() < bytes.len());
        }
    }
}

#[test]
fn unpack_stays_inside_its_target_for_the_corpus() {
    use speck::run::unpack::{Limits, apply_tar};
    for bytes in corpus("unpack") {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let limits = Limits {
            bytes: 1 << 20,
            entries: 1000,
        };
        let _ = apply_tar(&bytes, &root, &limits);
        let beside: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["root"]);
    }
}
