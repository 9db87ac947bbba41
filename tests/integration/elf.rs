//! Just enough of the ELF format to prove a binary is static: no interpreter (PT_INTERP) and no
//! shared library (DT_NEEDED), on x86_64. Plain std: the headers are a few fixed offsets.

use std::path::Path;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const EM_X86_64: u16 = 62;

/// What the program headers and the dynamic section say about linking.
#[derive(Debug)]
pub struct Linking {
    pub machine: u16,
    pub has_interpreter: bool,
    /// Number of DT_NEEDED entries (shared libraries the loader must find).
    pub needed: usize,
}

impl Linking {
    pub fn is_static_x86_64(&self) -> bool {
        self.machine == EM_X86_64 && !self.has_interpreter && self.needed == 0
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Reads a 64-bit little-endian ELF file.
pub fn linking(path: &Path) -> Linking {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!(b[4], 2, "64-bit ELF expected");
    assert_eq!(b[5], 1, "little-endian ELF expected");
    let machine = u16_at(&b, 0x12);
    let phoff = u64_at(&b, 0x20) as usize;
    let phentsize = u16_at(&b, 0x36) as usize;
    let phnum = u16_at(&b, 0x38) as usize;
    let mut has_interpreter = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(&b, ph) {
            PT_INTERP => has_interpreter = true,
            PT_DYNAMIC => {
                let offset = u64_at(&b, ph + 8) as usize;
                let size = u64_at(&b, ph + 32) as usize;
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(&b, entry) {
                        DT_NULL => break,
                        DT_NEEDED => needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Linking {
        machine,
        has_interpreter,
        needed,
    }
}
