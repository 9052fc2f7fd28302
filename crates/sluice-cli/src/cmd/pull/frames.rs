//! A whole object received as zstd frames, one per chunk (the server's
//! `Content-Encoding: zstd`, sent when asked): the network carries the
//! compressed bytes, the server only decrypts, and this side decompresses
//! the frames on every core and writes each chunk at its offset, as
//! `sluice restore` does. One thread reads the body and cuts it at frame
//! boundaries; a few more frames than workers are in flight at most. Every
//! chunk must decompress to exactly its length, and the whole-file BLAKE3
//! merged from the chunks' hashes must equal the object's.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use sluice_engine::format::{hash_chunk, zstd_frames, ChunkHash, Codec, Decompressor};
use sluice_engine::OutputFile;

use super::parallel::{Plan, Written};

/// Bytes asked of the body at a time.
const READ_SIZE: usize = 1 << 20;

/// Decodes `body` (a zstd-encoded whole object described by `plan`) into
/// `out` on `workers` threads; `got` counts plaintext bytes written.
pub fn fetch(mut body: impl Read, plan: &Plan, out: &mut OutputFile, workers: usize, got: &AtomicU64) -> Result<()> {
    let file = out.file().try_clone().context("write failed")?;
    let file = &file;
    let chunks = plan.chunks();
    let written = Mutex::new(Written::new(out, chunks, plan.chunk_size));
    let hashes: Mutex<Vec<Option<ChunkHash>>> = Mutex::new(vec![None; chunks as usize]);
    let failed = AtomicBool::new(false);
    let workers = workers.max(1);
    let (send, recv) = sync_channel::<(u64, Vec<u8>)>(workers * 2);
    let recv = Mutex::new(recv);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let done = decode_frames(&recv, plan, file, &hashes, &written, got);
                    if done.is_err() {
                        failed.store(true, Ordering::Relaxed);
                        // The reader may be waiting to hand over a frame:
                        // take (and drop) frames until it sees the failure.
                        while recv.lock().is_ok_and(|r| r.recv().is_ok()) {}
                    }
                    done
                })
            })
            .collect();
        let read = split_frames(&mut body, plan, &failed, |index, frame| {
            send.send((index, frame))
                .map_err(|_| anyhow!("the decoding threads stopped"))
        });
        drop(send);
        let mut results = vec![read];
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a decoding thread panicked")))),
        );
        results
    });
    // A decoder's own error says more than the reader's "stopped".
    let mut first = None;
    for r in results.into_iter().rev() {
        if let Err(e) = r {
            first = Some(e);
        }
    }
    if let Some(e) = first {
        return Err(e);
    }
    file.set_len(plan.size).context("write failed")?;
    let hashes = hashes.into_inner().map_err(|_| anyhow!("a decoding thread panicked"))?;
    plan.check_digest(hashes, "the download ended before its last chunk")
}

/// Reads the body and hands each whole frame to `emit` with its chunk
/// number, until the body ends or a decoder failed.
fn split_frames(
    body: &mut impl Read,
    plan: &Plan,
    failed: &AtomicBool,
    mut emit: impl FnMut(u64, Vec<u8>) -> Result<()>,
) -> Result<()> {
    let max = zstd_frames::max_frame_len(plan.chunk_size as usize);
    let mut buf: Vec<u8> = Vec::with_capacity(max + READ_SIZE);
    let mut at = 0usize;
    let mut index = 0u64;
    let mut ended = false;
    loop {
        if failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let rest = buf.get(at..).unwrap_or_default();
        match zstd_frames::frame_len(rest, max).map_err(|e| anyhow!("the server's {e}"))? {
            Some(n) => {
                if index >= plan.chunks() {
                    bail!("the server sent more frames than the object has chunks");
                }
                emit(index, rest.get(..n).unwrap_or_default().to_vec())?;
                index += 1;
                at += n;
                continue;
            }
            None if ended => {
                if !rest.is_empty() {
                    bail!("the download was interrupted inside a chunk");
                }
                if index != plan.chunks() {
                    bail!("the download was interrupted after {index} of {} chunks", plan.chunks());
                }
                return Ok(());
            }
            None => {}
        }
        // Keep the unread tail at the front before reading more.
        if at > 0 {
            buf.drain(..at);
            at = 0;
        }
        let len = buf.len();
        buf.resize(len + READ_SIZE, 0);
        let n = body.read(&mut buf[len..]).context("the download was interrupted");
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        };
        buf.truncate(len + n);
        ended = n == 0;
    }
}

/// One worker: decompresses frames, checks each chunk's length, hashes
/// it and writes it at its offset.
fn decode_frames(
    recv: &Mutex<Receiver<(u64, Vec<u8>)>>,
    plan: &Plan,
    file: &std::fs::File,
    hashes: &Mutex<Vec<Option<ChunkHash>>>,
    written: &Mutex<Written<'_>>,
    got: &AtomicU64,
) -> Result<()> {
    let mut dec = Decompressor::new();
    let mut plain = Vec::with_capacity(plan.chunk_size as usize);
    loop {
        let next = recv.lock().map_err(|_| anyhow!("a decoding thread panicked"))?.recv();
        let Ok((index, frame)) = next else {
            return Ok(());
        };
        let offset = index * plan.chunk_size;
        let len = (plan.size - offset).min(plan.chunk_size) as usize;
        dec.decompress(Codec::Zstd, &frame, &mut plain, len)
            .map_err(|e| anyhow!("chunk {index} from the server does not decode: {e}"))?;
        let hash = hash_chunk(index, plan.chunk_size as usize, &plain);
        file.write_all_at(&plain, offset).context("write failed")?;
        if let Some(slot) = hashes.lock().ok().as_mut().and_then(|h| h.get_mut(index as usize)) {
            *slot = Some(hash);
        }
        if let Ok(mut w) = written.lock() {
            w.done(index);
        }
        got.fetch_add(len as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(size: u64, chunk_size: u64) -> Plan {
        Plan {
            size,
            chunk_size,
            digest: String::new(),
        }
    }

    /// A body delivered in small reads of uneven sizes.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = buf.len().min(self.0.len()).min(self.1 * 997);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn frames_of(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut stream = Vec::new();
        for (i, c) in data.chunks(chunk).enumerate() {
            if i % 2 == 0 {
                stream.extend_from_slice(&zstd::bulk::compress(c, 3).unwrap());
            } else {
                zstd_frames::raw_frame(c, &mut stream);
            }
        }
        stream
    }

    fn split(stream: &[u8], p: &Plan) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut got = Vec::new();
        split_frames(&mut Trickle(stream, 0), p, &AtomicBool::new(false), |i, f| {
            got.push((i, f));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn a_body_is_cut_into_its_chunks_frames() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let chunk = 64 << 10;
        let stream = frames_of(&data, chunk);
        let p = plan(data.len() as u64, chunk as u64);
        let got = split(&stream, &p).unwrap();
        assert_eq!(got.len(), 5);
        let mut back = Vec::new();
        for (i, (index, frame)) in got.iter().enumerate() {
            assert_eq!(*index, i as u64);
            back.extend_from_slice(&zstd::stream::decode_all(&frame[..]).unwrap());
        }
        assert_eq!(back, data);
    }

    fn fetch_into(stream: &[u8], data: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut out = OutputFile::new(std::fs::File::create(&path).unwrap(), false);
        let p = Plan {
            digest: blake3::hash(data).to_hex().to_string(),
            ..plan(data.len() as u64, chunk as u64)
        };
        fetch(Trickle(stream, 0), &p, &mut out, 3, &AtomicU64::new(0))?;
        Ok(std::fs::read(&path).unwrap())
    }

    #[test]
    fn frames_are_decoded_in_parallel_into_place_and_checked() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunk = 64 << 10;
        let stream = frames_of(&data, chunk);
        assert!(fetch_into(&stream, &data, chunk).unwrap() == data);
        // Another object's frames: the digest does not match.
        let mut other = data.clone();
        other[500_000] ^= 1;
        let e = fetch_into(&frames_of(&other, chunk), &data, chunk).unwrap_err();
        assert!(e.to_string().contains("BLAKE3"), "{e}");
        // A frame of the wrong length fails (and nothing waits for ever),
        // also with many frames still to come.
        let mut short = frames_of(&data[..chunk - 1], chunk);
        short.extend_from_slice(&frames_of(&data[chunk - 1..], chunk));
        let e = fetch_into(&short, &data, chunk).unwrap_err();
        assert!(e.to_string().contains("does not decode"), "{e}");
    }

    #[test]
    fn short_long_and_broken_bodies_are_refused() {
        let data = vec![9u8; 200_000];
        let chunk = 64 << 10;
        let stream = frames_of(&data, chunk);
        let p = plan(data.len() as u64, chunk as u64);
        // Cut inside a frame, or after a whole one.
        assert!(split(&stream[..stream.len() - 3], &p).is_err());
        let first = zstd_frames::frame_len(&stream, usize::MAX).unwrap().unwrap();
        let e = split(&stream[..first], &p).unwrap_err();
        assert!(e.to_string().contains("after 1 of 4 chunks"), "{e}");
        // More frames than chunks.
        let mut long = stream.clone();
        long.extend_from_slice(&stream[..first]);
        assert!(split(&long, &p).is_err());
        // Not zstd at all.
        assert!(split(b"<html>an error page</html>", &p).is_err());
    }
}
