//! A container's chunks as a zstd stream (RFC 8878), one frame per chunk,
//! for a transfer with `Content-Encoding: zstd`: what a zstd-compressed
//! chunk stores is already a standard frame (declaring its content size),
//! and a chunk stored raw is wrapped in a frame of raw blocks, which costs
//! a copy and no compression. Any zstd decoder reads the frames one after
//! another as one stream; a reader that knows the chunk size can also cut
//! the stream at frame boundaries ([`frame_len`]) and decode the frames in
//! parallel.

/// The zstd frame magic number (little-endian on the wire).
const MAGIC: u32 = 0xFD2F_B528;
/// The largest block zstd allows.
const MAX_BLOCK: usize = 128 << 10;
/// Bytes of a block header.
const BLOCK_HEADER: usize = 3;
/// Frame header bytes at most: magic, descriptor, an 8-byte content size.
const MAX_FRAME_HEADER: usize = 4 + 1 + 8;

/// Bytes a frame of `plain_len` raw bytes takes at most (and any frame
/// [`raw_frame`] or a zstd compressor makes of a chunk that shrank).
pub fn max_frame_len(plain_len: usize) -> usize {
    let blocks = plain_len.div_ceil(MAX_BLOCK).max(1);
    MAX_FRAME_HEADER + blocks * BLOCK_HEADER + plain_len
}

/// Appends to `out` one zstd frame holding `src` as raw blocks, declaring
/// its content size (single segment: the window is the content, so a
/// decoder needs no more memory than the chunk).
pub fn raw_frame(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(max_frame_len(src.len()));
    out.extend_from_slice(&MAGIC.to_le_bytes());
    // Frame header descriptor: content size field of 8 bytes (flag 3),
    // or 4 (flag 2) when it fits, single segment, no checksum, no
    // dictionary. (Flag 0 with single segment would be a 1-byte field.)
    let len = src.len() as u64;
    if let Ok(small) = u32::try_from(len) {
        out.push(0b1010_0000);
        out.extend_from_slice(&small.to_le_bytes());
    } else {
        out.push(0b1110_0000);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut blocks = src.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        // An empty frame still has one (last, empty) block.
        out.extend_from_slice(&block_header(0, true));
    }
    while let Some(block) = blocks.next() {
        out.extend_from_slice(&block_header(block.len(), blocks.peek().is_none()));
        out.extend_from_slice(block);
    }
}

/// A raw block's header: last-block bit, block type 0 (raw), size.
fn block_header(size: usize, last: bool) -> [u8; BLOCK_HEADER] {
    let v = ((size as u32) << 3) | u32::from(last);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// The length of the whole zstd frame at the start of `buf`: `Ok(None)`
/// while `buf` holds only part of it (read more), an error when it is not
/// a frame or declares no content size (every frame of a container's
/// chunks does), or when it would be longer than `max_len`.
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, String> {
    let bad = |why: &str| format!("zstd stream: {why}");
    if buf.len() < 4 {
        return Ok(None);
    }
    if buf.get(..4) != Some(&MAGIC.to_le_bytes()[..]) {
        return Err(bad("a frame does not start with zstd's magic number"));
    }
    match zstd::zstd_safe::find_frame_compressed_size(buf) {
        Ok(n) if n <= max_len => Ok(Some(n)),
        Ok(n) => Err(bad(&format!("a frame of {n} bytes is longer than a chunk's"))),
        // Incomplete, or malformed: only more bytes can tell.
        Err(_) if buf.len() < max_len => Ok(None),
        Err(_) => Err(bad("a malformed frame")),
    }
}

/// The content size a whole frame declares, if it declares one.
pub fn content_size(frame: &[u8]) -> Option<u64> {
    zstd::zstd_safe::get_frame_content_size(frame).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(stream: &[u8]) -> Vec<u8> {
        zstd::stream::decode_all(stream).unwrap()
    }

    #[test]
    fn raw_frames_decode_with_zstd_alone_and_after_compressed_ones() {
        for len in [0usize, 1, 131_071, 131_072, 131_073, 1 << 20, 3 * 131_072 + 5] {
            let src: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut frame = Vec::new();
            raw_frame(&src, &mut frame);
            assert!(frame.len() <= max_frame_len(len));
            assert_eq!(frame_len(&frame, max_frame_len(len)).unwrap(), Some(frame.len()));
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
                Some(len as u64)
            );
            assert_eq!(decode_all(&frame), src, "{len}");
            // A compressed frame, then the raw one: one stream.
            let mut stream = zstd::bulk::compress(b"hello hello hello", 3).unwrap();
            stream.extend_from_slice(&frame);
            let mut want = b"hello hello hello".to_vec();
            want.extend_from_slice(&src);
            assert_eq!(decode_all(&stream), want);
        }
    }

    #[test]
    fn frame_lengths_wait_for_whole_frames_and_refuse_garbage() {
        let src = vec![7u8; 300_000];
        let mut frame = Vec::new();
        raw_frame(&src, &mut frame);
        let max = max_frame_len(src.len());
        for cut in [0, 3, 4, 5, 12, 1000, frame.len() - 1] {
            assert_eq!(frame_len(&frame[..cut], max).unwrap(), None, "{cut}");
        }
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert_eq!(frame_len(&two, max).unwrap(), Some(frame.len()));
        assert!(frame_len(b"not a zstd frame", max).is_err());
        // Longer than a chunk's frame can be.
        assert!(frame_len(&frame, 1000).is_err());
        let mut broken = frame.clone();
        broken[6] ^= 0xff;
        assert!(frame_len(&broken, 1000).is_err() || frame_len(&broken, max).unwrap() != Some(frame.len()));
    }
}
