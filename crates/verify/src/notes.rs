//! ELF notes: build id, ABI tag, GNU properties (x86-64 ISA level), Go.
//!
//! Parsed here rather than with goblin's iterator so that every length is
//! checked against the note area and a bad alignment cannot loop or panic.

use goblin::elf::{program_header as ph, section_header as sh};

use crate::parse::Evidence;
use crate::work;

pub(crate) const NT_GNU_ABI_TAG: u32 = 1;
pub(crate) const NT_GNU_BUILD_ID: u32 = 3;
pub(crate) const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
pub(crate) const NT_GO_BUILDID: u32 = 4;
const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;

/// One note.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Note<'a> {
    pub owner: &'a [u8],
    pub n_type: u32,
    pub desc: &'a [u8],
}

/// What the notes say.
#[derive(Clone, Debug, Default)]
pub(crate) struct NoteFacts {
    pub build_id: Option<String>,
    pub gnu_abi_tag: bool,
    pub go_build_id: Option<String>,
    /// Bit mask of GNU_PROPERTY_X86_ISA_1_NEEDED (1 baseline, 2 v2, 4 v3, 8 v4).
    pub x86_isa_needed: Option<u32>,
}

fn u32_at(b: &[u8], at: usize, little: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn align_up(x: usize, a: usize) -> Option<usize> {
    x.checked_add(a - 1).map(|v| v & !(a - 1))
}

/// Notes in one note area (a PT_NOTE segment or SHT_NOTE section).
#[cfg(test)]
pub(crate) fn parse_area(area: &[u8], align: u64, little: bool) -> Vec<Note<'_>> {
    let mut out = Vec::new();
    each_in_area(area, align, little, &mut |n| out.push(n));
    out
}

/// Calls `f` with each note in one note area, in order.
fn each_in_area<'a>(area: &'a [u8], align: u64, little: bool, f: &mut impl FnMut(Note<'a>)) {
    let a = if align == 8 { 8 } else { 4 };
    let mut at = 0usize;
    while at + 12 <= area.len() {
        let (Some(namesz), Some(descsz), Some(n_type)) = (
            u32_at(area, at, little),
            u32_at(area, at + 4, little),
            u32_at(area, at + 8, little),
        ) else {
            break;
        };
        let name_start = at + 12;
        let Some(name_end) = name_start.checked_add(namesz as usize) else {
            break;
        };
        let Some(desc_start) = align_up(name_end, a) else {
            break;
        };
        let Some(desc_end) = desc_start.checked_add(descsz as usize) else {
            break;
        };
        if desc_end > area.len() {
            break;
        }
        let mut owner = &area[name_start..name_end];
        while let [rest @ .., 0] = owner {
            owner = rest;
        }
        work::add(1);
        f(Note {
            owner,
            n_type,
            desc: &area[desc_start..desc_end],
        });
        match align_up(desc_end, a) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
}

/// Calls `f` with every note in the file, from segments and sections. A
/// note in both a PT_NOTE segment and its .note.* section is seen twice,
/// which changes none of the facts [`read`] takes from them.
///
/// Linear in the file size, whatever the file says: sections may overlap
/// each other and the segments, so note areas are parsed only up to a
/// total of twice the file size (real binaries parse each note twice). (An
/// earlier version removed duplicates by comparing each note with all
/// earlier ones: 100k notes took 2.5 s, issue 9.)
pub(crate) fn each_note<'a>(ev: &Evidence<'a>, mut f: impl FnMut(Note<'a>)) {
    let mut budget = (ev.bytes.len() as u64).saturating_mul(2);
    let mut areas: Vec<(&'a [u8], u64)> = Vec::new();
    for s in ev.segments.iter().filter(|s| s.p_type == ph::PT_NOTE) {
        areas.push((ev.segment_bytes(s), s.align));
    }
    for s in ev.sections.iter().filter(|s| s.sh_type == sh::SHT_NOTE) {
        if let Some(bytes) = ev.range(s.offset, s.offset.saturating_add(s.size)) {
            areas.push((bytes, s.align));
        }
    }
    work::add_usize(areas.len());
    for (bytes, align) in areas {
        let Some(left) = budget.checked_sub(bytes.len() as u64) else {
            break;
        };
        budget = left;
        each_in_area(bytes, align, ev.little_endian, &mut f);
    }
}

pub(crate) fn read(ev: &Evidence<'_>) -> NoteFacts {
    let mut f = NoteFacts::default();
    each_note(ev, |n| match (n.owner, n.n_type) {
        (b"GNU", NT_GNU_BUILD_ID) if f.build_id.is_none() && !n.desc.is_empty() => {
            f.build_id = Some(n.desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        (b"GNU", NT_GNU_ABI_TAG) => f.gnu_abi_tag = true,
        (b"GNU", NT_GNU_PROPERTY_TYPE_0) => {
            if let Some(isa) = x86_isa_needed(n.desc, ev.class64, ev.little_endian) {
                f.x86_isa_needed = Some(f.x86_isa_needed.unwrap_or(0) | isa);
            }
        }
        (b"Go", NT_GO_BUILDID) => {
            f.go_build_id = Some(String::from_utf8_lossy(n.desc).into_owned());
        }
        _ => {}
    });
    f
}

/// The X86_ISA_1_NEEDED bits in a NT_GNU_PROPERTY_TYPE_0 descriptor.
fn x86_isa_needed(desc: &[u8], class64: bool, little: bool) -> Option<u32> {
    let a = if class64 { 8 } else { 4 };
    let mut at = 0usize;
    while at + 8 <= desc.len() {
        let pr_type = u32_at(desc, at, little)?;
        let size = u32_at(desc, at + 4, little)? as usize;
        let data = at + 8;
        if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED && size >= 4 {
            return u32_at(desc, data, little);
        }
        at = align_up(data.checked_add(size)?, a)?;
    }
    None
}

/// `x86-64-v3` for the highest level bit set, or None for baseline.
pub(crate) fn isa_level_name(bits: u32) -> Option<&'static str> {
    if bits & 8 != 0 {
        Some("x86-64-v4")
    } else if bits & 4 != 0 {
        Some("x86-64-v3")
    } else if bits & 2 != 0 {
        Some("x86-64-v2")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_build_id_and_stops_on_garbage() {
        let mut area = Vec::new();
        area.extend_from_slice(&4u32.to_le_bytes());
        area.extend_from_slice(&3u32.to_le_bytes());
        area.extend_from_slice(&3u32.to_le_bytes());
        area.extend_from_slice(b"GNU\0");
        area.extend_from_slice(&[0xab, 0xcd, 0xef, 0]);
        area.extend_from_slice(&u32::MAX.to_le_bytes());
        area.extend_from_slice(&u32::MAX.to_le_bytes());
        area.extend_from_slice(&1u32.to_le_bytes());
        let notes = parse_area(&area, 4, true);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].owner, b"GNU");
        assert_eq!(notes[0].desc, &[0xab, 0xcd, 0xef]);
    }

    #[test]
    fn reads_isa_level_property() {
        let mut desc = Vec::new();
        desc.extend_from_slice(&0xc000_0002u32.to_le_bytes()); // some other property
        desc.extend_from_slice(&4u32.to_le_bytes());
        desc.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        desc.extend_from_slice(&GNU_PROPERTY_X86_ISA_1_NEEDED.to_le_bytes());
        desc.extend_from_slice(&4u32.to_le_bytes());
        desc.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(x86_isa_needed(&desc, true, true), Some(5));
        assert_eq!(isa_level_name(5), Some("x86-64-v3"));
        assert_eq!(isa_level_name(1), None);
    }
}
