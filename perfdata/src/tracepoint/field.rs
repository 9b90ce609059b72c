//! One field of a tracepoint format ([`Field`]), its value in a raw record ([`FieldValue`]), and
//! how a recording lays raw data out ([`RawLayout`]).

use crate::endian::Endian;
use crate::record::until_nul;

/// How the raw data of one recording is laid out: the recording machine's byte order and the
/// size of its C `long` (what `%ld`, `%lx`, `%p` and pointer fields mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLayout {
    /// Byte order of the raw records.
    pub endian: Endian,
    /// `sizeof(long)` in bytes (4 or 8).
    pub long_size: u8,
}

impl RawLayout {
    /// Little-endian with 8-byte longs (x86-64, aarch64).
    pub fn little_endian_64() -> Self {
        RawLayout {
            endian: Endian::Little,
            long_size: 8,
        }
    }

    /// The layout of the machine this code runs on (for live tracepoint records).
    pub fn native() -> Self {
        RawLayout {
            endian: Endian::NATIVE,
            long_size: u8::try_from(std::mem::size_of::<usize>()).unwrap_or(8),
        }
    }
}

/// How a field's bytes are found in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A number (or pointer) of `size` bytes at `offset`.
    Scalar,
    /// A fixed array (`char comm[16]`) of `len` elements at `offset`.
    Array {
        /// Elements, as declared (0 when the declaration gives no number).
        len: usize,
    },
    /// `__data_loc TYPE[] name`: a u32 at `offset` whose low 16 bits are the data's offset in
    /// the record and whose high 16 bits its length.
    DataLoc,
    /// `__rel_loc TYPE[] name`: as [`FieldKind::DataLoc`], with the offset counted from the end
    /// of the field.
    RelLoc,
}

/// One `field:` line of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name, e.g. `prev_comm`.
    pub name: String,
    /// Declared type without the name and array brackets, e.g. `char`, `unsigned long`,
    /// `const char *`; `__data_loc` / `__rel_loc` are dropped (see [`Field::kind`]).
    pub type_name: String,
    /// Offset in the record.
    pub offset: usize,
    /// Size in the record (4 for a `__data_loc` field: its locator).
    pub size: usize,
    /// The `signed:` flag.
    pub signed: bool,
    /// Scalar, array or dynamic data.
    pub kind: FieldKind,
    /// The C declaration as tracefs writes it, e.g. `char prev_comm[16]` or
    /// `__data_loc char[] name` (what `perf list` and `kprof list` show).
    pub declaration: String,
}

impl Field {
    /// Its type has a `*`: the value is an address.
    pub fn is_pointer(&self) -> bool {
        self.type_name.contains('*')
    }

    /// An array (fixed or dynamic) of characters: its value is text.
    pub fn is_string(&self) -> bool {
        self.kind != FieldKind::Scalar
            && ["char", "u8", "s8"]
                .iter()
                .any(|t| self.type_name.contains(t))
    }

    /// Its type names a `long` (libtraceevent prints such unsigned values in hex).
    pub(super) fn is_long(&self) -> bool {
        self.type_name.contains("long")
    }

    /// The bytes of the field's data in `raw`: the scalar or array itself, or what a data
    /// locator points at. `None` when they lie outside the record.
    pub fn bytes<'r>(&self, raw: &'r [u8], layout: RawLayout) -> Option<&'r [u8]> {
        let own = raw.get(self.offset..self.offset.checked_add(self.size)?)?;
        match self.kind {
            FieldKind::Scalar | FieldKind::Array { .. } => Some(own),
            FieldKind::DataLoc | FieldKind::RelLoc => {
                let locator = u64::from(layout.endian.u32(own.get(..4)?.try_into().ok()?));
                let mut start = usize::try_from(locator & 0xffff).ok()?;
                let len = usize::try_from(locator >> 16).ok()?;
                if self.kind == FieldKind::RelLoc {
                    start = start.checked_add(self.offset + self.size)?;
                }
                raw.get(start..start.checked_add(len)?)
            }
        }
    }

    /// The field's value in `raw`.
    pub fn value<'r>(&self, raw: &'r [u8], layout: RawLayout) -> FieldValue<'r> {
        let Some(bytes) = self.bytes(raw, layout) else {
            return FieldValue::Absent;
        };
        if self.kind != FieldKind::Scalar {
            return if self.is_string() {
                FieldValue::Text(until_nul(bytes))
            } else {
                FieldValue::Bytes(bytes)
            };
        }
        match read_uint(bytes, layout) {
            Some(value) if self.signed => FieldValue::Signed(sign_extend(value, bytes.len())),
            Some(value) => FieldValue::Unsigned(value),
            None => FieldValue::Bytes(bytes),
        }
    }
}

/// A field's value in one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'r> {
    /// A signed number (sign-extended from the field's size).
    Signed(i64),
    /// An unsigned number or an address.
    Unsigned(u64),
    /// A character array or `__data_loc char[]`, up to its first NUL.
    Text(&'r [u8]),
    /// Any other array, or a scalar of an unusual size, as raw bytes.
    Bytes(&'r [u8]),
    /// The field's bytes lie outside the record.
    Absent,
}

/// An event's fields in declaration order: the common ones, then its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldList<'e> {
    pub(crate) common: &'e [Field],
    pub(crate) own: &'e [Field],
}

impl<'e> FieldList<'e> {
    /// Every field, common ones first.
    pub(crate) fn all(self) -> impl Iterator<Item = &'e Field> {
        self.common.iter().chain(self.own)
    }
}

/// An unsigned number of 1, 2, 4 or 8 bytes.
pub(crate) fn read_uint(bytes: &[u8], layout: RawLayout) -> Option<u64> {
    let endian = layout.endian;
    Some(match bytes.len() {
        1 => u64::from(*bytes.first()?),
        2 => u64::from(endian.u16(bytes.try_into().ok()?)),
        4 => u64::from(endian.u32(bytes.try_into().ok()?)),
        8 => endian.u64(bytes.try_into().ok()?),
        _ => return None,
    })
}

/// `value`'s low `size` bytes as a signed number.
pub(crate) fn sign_extend(value: u64, size: usize) -> i64 {
    match size {
        1 => value as u8 as i8 as i64,
        2 => value as u16 as i16 as i64,
        4 => value as u32 as i32 as i64,
        _ => value as i64,
    }
}
