//! A whole object fetched as chunk-aligned ranges on several connections
//! at once, each written at its offset: the server opens chunks on all its
//! cores and this side writes from several threads, where one stream is
//! bound by one thread copying into the page cache. Every chunk is hashed
//! as it arrives and the whole-file BLAKE3 merged from those hashes must
//! equal the object's, so a piece of another version (the object replaced
//! meanwhile) or a short read cannot pass.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};
use sluice_engine::format::{hash_chunk, ChunkHash, DigestBuilder};
use sluice_engine::OutputFile;

use crate::client::Api;

/// Ranges are at least this long (fewer requests), and a whole number of
/// chunks (no chunk opened twice).
const MIN_PIECE: u64 = 16 << 20;

/// A broken-off piece is fetched again this many times.
const PIECE_ATTEMPTS: u32 = 3;

/// What the object's description says, all a parallel fetch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Plaintext bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (a power of two).
    pub chunk_size: u64,
    /// BLAKE3 of the plaintext, hex.
    pub digest: String,
}

impl Plan {
    /// The plan from a `HEAD /v1/objects/{key}` answer, or `None` when it
    /// is not worth fetching in pieces (one piece or fewer) or the server
    /// does not say the chunk size.
    pub fn from_head(resp: &Response) -> Option<Plan> {
        Plan::from_headers(resp).filter(|plan| plan.pieces() > 1)
    }

    /// The plan from the headers of an answer about the object (`HEAD`
    /// or `GET` of its content), or `None` when they do not say it all.
    pub fn from_headers(resp: &Response) -> Option<Plan> {
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let size: u64 = header("x-sluice-size")?.parse().ok()?;
        let chunk_size: u64 = header("x-sluice-chunk-size")?.parse().ok()?;
        let digest = header("x-sluice-blake3")?.to_string();
        if !chunk_size.is_power_of_two() || chunk_size > usize::MAX as u64 {
            return None;
        }
        Some(Plan {
            size,
            chunk_size,
            digest,
        })
    }

    /// Bytes per piece.
    fn piece(&self) -> u64 {
        self.chunk_size.max(MIN_PIECE)
    }

    /// Pieces in all.
    fn pieces(&self) -> u64 {
        self.size.div_ceil(self.piece())
    }

    /// Checks that the BLAKE3 merged from every chunk's hash, in order,
    /// is the object's; `missing` says what a chunk without one means.
    pub fn check_digest(&self, hashes: Vec<Option<ChunkHash>>, missing: &'static str) -> Result<()> {
        let mut digest = DigestBuilder::new();
        for h in hashes {
            digest.push(h.context(missing)?);
        }
        let digest = hex::encode(digest.finish());
        if digest != self.digest {
            bail!(
                "the downloaded content's BLAKE3 is {digest}, the object's is {}: it was replaced during the download; try again",
                self.digest
            );
        }
        Ok(())
    }

    /// Chunks in all.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(self.chunk_size)
    }
}

/// The pieces (or chunks) written so far, to hand the finished prefix of
/// the file to the kernel's write-back as it grows (as `sluice restore`
/// does).
pub struct Written<'a> {
    out: &'a mut OutputFile,
    done: Vec<bool>,
    unit: u64,
    prefix: usize,
}

impl<'a> Written<'a> {
    /// Nothing written yet of `count` units of `unit` bytes.
    pub fn new(out: &'a mut OutputFile, count: u64, unit: u64) -> Self {
        Written {
            out,
            done: vec![false; count as usize],
            unit,
            prefix: 0,
        }
    }

    /// Unit `i` is written.
    pub fn done(&mut self, i: u64) {
        if let Some(d) = self.done.get_mut(i as usize) {
            *d = true;
        }
        let before = self.prefix;
        while self.done.get(self.prefix).copied().unwrap_or(false) {
            self.prefix += 1;
        }
        if self.prefix > before {
            self.out.finished(self.prefix as u64 * self.unit);
        }
    }
}

/// Fetches the content at `path` into `out` with `workers` connections;
/// `got` counts bytes written.
pub fn fetch(api: &Api, path: &str, plan: &Plan, out: &mut OutputFile, workers: usize, got: &AtomicU64) -> Result<()> {
    let file = out.file().try_clone().context("write failed")?;
    let file = &file;
    let written = Mutex::new(Written::new(out, plan.pieces(), plan.piece()));
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let hashes: Mutex<Vec<Option<ChunkHash>>> = Mutex::new(vec![None; plan.chunks() as usize]);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut buf = vec![0u8; plan.chunk_size as usize];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= plan.pieces() || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let done = fetch_piece_retrying(api, path, plan, i, file, &mut buf, got, &hashes);
                        if done.is_err() {
                            failed.store(true, Ordering::Relaxed);
                            return done;
                        }
                        if let Ok(mut w) = written.lock() {
                            w.done(i);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a download thread panicked"))))
            .collect()
    });
    for r in results {
        r?;
    }
    file.set_len(plan.size).context("write failed")?;
    let hashes = hashes.into_inner().map_err(|_| anyhow!("a download thread panicked"))?;
    plan.check_digest(hashes, "a chunk was never fetched")
}

#[allow(clippy::too_many_arguments)]
fn fetch_piece_retrying(
    api: &Api,
    path: &str,
    plan: &Plan,
    piece: u64,
    file: &std::fs::File,
    buf: &mut [u8],
    got: &AtomicU64,
    hashes: &Mutex<Vec<Option<ChunkHash>>>,
) -> Result<()> {
    let mut attempt = 1;
    loop {
        let mut written = 0;
        match fetch_piece(api, path, plan, piece, file, buf, &mut written, hashes) {
            Ok(()) => {
                got.fetch_add(written, Ordering::Relaxed);
                return Ok(());
            }
            // A body that broke off is fetched again; a refusal is not.
            Err(Piece::Interrupted(_)) if attempt < PIECE_ATTEMPTS => attempt += 1,
            Err(Piece::Interrupted(e)) => return Err(e.context("the download was interrupted")),
            Err(Piece::Failed(e)) => return Err(e),
        }
    }
}

/// How fetching one piece failed.
enum Piece {
    /// The connection broke off: worth trying again.
    Interrupted(anyhow::Error),
    /// Anything else.
    Failed(anyhow::Error),
}

#[allow(clippy::too_many_arguments)]
fn fetch_piece(
    api: &Api,
    path: &str,
    plan: &Plan,
    piece: u64,
    file: &std::fs::File,
    buf: &mut [u8],
    written: &mut u64,
    hashes: &Mutex<Vec<Option<ChunkHash>>>,
) -> Result<(), Piece> {
    let start = piece * plan.piece();
    let end = (start + plan.piece()).min(plan.size);
    let range = format!("bytes={start}-{}", end - 1);
    let mut resp = api
        .send_retrying(|| api.request(Method::GET, path).header(reqwest::header::RANGE, &range))
        .map_err(Piece::Failed)?;
    let want = format!("bytes {start}-{}/{}", end - 1, plan.size);
    let content_range = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    let digest = resp.headers().get("x-sluice-blake3").and_then(|v| v.to_str().ok());
    if resp.status() != StatusCode::PARTIAL_CONTENT || content_range != Some(want.as_str()) {
        return Err(Piece::Failed(anyhow!(
            "asked for {range}, the server answered {} with Content-Range {content_range:?}",
            resp.status()
        )));
    }
    if digest != Some(plan.digest.as_str()) {
        return Err(Piece::Failed(anyhow!(
            "the object was replaced during the download; try again"
        )));
    }
    let mut offset = start;
    while offset < end {
        let len = (end - offset).min(plan.chunk_size) as usize;
        let data = &mut buf[..len];
        resp.read_exact(data).map_err(|e| Piece::Interrupted(e.into()))?;
        let index = offset / plan.chunk_size;
        let hash = hash_chunk(index, plan.chunk_size as usize, data);
        file.write_all_at(data, offset)
            .context("write failed")
            .map_err(Piece::Failed)?;
        if let Ok(mut h) = hashes.lock() {
            if let Some(slot) = h.get_mut(index as usize) {
                *slot = Some(hash);
            }
        }
        offset += len as u64;
        *written += len as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_whole_chunks_and_at_least_the_minimum() {
        let plan = Plan {
            size: (1 << 30) + 5,
            chunk_size: 8 << 20,
            digest: String::new(),
        };
        assert_eq!(plan.piece(), 16 << 20);
        assert_eq!(plan.pieces(), 65);
        assert_eq!(plan.chunks(), 129);
        let big = Plan {
            chunk_size: 64 << 20,
            ..plan
        };
        assert_eq!(big.piece(), 64 << 20);
        assert_eq!(big.pieces(), 17);
    }
}
