//! MessagePack (a tap payload) to generic values, summarizing large fields as it goes.

use serde_json::{Map, Number, Value};

use super::{
    CHILDREN, Detail, MEASURED_ELEMENTS, SHOWN_BYTES, SHOWN_ENTRIES, readable_bytes, summary,
};
use crate::FormatError;
use crate::bounds::{Item, next_item};

fn damaged(detail: &str) -> FormatError {
    FormatError::Corrupt {
        detail: detail.to_owned(),
    }
}

/// The generic value of one MessagePack value (a verified, bounds-checked payload).
pub fn from_msgpack(bytes: &[u8], detail: Detail) -> Result<Value, FormatError> {
    let mut reader = Reader {
        bytes,
        position: 0,
        detail,
    };
    let value = reader.value(None)?;
    if reader.position != bytes.len() {
        return Err(damaged("unexpected bytes after the payload"));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    detail: Detail,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| damaged("the data ends inside a value"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn number(&mut self, width: usize) -> Result<u64, FormatError> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    }

    /// How many entries the array or map that `marker` starts holds: the low four bits of a
    /// fix marker, or the 16-bit number after `wide` (the array's or map's 16-bit marker), or
    /// the 32-bit one after the marker that follows `wide`.
    fn count(&mut self, marker: u8, wide: u8) -> Result<u64, FormatError> {
        if marker == wide {
            self.number(2)
        } else if marker == wide + 1 {
            self.number(4)
        } else {
            Ok(u64::from(marker & 0x0f))
        }
    }

    /// The end of the value that starts at `start`, without decoding it.
    fn end_of(&self, start: usize) -> Result<usize, FormatError> {
        let mut position = start;
        let mut left: u64 = 1;
        while left > 0 {
            left -= 1;
            match next_item(self.bytes, &mut position)? {
                Item::Map(pairs) => left = left.saturating_add(pairs.saturating_mul(2)),
                Item::Array(count) => left = left.saturating_add(count),
                _ => {}
            }
        }
        Ok(position)
    }

    fn summarized(&mut self, start: usize, entries: Option<u64>) -> Result<Value, FormatError> {
        let end = self.end_of(start)?;
        let encoded = &self.bytes[start..end];
        self.position = end;
        Ok(summary(entries, encoded.len() as u64, encoded))
    }

    /// True if every element of the array whose elements start at `position` is a map.
    fn all_maps(&self, mut position: usize, count: u64) -> Result<bool, FormatError> {
        for _ in 0..count {
            let marker = *self
                .bytes
                .get(position)
                .ok_or_else(|| damaged("the data ends inside a value"))?;
            if !matches!(marker, 0x80..=0x8f | 0xde | 0xdf) {
                return Ok(false);
            }
            position = self.end_of(position)?;
        }
        Ok(true)
    }

    fn value(&mut self, key: Option<&str>) -> Result<Value, FormatError> {
        let start = self.position;
        let marker = self.take(1)?[0];
        let summaries = self.detail == Detail::Summaries;
        Ok(match marker {
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0x00..=0x7f => Value::from(marker),
            0xe0..=0xff => Value::from(i64::from(marker as i8)),
            0xcc => Value::from(self.number(1)?),
            0xcd => Value::from(self.number(2)?),
            0xce => Value::from(self.number(4)?),
            0xcf => Value::from(self.number(8)?),
            0xd0 => Value::from(i64::from(self.number(1)? as u8 as i8)),
            0xd1 => Value::from(i64::from(self.number(2)? as u16 as i16)),
            0xd2 => Value::from(i64::from(self.number(4)? as u32 as i32)),
            0xd3 => Value::from(self.number(8)? as i64),
            0xca => {
                let bits = self.number(4)? as u32;
                float(f64::from(f32::from_bits(bits)))
            }
            0xcb => float(f64::from_bits(self.number(8)?)),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
                let len = match marker {
                    0xd9 => self.number(1)?,
                    0xda => self.number(2)?,
                    0xdb => self.number(4)?,
                    _ => u64::from(marker & 0x1f),
                } as usize;
                if summaries && len > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, None);
                }
                let bytes = self.take(len)?;
                Value::String(String::from_utf8_lossy(bytes).into_owned())
            }
            0xc4..=0xc6 => {
                let len = self.number(1 << (marker - 0xc4))? as usize;
                if summaries && len > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, None);
                }
                readable_bytes(self.take(len)?)
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                let len = match marker {
                    0xd4 => 1,
                    0xd5 => 2,
                    0xd6 => 4,
                    0xd7 => 8,
                    0xd8 => 16,
                    0xc7 => self.number(1)? as usize,
                    0xc8 => self.number(2)? as usize,
                    _ => self.number(4)? as usize,
                };
                let kind = self.take(1)?[0] as i8;
                let data = self.take(len)?;
                let mut map = Map::new();
                map.insert("ext".into(), Value::from(kind));
                map.insert("data".into(), readable_bytes(data));
                Value::Object(map)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let count = self.count(marker, 0xdc)?;
                if summaries && count > MEASURED_ELEMENTS {
                    let summarize = if key == Some(CHILDREN) {
                        !self.all_maps(self.position, count)?
                    } else {
                        self.end_of(start)? - start > SHOWN_BYTES
                    };
                    if summarize {
                        self.position = start;
                        return self.summarized(start, Some(count));
                    }
                }
                let mut items = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    items.push(self.value(None)?);
                }
                Value::Array(items)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let pairs = self.count(marker, 0xde)?;
                if summaries && pairs > SHOWN_ENTRIES && self.end_of(start)? - start > SHOWN_BYTES {
                    self.position = start;
                    return self.summarized(start, Some(pairs));
                }
                let mut map = Map::new();
                for _ in 0..pairs {
                    let name = self.key()?;
                    let item = self.value(Some(&name))?;
                    map.insert(name, item);
                }
                Value::Object(map)
            }
            0xc1 => return Err(damaged("an invalid MessagePack marker (0xc1)")),
        })
    }

    /// A map key as text: strings as they are, numbers in decimal, anything else in its
    /// readable form.
    fn key(&mut self) -> Result<String, FormatError> {
        let everything = Reader {
            bytes: self.bytes,
            position: self.position,
            detail: Detail::Everything,
        };
        let mut reader = everything;
        let key = reader.value(None)?;
        self.position = reader.position;
        Ok(match key {
            Value::String(text) => text,
            other => other.to_string(),
        })
    }
}

fn float(number: f64) -> Value {
    Number::from_f64(number).map_or(Value::Null, Value::Number)
}
