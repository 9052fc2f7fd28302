//! Transfers in flight: the caps that keep one tenant's uploads and
//! downloads from taking a node, and the memory downloads decode ahead.
//!
//! - [`Transfers::enter`] admits a transfer under two caps, per tenant
//!   (past it: 429) and per node (past it: 503), both with `Retry-After`;
//!   the [`TransferPermit`] it returns is held by the body stream and let
//!   go when the stream ends or is dropped (the client went away, or the
//!   server cut it).
//! - [`TransferMemory`] is the byte budget every transfer's chunks come
//!   out of (a chunk being received, sealed, opened or sent), of which one
//!   tenant may hold at most half. The chunk a transfer needs next is
//!   waited for (briefly: past it, 429 or 503; no thread waits); chunks
//!   decoded or sealed ahead are taken only while there is room, so slow
//!   clients cannot take the memory others need.
//!
//! Counts are read at scrape time for the metrics (`sluice_transfers`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sluice_engine::{CpuPool, Lane};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::tenants::limits::Refusal;

/// Which way a transfer's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Upload,
    /// Server to client.
    Download,
}

impl Direction {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }

    fn slot(self) -> usize {
        match self {
            Direction::Upload => 0,
            Direction::Download => 1,
        }
    }
}

/// The transfers in flight on this node, by tenant and direction.
#[derive(Debug)]
pub struct Transfers {
    max_total: usize,
    max_per_tenant: usize,
    total: AtomicUsize,
    /// Uploads and downloads in flight per tenant id.
    by_tenant: Mutex<HashMap<String, [usize; 2]>>,
}

impl Transfers {
    /// Caps of `max_total` transfers on the node and `max_per_tenant` per
    /// tenant.
    pub fn new(max_total: usize, max_per_tenant: usize) -> Transfers {
        Transfers {
            max_total: max_total.max(1),
            max_per_tenant: max_per_tenant.max(1),
            total: AtomicUsize::new(0),
            by_tenant: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, [usize; 2]>> {
        // Every critical section below leaves the map consistent.
        self.by_tenant.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits one transfer of `tenant_id`, or refuses it: the tenant's cap
    /// first (429, its own doing), then the node's (503).
    pub fn enter(self: &Arc<Self>, tenant_id: &str, direction: Direction) -> Result<TransferPermit, Refusal> {
        let mut by = self.lock();
        let held: usize = by.get(tenant_id).map_or(0, |c| c.iter().sum());
        if held >= self.max_per_tenant {
            return Err(Refusal::TenantTransfers {
                max: self.max_per_tenant,
            });
        }
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(Refusal::Transfers { max: self.max_total });
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = by.entry(tenant_id.to_string()).or_default().get_mut(direction.slot()) {
            *n += 1;
        }
        Ok(TransferPermit {
            transfers: Arc::clone(self),
            tenant_id: tenant_id.to_string(),
            direction,
        })
    }

    /// Transfers in flight on the node.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Transfers in flight by tenant id and direction (tenants with none
    /// are absent).
    pub fn by_tenant(&self) -> Vec<(String, Direction, usize)> {
        let by = self.lock();
        by.iter()
            .flat_map(|(t, c)| {
                [Direction::Upload, Direction::Download].map(|d| (t.clone(), d, c.get(d.slot()).copied().unwrap_or(0)))
            })
            .collect()
    }

    /// The node's cap.
    pub fn max_total(&self) -> usize {
        self.max_total
    }
}

/// One admitted transfer; dropping it ends it.
#[derive(Debug)]
pub struct TransferPermit {
    transfers: Arc<Transfers>,
    tenant_id: String,
    direction: Direction,
}

impl Drop for TransferPermit {
    fn drop(&mut self) {
        let mut by = self.transfers.lock();
        if let Some(counts) = by.get_mut(&self.tenant_id) {
            if let Some(n) = counts.get_mut(self.direction.slot()) {
                *n = n.saturating_sub(1);
            }
            if counts.iter().all(|&n| n == 0) {
                by.remove(&self.tenant_id);
            }
        }
        self.transfers.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Job slots held by uploads processed as they stream in, per tenant: a
/// tenant may hold at most half of the node's slots that way (at least
/// one), so one tenant's slow uploads cannot leave other tenants' jobs
/// without a slot. Its next waiting uploads are staged and queued instead.
#[derive(Debug)]
pub struct StreamedShare {
    max_per_tenant: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One streamed upload's place in its tenant's share; dropping it gives it back.
#[derive(Debug)]
pub struct StreamedPlace {
    share: Arc<StreamedShare>,
    tenant_id: String,
}

impl StreamedShare {
    /// A share of half of `job_slots` per tenant.
    pub fn new(job_slots: usize) -> StreamedShare {
        StreamedShare {
            max_per_tenant: (job_slots / 2).max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more streamed upload of `tenant_id`, if its share
    /// has one.
    pub fn try_take(self: &Arc<Self>, tenant_id: &str) -> Option<StreamedPlace> {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = held.entry(tenant_id.to_string()).or_default();
        if *n >= self.max_per_tenant {
            return None;
        }
        *n += 1;
        Some(StreamedPlace {
            share: Arc::clone(self),
            tenant_id: tenant_id.to_string(),
        })
    }
}

impl Drop for StreamedPlace {
    fn drop(&mut self) {
        let mut held = self
            .share
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.tenant_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.tenant_id);
            }
        }
    }
}

/// The memory transfers hold in chunks: one budget for the node, of which
/// one tenant may hold at most half, so one tenant's transfers can never
/// take all of it. Counted in KiB.
#[derive(Debug)]
pub struct TransferMemory {
    budget: usize,
    total: Arc<Semaphore>,
    per_tenant_kib: u32,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Memory of a [`TransferMemory`], given back on drop.
#[derive(Debug)]
pub struct Held {
    _tenant: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Held {
    /// Splits off about `bytes` of this memory (what a buffer freed before
    /// the rest gives back), if this holds more than that.
    pub fn split(&mut self, bytes: usize) -> Option<Held> {
        let kib = bytes / 1024;
        if kib == 0 || kib >= self._total.num_permits() {
            return None;
        }
        let tenant = self._tenant.split(kib)?;
        let total = self._total.split(kib)?;
        Some(Held {
            _tenant: tenant,
            _total: total,
        })
    }
}

impl TransferMemory {
    /// A budget of `budget` bytes.
    pub fn new(budget: usize) -> TransferMemory {
        let kib = u32::try_from(budget >> 10).unwrap_or(u32::MAX).max(2);
        TransferMemory {
            budget,
            total: Arc::new(Semaphore::new(kib as usize)),
            per_tenant_kib: kib / 2,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// `bytes` in KiB, at most a tenant's share (a chunk larger than that
    /// is counted as the whole share, so it can always run alone).
    fn kib(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.per_tenant_kib.max(1))
    }

    fn tenant(&self, tenant_id: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            tenants
                .entry(tenant_id.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant_kib as usize))),
        )
    }

    /// Holds `bytes` for `tenant_id` if both its share and the node's
    /// budget have room now.
    pub fn try_hold(&self, tenant_id: &str, bytes: usize) -> Option<Held> {
        let kib = self.kib(bytes);
        let tenant = self.tenant(tenant_id).try_acquire_many_owned(kib).ok()?;
        let total = Arc::clone(&self.total).try_acquire_many_owned(kib).ok()?;
        Some(Held {
            _tenant: tenant,
            _total: total,
        })
    }

    /// Like [`TransferMemory::try_hold`], for work ahead of need (chunks
    /// decoded before the client asks): only while at least half of the
    /// tenant's share and a quarter of the node's budget would stay free,
    /// so reading ahead never crowds out another transfer's next chunk.
    pub fn try_hold_spare(&self, tenant_id: &str, bytes: usize) -> Option<Held> {
        let kib = self.kib(bytes) as usize;
        let share = self.tenant(tenant_id);
        let spare_share = share.available_permits().saturating_sub(kib) >= self.per_tenant_kib as usize / 2;
        let spare_total = self.total.available_permits().saturating_sub(kib) >= (self.budget >> 10) / 4;
        if spare_share && spare_total {
            self.try_hold(tenant_id, bytes)
        } else {
            None
        }
    }

    /// Holds `bytes` for `tenant_id`, waiting (without a thread) for room
    /// in its share, then in the node's budget, at most `within`. Past it,
    /// the refusal says which was full: the tenant's share (429) or the
    /// node's (503).
    pub async fn hold(&self, tenant_id: &str, bytes: usize, within: Duration) -> Result<Held, Refusal> {
        let kib = self.kib(bytes);
        let share = self.tenant(tenant_id);
        let waiting = async {
            let tenant = Arc::clone(&share).acquire_many_owned(kib).await.ok();
            let total = Arc::clone(&self.total).acquire_many_owned(kib).await.ok();
            (tenant, total)
        };
        match tokio::time::timeout(within, waiting).await {
            Ok((Some(tenant), Some(total))) => Ok(Held {
                _tenant: tenant,
                _total: total,
            }),
            _ if share.available_permits() < kib as usize => Err(Refusal::TenantMemory),
            _ => Err(Refusal::Busy {
                what: "transfers hold all the memory this node gives them",
            }),
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes one tenant may hold.
    pub fn share(&self) -> usize {
        (self.per_tenant_kib as usize) << 10
    }

    /// Bytes held now.
    pub fn lent(&self) -> usize {
        let total_kib = self.budget >> 10;
        total_kib.saturating_sub(self.total.available_permits()) << 10
    }
}

/// Each tenant's lane in the CPU pool, so that the pool's round robin
/// takes turns between tenants: one tenant's many transfers share one
/// lane and so one turn.
#[derive(Debug, Default)]
pub struct TenantLanes {
    lanes: Mutex<HashMap<String, Lane>>,
}

impl TenantLanes {
    /// The lane of `tenant_id` (made on first use).
    pub fn of(&self, tenant_id: &str, pool: &CpuPool) -> Lane {
        let mut lanes = self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *lanes.entry(tenant_id.to_string()).or_insert_with(|| pool.lane())
    }

    /// The tenant id of each lane handed out.
    pub fn tenants(&self) -> HashMap<Lane, String> {
        let lanes = self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lanes.iter().map(|(t, l)| (*l, t.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_cap_comes_before_the_node_cap_and_permits_give_back() {
        let t = Arc::new(Transfers::new(3, 2));
        let a1 = t.enter("a", Direction::Download).unwrap();
        let _a2 = t.enter("a", Direction::Upload).unwrap();
        assert!(matches!(
            t.enter("a", Direction::Download),
            Err(Refusal::TenantTransfers { max: 2 })
        ));
        let _b1 = t.enter("b", Direction::Download).unwrap();
        assert!(matches!(
            t.enter("c", Direction::Download),
            Err(Refusal::Transfers { max: 3 })
        ));
        assert_eq!(t.total(), 3);
        drop(a1);
        assert_eq!(t.total(), 2);
        let _c = t.enter("c", Direction::Download).unwrap();
        let mut seen = t.by_tenant();
        seen.sort_by(|x, y| (&x.0, x.1.as_str()).cmp(&(&y.0, y.1.as_str())));
        assert!(seen.contains(&("a".into(), Direction::Upload, 1)));
        assert!(seen.contains(&("a".into(), Direction::Download, 0)));
        assert!(seen.contains(&("c".into(), Direction::Download, 1)));
    }

    #[test]
    fn a_tenant_streams_in_at_most_half_the_slots() {
        let share = Arc::new(StreamedShare::new(4));
        let a1 = share.try_take("a").unwrap();
        let _a2 = share.try_take("a").unwrap();
        assert!(share.try_take("a").is_none());
        assert!(share.try_take("b").is_some());
        drop(a1);
        assert!(share.try_take("a").is_some());
        assert!(Arc::new(StreamedShare::new(1)).try_take("a").is_some());
    }

    #[tokio::test]
    async fn memory_is_shared_with_a_cap_per_tenant() {
        let m = TransferMemory::new(8 << 20);
        let short = Duration::from_millis(50);
        // A tenant may hold half of the budget: 4 MiB.
        let a1 = m.try_hold("a", 3 << 20).unwrap();
        assert!(m.try_hold("a", 2 << 20).is_none());
        assert!(matches!(m.hold("a", 2 << 20, short).await, Err(Refusal::TenantMemory)));
        // Another tenant still has its share.
        let b1 = m.hold("b", 4 << 20, short).await.unwrap();
        assert_eq!(m.lent(), 7 << 20);
        // The node's budget is full for a third tenant.
        assert!(matches!(m.hold("c", 2 << 20, short).await, Err(Refusal::Busy { .. })));
        drop(a1);
        let c = m.hold("c", 2 << 20, short).await.unwrap();
        // A chunk larger than a share counts as the whole share.
        drop((b1, c));
        let huge = m.try_hold("d", 64 << 20).unwrap();
        assert_eq!(m.lent(), 4 << 20);
        drop(huge);
        assert_eq!(m.lent(), 0);
    }
}
