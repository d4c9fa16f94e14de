//! Recognising what a file is before it becomes an entrypoint: a Linux ELF program (for
//! which platform, static or needing an interpreter), or something that cannot run in
//! a scratch image (a macOS or Windows program, a script, a library).

use crate::image::Platform;
use goblin::elf::{Elf, header};

/// What a file is, as far as running it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executable {
    /// A Linux ELF file.
    Elf(ElfFacts),
    /// A macOS Mach-O program or universal binary.
    MachO,
    /// A Windows PE program.
    Pe,
    /// A `#!` script and its interpreter path.
    Script(String),
    /// Anything else: data, text, an archive.
    Data,
}

/// What speck needs to know about an ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfFacts {
    /// The platform it runs on, if speck knows the machine.
    pub platform: Option<Platform>,
    /// `e_machine`, for messages when the platform is unknown.
    pub machine: u16,
    /// A human name for the machine and class (`x86-64`, `AArch64`, ...).
    pub machine_name: String,
    /// The program interpreter (`PT_INTERP`); `None` for static programs.
    pub interpreter: Option<String>,
    /// `ET_EXEC` or `ET_DYN`: something the kernel can start.
    pub runnable: bool,
    /// A shared library (it has a `DT_SONAME`), even if it can also be run.
    pub library: bool,
    /// Why goblin could not read it, if the file is damaged.
    pub damaged: Option<String>,
    /// Whether hosts of other architectures run it under emulation: its first bytes match
    /// the binfmt_misc entry emulators register for its machine ([`EMULATOR_ENTRIES`]);
    /// `None` for machines without one here.
    pub emulated_elsewhere: Option<bool>,
}

/// The binfmt_misc entries through which a host runs other architectures' programs:
/// `e_machine`, then the magic and the mask of the file's first 20 bytes. qemu's
/// `scripts/qemu-binfmt-conf.sh`, which docker/setup-qemu-action and tonistiigi/binfmt
/// register, and Apple's Rosetta for x86-64 have these; Debian's x86 entries also compare
/// the high bits of `EI_OSABI` (0xfc at byte 7), so the masks here do too: a file that
/// matches them matches every one. All want `e_ident[8..16]` zero, where tiny programs
/// like to put code.
pub const EMULATOR_ENTRIES: [(u16, &[u8; 20], &[u8; 20]); 3] = [
    (
        header::EM_X86_64,
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
        b"\xff\xff\xff\xff\xff\xfe\xfe\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    (
        header::EM_386,
        b"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00",
        b"\xff\xff\xff\xff\xff\xfe\xfe\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    (
        header::EM_AARCH64,
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
];

/// Whether `bytes`, an ELF file for `machine`, matches the emulators' entry for it: as
/// binfmt_misc compares, the bits the mask keeps equal the magic's.
fn emulated_elsewhere(machine: u16, bytes: &[u8]) -> Option<bool> {
    let (_, magic, mask) = EMULATOR_ENTRIES.iter().find(|(entry, ..)| *entry == machine)?;
    let head = bytes.iter().chain(std::iter::repeat(&0)).take(20);
    Some(
        head.zip(magic.iter().zip(mask.iter()))
            .all(|(byte, (magic, mask))| (byte ^ magic) & mask == 0),
    )
}

impl Executable {
    /// Classifies a file from its contents.
    pub fn of(bytes: &[u8]) -> Self {
        match bytes {
            [0x7f, b'E', b'L', b'F', ..] => Executable::Elf(elf_facts(bytes)),
            [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..] | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..] => Executable::MachO,
            // 0xcafebabe is also a Java class; a universal binary has few architectures,
            // a class file a major version of 45 or more.
            [0xca, 0xfe, 0xba, 0xbe, a, b, c, d, ..] if u32::from_be_bytes([*a, *b, *c, *d]) < 45 => Executable::MachO,
            [b'M', b'Z', ..] => Executable::Pe,
            [b'#', b'!', rest @ ..] => {
                let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line);
                Executable::Script(line.split_whitespace().next().unwrap_or_default().to_owned())
            }
            _ => Executable::Data,
        }
    }

    /// Whether this is a program one would run (not a library, not data).
    pub fn is_program(&self) -> bool {
        match self {
            Executable::Elf(facts) => facts.runnable && !facts.library,
            Executable::MachO | Executable::Pe | Executable::Script(_) => true,
            Executable::Data => false,
        }
    }
}

/// Facts as the kernel's loader sees them (see [`super::kernel_elf`]); goblin, which
/// refuses the overlapped headers tiny programs use, only adds whether it is a library.
fn elf_facts(bytes: &[u8]) -> ElfFacts {
    let view = match super::kernel_elf::read(bytes) {
        Ok(view) => view,
        Err(why) => {
            let machine = bytes.get(18..20).map_or(0, |m| u16::from_le_bytes([m[0], m[1]]));
            return ElfFacts {
                platform: None,
                machine,
                machine_name: header::machine_to_str(machine).to_owned(),
                interpreter: None,
                runnable: false,
                library: false,
                damaged: Some(why),
                emulated_elsewhere: emulated_elsewhere(machine, bytes),
            };
        }
    };
    ElfFacts {
        platform: platform_of(view.machine, view.wide, !view.big_endian),
        machine: view.machine,
        machine_name: format!(
            "{} {}",
            header::machine_to_str(view.machine),
            if view.wide { "64-bit" } else { "32-bit" }
        ),
        interpreter: view.interpreter,
        runnable: matches!(view.kind, header::ET_EXEC | header::ET_DYN),
        library: Elf::parse(bytes).is_ok_and(|elf| elf.soname.is_some()),
        damaged: None,
        emulated_elsewhere: emulated_elsewhere(view.machine, bytes),
    }
}

/// The OCI platform of an ELF machine, class and byte order.
fn platform_of(machine: u16, is_64: bool, little: bool) -> Option<Platform> {
    let architecture = match (machine, is_64, little) {
        (header::EM_X86_64, true, true) => "amd64",
        (header::EM_386, false, true) => "386",
        (header::EM_AARCH64, true, true) => "arm64",
        (header::EM_ARM, false, true) => "arm",
        (header::EM_RISCV, true, true) => "riscv64",
        (header::EM_PPC64, true, true) => "ppc64le",
        (header::EM_PPC64, true, false) => "ppc64",
        (header::EM_S390, true, false) => "s390x",
        (258, true, true) => "loong64", // EM_LOONGARCH
        (header::EM_MIPS, true, true) => "mips64le",
        (header::EM_MIPS, false, true) => "mipsle",
        _ => return None,
    };
    Some(Platform::linux(architecture).with_default_variant())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_hello_is_a_static_amd64_program() {
        let Executable::Elf(facts) = Executable::of(&crate::forge::hello::program(crate::forge::Arch::Amd64, b"hi", 0))
        else {
            panic!("not ELF");
        };
        assert_eq!(facts.platform, Some(Platform::linux("amd64")));
        assert_eq!(facts.interpreter, None);
        assert!(facts.runnable && !facts.library);
    }

    #[test]
    fn foreign_programs_and_scripts_are_recognised() {
        assert_eq!(Executable::of(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]), Executable::MachO);
        assert_eq!(Executable::of(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]), Executable::MachO);
        assert_eq!(Executable::of(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), Executable::Data);
        assert_eq!(Executable::of(b"MZ\x90\0"), Executable::Pe);
        assert_eq!(
            Executable::of(b"#! /bin/sh -e\necho"),
            Executable::Script("/bin/sh".into())
        );
        assert_eq!(Executable::of(b"plain"), Executable::Data);
        assert!(matches!(
            Executable::of(b"\x7fELF\x02"),
            Executable::Elf(ElfFacts { damaged: Some(_), .. })
        ));
    }
}
