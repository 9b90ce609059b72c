//! COMPRESSED (81) and COMPRESSED2 (83) records: one zstd stream spread over many records, decoded
//! up front into a single owned buffer of plain records. A record may span chunks, so decoded bytes
//! wait in `pending` until a whole record is there (as perf's `decomp_last` does).
//!
//! perf flushes its zstd stream after each chunk (`ZSTD_flushStream`) and never ends the frame,
//! so every perf file stops inside a zstd frame, at a block boundary: all its records decode.
//! Only a stream that stops inside a block (or a frame header) has lost data.

use std::io;

use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use crate::endian::{Cursor, Endian};
use crate::error::{Error, Result};
use crate::kinds::record as rk;

/// Bytes of decompressed data allowed before any compressed input is counted.
const BASE_ALLOWANCE: u64 = 16 << 20;
/// Decompressed bytes allowed per compressed byte seen so far.
const MAX_RATIO: u64 = 4096;
/// zstd's block header size (`ZSTD_blockHeaderSize`). Between two blocks of an open frame,
/// `ZSTD_decompressStream` asks for exactly this much input next; inside a block or a frame
/// header it asks for something else (the rest of the block plus the next block header).
const ZSTD_BLOCK_HEADER_SIZE: usize = 3;

/// The result of expanding a record stream.
pub(crate) struct Expanded {
    /// Plain records in stream order.
    pub(crate) bytes: Vec<u8>,
    /// COMPRESSED/COMPRESSED2 records seen.
    pub(crate) compressed_records: u64,
    /// Compressed payload bytes.
    pub(crate) compressed_bytes: u64,
    /// Bytes zstd produced.
    pub(crate) decompressed_bytes: u64,
    /// The zstd stream stopped inside a block or frame header: compressed data is missing.
    /// (Stopping between two blocks of an open frame, as every perf file does, is not this.)
    pub(crate) stopped_inside_block: bool,
    /// Decoded bytes left over that never formed a whole record.
    pub(crate) dangling_bytes: usize,
}

/// Bytes that follow a record beyond its header `size` (AUXTRACE data, pipe TRACING_DATA).
pub(crate) fn trailing_payload(kind: u32, body: &[u8], endian: Endian) -> u64 {
    let mut c = Cursor::new(body, 0, endian);
    match kind {
        rk::AUXTRACE => c.u64("auxtrace size").unwrap_or(0),
        rk::HEADER_TRACING_DATA => u64::from(c.u32("tracing_data size").unwrap_or(0)),
        _ => 0,
    }
}

/// The compressed payload of a COMPRESSED / COMPRESSED2 record body.
fn payload(kind: u32, body: &[u8], body_offset: u64, endian: Endian) -> Result<&[u8]> {
    if kind == rk::COMPRESSED2 {
        let mut c = Cursor::new(body, body_offset, endian);
        let size = c.u64("compressed2 data_size")?;
        c.bytes_u64(size, "compressed2 data")
    } else {
        Ok(body)
    }
}

/// Moves every whole record at the front of `pending` to `out`. Returns false when a record
/// header is malformed: then everything is moved, for the record iterator to report.
fn drain_whole_records(pending: &mut Vec<u8>, out: &mut Vec<u8>, endian: Endian) -> bool {
    let mut used = 0usize;
    loop {
        let rest = pending.get(used..).unwrap_or(&[]);
        let mut c = Cursor::new(rest, 0, endian);
        let (Ok(kind), Ok(_misc), Ok(size)) = (c.u32("header"), c.u16("header"), c.u16("header"))
        else {
            break;
        };
        if size < 8 {
            out.extend_from_slice(rest);
            pending.clear();
            return false;
        }
        let body = rest.get(8..usize::from(size)).unwrap_or(&[]);
        let total = u64::from(size).saturating_add(trailing_payload(kind, body, endian));
        match usize::try_from(total).ok().and_then(|t| rest.get(..t)) {
            Some(record) => {
                out.extend_from_slice(record);
                used += record.len();
            }
            None => break,
        }
    }
    pending.drain(..used);
    true
}

fn zstd_error(offset: u64, e: io::Error) -> Error {
    Error::Decompress {
        offset,
        message: e.to_string(),
    }
}

/// Splits the first record off `rest`: `(kind, body, whole record incl. trailing payload)`.
fn split_record(rest: &[u8], endian: Endian) -> Option<(u32, &[u8], &[u8])> {
    let mut c = Cursor::new(rest, 0, endian);
    let kind = c.u32("record type").ok()?;
    let _misc = c.u16("record misc").ok()?;
    let size = usize::from(c.u16("record size").ok()?);
    let body = rest.get(8..size).filter(|_| size >= 8)?;
    let total = (size as u64).saturating_add(trailing_payload(kind, body, endian));
    let record = usize::try_from(total).ok().and_then(|t| rest.get(..t))?;
    Some((kind, body, record))
}

/// Rewrites the record stream `data` (starting at file offset `base`) with every compressed record
/// replaced by the records it holds. `max_bytes` caps the output.
pub(crate) fn expand(data: &[u8], base: u64, endian: Endian, max_bytes: u64) -> Result<Expanded> {
    let mut decoder = Decoder::new().map_err(|e| zstd_error(base, e))?;
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(64 << 20));
    let mut pending: Vec<u8> = Vec::new();
    let mut scratch = vec![0u8; 256 * 1024];
    let mut compressed_records = 0u64;
    let mut compressed_bytes = 0u64;
    let mut decompressed_bytes = 0u64;
    // `ZSTD_decompressStream`'s hint after the last input: 0 once a frame is complete.
    let mut next_input_hint = 0usize;
    let mut broken = false;
    let mut pos = 0usize;
    while let Some(rest) = data.get(pos..).filter(|r| r.len() >= 8) {
        let offset = base + pos as u64;
        // A malformed header ends the expansion; the rest is copied raw so that the record
        // iterator reports it at the right place.
        let Some((kind, body, record)) = split_record(rest, endian) else {
            break;
        };
        pos += record.len();
        if kind != rk::COMPRESSED && kind != rk::COMPRESSED2 {
            if broken {
                out.append(&mut pending);
            }
            out.extend_from_slice(record);
            continue;
        }
        compressed_records += 1;
        let input = payload(kind, body, offset + 8, endian)?;
        compressed_bytes += input.len() as u64;
        let limit = max_bytes
            .min(BASE_ALLOWANCE.saturating_add(compressed_bytes.saturating_mul(MAX_RATIO)));
        let mut inb = InBuffer::around(input);
        loop {
            let before = inb.pos();
            let mut outb = OutBuffer::around(scratch.as_mut_slice());
            let hint = decoder
                .run(&mut inb, &mut outb)
                .map_err(|e| zstd_error(offset, e))?;
            next_input_hint = hint;
            let produced = outb.pos();
            if (out.len() + pending.len() + produced) as u64 > limit {
                return Err(Error::TooLarge { offset, limit });
            }
            pending.extend_from_slice(scratch.get(..produced).unwrap_or(&[]));
            decompressed_bytes += produced as u64;
            let input_done = inb.pos() >= input.len();
            if (input_done && produced < scratch.len()) || (produced == 0 && inb.pos() == before) {
                break;
            }
        }
        if broken {
            out.append(&mut pending);
        } else {
            broken = !drain_whole_records(&mut pending, &mut out, endian);
        }
    }
    // A tail shorter than a header is left for the record iterator to report.
    if let Some(tail) = data.get(pos..) {
        out.extend_from_slice(tail);
    }
    Ok(Expanded {
        bytes: out,
        compressed_records,
        compressed_bytes,
        decompressed_bytes,
        // Nothing decoded from a stream that ends unfinished: it stopped inside the frame
        // header or the first block, whatever the hint says.
        stopped_inside_block: next_input_hint != 0
            && (next_input_hint != ZSTD_BLOCK_HEADER_SIZE || decompressed_bytes == 0),
        dangling_bytes: pending.len(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// One little-endian record: the 8-byte header, then `body`. (The test builders live in
    /// `kprof-test-support`, which depends on this crate: unit tests here cannot use them.)
    fn push_record(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let size = u16::try_from(8 + body.len()).unwrap();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(body);
    }

    /// 300 COMM records, cut into `chunks` and compressed the way perf does it: one zstd
    /// stream, flushed after each chunk, its frame never ended. Returns the plain records and
    /// the compressed payload of each chunk.
    fn perf_style_stream(chunks: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut plain = Vec::new();
        for i in 0..300u32 {
            // pid, tid, then the name NUL-padded to 8 bytes.
            let mut body = [i.to_le_bytes(), i.to_le_bytes()].concat();
            body.extend_from_slice(format!("thread-{i}").as_bytes());
            body.resize(body.len() + 8 - body.len() % 8, 0);
            push_record(&mut plain, rk::COMM, &body);
        }
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        let mut payloads = Vec::new();
        for piece in plain.chunks(plain.len().div_ceil(chunks)) {
            encoder.write_all(piece).unwrap();
            encoder.flush().unwrap();
            payloads.push(std::mem::take(encoder.get_mut()));
        }
        (plain, payloads)
    }

    fn as_records(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut records = Vec::new();
        for payload in payloads {
            push_record(&mut records, rk::COMPRESSED, payload);
        }
        records
    }

    // See: issue #10 point 12
    #[test]
    fn a_flushed_but_unfinished_frame_decodes_fully_without_a_warning() {
        for chunks in [1, 4, 9] {
            let (plain, payloads) = perf_style_stream(chunks);
            let expanded = expand(&as_records(&payloads), 0, Endian::Little, u64::MAX).unwrap();
            assert_eq!(expanded.bytes, plain, "{chunks} chunks");
            assert!(!expanded.stopped_inside_block, "{chunks} chunks");
            assert_eq!(expanded.dangling_bytes, 0);
        }
        // A finished frame is complete too.
        let (plain, _) = perf_style_stream(1);
        let closed = zstd::bulk::compress(&plain, 3).unwrap();
        let expanded = expand(&as_records(&[closed]), 0, Endian::Little, u64::MAX).unwrap();
        assert_eq!(expanded.bytes, plain);
        assert!(!expanded.stopped_inside_block);
    }

    // See: issue #10 point 12
    #[test]
    fn a_stream_cut_inside_a_block_is_reported() {
        let (plain, mut payloads) = perf_style_stream(4);
        let last = payloads.last_mut().unwrap();
        last.truncate(last.len() / 2);
        let expanded = expand(&as_records(&payloads), 0, Endian::Little, u64::MAX).unwrap();
        assert!(expanded.stopped_inside_block);
        assert!(expanded.bytes.len() < plain.len());
        assert!(plain.starts_with(&expanded.bytes));
        // Cut anywhere in the frame header or the first block header.
        let (_, payloads) = perf_style_stream(1);
        for keep in 1..8 {
            let cut = payloads[0][..keep].to_vec();
            let expanded = expand(&as_records(&[cut]), 0, Endian::Little, u64::MAX).unwrap();
            assert!(expanded.stopped_inside_block, "first {keep} bytes");
        }
    }
}
