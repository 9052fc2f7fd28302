//! Transfers in flight: the caps that keep one tenant's uploads and
//! downloads from taking a node, and the memory downloads decode ahead.
//!
//! - [`Transfers::enter`] admits a transfer under two caps, per tenant
//!   (past it: 429) and per node (past it: 503), both with `Retry-After`;
//!   the [`TransferPermit`] it returns is held by the body stream and let
//!   go when the stream ends or is dropped (the client went away, or the
//!   server cut it).
//! - [`ReadAhead`] is the byte budget downloads share for chunks decoded
//!   before their client asked for them. A download always gets the chunk
//!   its client waits for; it decodes further ahead only while the budget
//!   has room, so slow clients cannot take memory others need, and nobody
//!   ever waits for it.
//!
//! Counts are read at scrape time for the metrics (`sluice_transfers`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_engine::{CpuPool, Lane};

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

/// The bytes downloads hold in chunks decoded ahead of their clients.
#[derive(Debug)]
pub struct ReadAhead {
    budget: usize,
    lent: Arc<AtomicUsize>,
}

impl ReadAhead {
    /// A budget of `budget` bytes.
    pub fn new(budget: usize) -> ReadAhead {
        ReadAhead {
            budget,
            lent: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Holds `bytes` if the budget has room for them.
    pub fn try_hold(&self, bytes: usize) -> Option<Held> {
        self.lent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |lent| {
                lent.checked_add(bytes).filter(|&after| after <= self.budget)
            })
            .ok()
            .map(|_| Held {
                lent: Arc::clone(&self.lent),
                bytes,
            })
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes held now.
    pub fn lent(&self) -> usize {
        self.lent.load(Ordering::Relaxed)
    }
}

/// Bytes of a [`ReadAhead`] budget, given back on drop.
#[derive(Debug)]
pub struct Held {
    lent: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.lent.fetch_sub(self.bytes, Ordering::AcqRel);
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
    fn read_ahead_lends_within_its_budget() {
        let r = ReadAhead::new(10);
        let a = r.try_hold(6).unwrap();
        assert!(r.try_hold(5).is_none());
        let b = r.try_hold(4).unwrap();
        assert_eq!(r.lent(), 10);
        drop(a);
        drop(b);
        assert_eq!(r.lent(), 0);
        assert!(r.try_hold(11).is_none());
    }
}
