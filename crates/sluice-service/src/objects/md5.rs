//! An MD5 (S3's ETag) computed on the CPU pool as data goes by, in order:
//! MD5 cannot be split, so each piece's update waits for the one before,
//! while whatever else the data goes through (sealing, writing) runs
//! beside it. Pieces are batched to about a chunk, so that small body
//! frames do not each cost a pool task.

use bytes::Bytes;
use md5::{Digest, Md5};
use sluice_engine::{CpuPool, Lane, PoolResult};

/// Pieces gathered before one update on the pool.
const BATCH: usize = 1 << 20;

/// A running MD5.
pub(crate) struct Md5Chain {
    running: Option<PoolResult<Md5>>,
    idle: Option<Md5>,
    batch: Vec<Bytes>,
    batched: usize,
}

impl Md5Chain {
    pub(crate) fn new() -> Self {
        Md5Chain {
            running: None,
            idle: Some(Md5::new()),
            batch: Vec::new(),
            batched: 0,
        }
    }

    async fn take(&mut self) -> sluice_engine::Result<Md5> {
        if let Some(running) = self.running.take() {
            return running.await;
        }
        // `idle` is only empty while an update runs.
        Ok(self.idle.take().unwrap_or_default())
    }

    /// Adds `piece` (an update runs once a batch gathered).
    pub(crate) async fn feed(&mut self, pool: &CpuPool, lane: Lane, piece: Bytes) -> sluice_engine::Result<()> {
        self.batched += piece.len();
        self.batch.push(piece);
        if self.batched >= BATCH {
            self.flush(pool, lane).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, pool: &CpuPool, lane: Lane) -> sluice_engine::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut md5 = self.take().await?;
        let batch = std::mem::take(&mut self.batch);
        let cost = std::mem::take(&mut self.batched) as u64;
        self.running = Some(pool.run(lane, cost, move || {
            for piece in &batch {
                md5.update(piece);
            }
            md5
        }));
        Ok(())
    }

    /// The MD5 of everything fed.
    pub(crate) async fn finish(mut self, pool: &CpuPool, lane: Lane) -> sluice_engine::Result<[u8; 16]> {
        self.flush(pool, lane).await?;
        Ok(self.take().await?.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_in_order_give_the_md5_of_the_whole() {
        let engine = sluice_engine::Engine::new(sluice_engine::EngineConfig {
            threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        let pool = engine.pool();
        let lane = pool.lane();
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut chain = Md5Chain::new();
        for piece in data.chunks(65_537) {
            chain.feed(pool, lane, Bytes::copy_from_slice(piece)).await.unwrap();
        }
        let want: [u8; 16] = Md5::digest(&data).into();
        assert_eq!(chain.finish(pool, lane).await.unwrap(), want);
        assert_eq!(
            Md5Chain::new().finish(pool, lane).await.unwrap(),
            <[u8; 16]>::from(Md5::digest(b""))
        );
    }
}
