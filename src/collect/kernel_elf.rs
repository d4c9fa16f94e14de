//! An ELF file as Linux's loader (`fs/binfmt_elf.c`) reads it, which is what decides
//! whether a program runs, rather than as the ELF specification describes it.
//!
//! The kernel checks the magic, `e_type`, `e_machine` and the program header table, and
//! nothing else: not `EI_CLASS`, `EI_DATA`, `e_version`, `e_ehsize` or section headers.
//! Tiny programs (speck's own among them) overlap their headers and reuse those fields;
//! general ELF parsers refuse such files, this reader does not.

/// `PT_LOAD`: a segment to map.
pub const PT_LOAD: u32 = 1;
/// `PT_INTERP`: the program interpreter's path.
pub const PT_INTERP: u32 = 3;

const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

/// What the loader sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadView {
    /// `e_machine`.
    pub machine: u16,
    /// Whether the 64-bit loader reads it.
    pub wide: bool,
    /// Whether it is big-endian.
    pub big_endian: bool,
    /// `e_type`.
    pub kind: u16,
    /// `e_entry`.
    pub entry: u64,
    /// The program headers.
    pub segments: Vec<Segment>,
    /// The `PT_INTERP` path, if any.
    pub interpreter: Option<String>,
}

/// One program header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags` (read 4, write 2, execute 1).
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// Reads `bytes` as the loader would, or says why the loader would refuse it.
pub fn read(bytes: &[u8]) -> Result<LoadView, String> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err("it has no ELF magic".into());
    }
    // The loader looks at the first bytes of the file with zeros after its end.
    let mut header = [0u8; 64];
    header[..bytes.len().min(64)].copy_from_slice(&bytes[..bytes.len().min(64)]);
    let big_endian = header[5] == 2;
    let field = |at: usize, len: usize| int(&header, at, len, big_endian);
    let machine = field(18, 2) as u16;
    // The loader is chosen by machine: x86 and x86-64 programs are read by the 32- and
    // 64-bit loaders whatever EI_CLASS says (only x32 marks an x86-64 program 32-bit).
    let wide = match machine {
        EM_386 => false,
        EM_X86_64 => header[4] != 1,
        _ => header[4] == 2,
    };
    let word = if wide { 8 } else { 4 };
    let (entry, phoff) = (field(24, word), field(24 + word, word));
    let at = if wide { 54 } else { 42 };
    let (phentsize, phnum) = (field(at, 2) as usize, field(at + 2, 2) as usize);
    let expected = if wide { 56 } else { 32 };
    if phentsize != expected {
        return Err(format!("its program header size is {phentsize}, not {expected}"));
    }
    if phnum == 0 || phnum * phentsize > 65536 {
        return Err(format!("it has {phnum} program headers"));
    }
    let table = usize::try_from(phoff)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(phnum * phentsize)?))
        .ok_or("its program headers run past the end of the file")?;
    let segments: Vec<Segment> = table
        .chunks(phentsize)
        .map(|p| {
            let u = |at, len| int(p, at, len, big_endian);
            if wide {
                Segment {
                    kind: u(0, 4) as u32,
                    flags: u(4, 4) as u32,
                    offset: u(8, 8),
                    vaddr: u(16, 8),
                    filesz: u(32, 8),
                    memsz: u(40, 8),
                }
            } else {
                Segment {
                    kind: u(0, 4) as u32,
                    offset: u(4, 4),
                    vaddr: u(8, 4),
                    filesz: u(16, 4),
                    memsz: u(20, 4),
                    flags: u(24, 4) as u32,
                }
            }
        })
        .collect();
    let interpreter = segments.iter().find(|s| s.kind == PT_INTERP).map(|s| {
        let path = usize::try_from(s.offset)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(s.filesz as usize)?))
            .unwrap_or_default();
        String::from_utf8_lossy(path.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
    });
    Ok(LoadView {
        machine,
        wide,
        big_endian,
        kind: field(16, 2) as u16,
        entry,
        segments,
        interpreter,
    })
}

/// The `len`-byte unsigned integer at `at`, in the file's byte order.
fn int(bytes: &[u8], at: usize, len: usize, big_endian: bool) -> u64 {
    let field = &bytes[at..at + len];
    let fold = |value: u64, byte: &u8| value << 8 | u64::from(*byte);
    if big_endian {
        field.iter().fold(0, fold)
    } else {
        field.iter().rev().fold(0, fold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_goblin_reads_for_ordinary_programs() {
        let program = std::fs::read("/bin/ls").unwrap();
        let view = read(&program).unwrap();
        let elf = goblin::elf::Elf::parse(&program).unwrap();
        assert_eq!(view.machine, elf.header.e_machine);
        assert_eq!(view.entry, elf.entry);
        assert_eq!(view.segments.len(), elf.program_headers.len());
        assert_eq!(view.interpreter.as_deref(), elf.interpreter);
        assert!(view.wide && !view.big_endian);
    }

    #[test]
    fn refuses_what_the_kernel_refuses() {
        assert!(read(b"MZ").is_err());
        let mut truncated = std::fs::read("/bin/ls").unwrap();
        truncated.truncate(100);
        assert!(read(&truncated).unwrap_err().contains("past the end"));
    }
}
