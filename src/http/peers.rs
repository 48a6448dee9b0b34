//! Counting by client address: connections, TLS handshakes and logins
//! waiting for bcrypt each have a cap per address, so one pod cannot take
//! every place. Entries go when their count drops to zero, so the map is
//! bounded by what it counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub(crate) struct PerPeer {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One unit of a [`PerPeer`] count, given back on drop.
pub(crate) struct PeerGuard {
    peers: Arc<PerPeer>,
    ip: IpAddr,
}

impl PerPeer {
    pub(crate) fn new(limit: usize) -> Arc<PerPeer> {
        Arc::new(PerPeer {
            limit,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for `ip`, or None when it has `limit` already.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerGuard> {
        let mut counts = self.counts.lock().ok()?;
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerGuard {
            peers: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.lock().map(|c| c.is_empty()).unwrap_or(false)
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.peers.counts.lock()
            && let Some(count) = counts.get_mut(&self.ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_peer_counts_are_capped_and_given_back() {
        let peers = PerPeer::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = peers.take(a).unwrap();
        let two = peers.take(a).unwrap();
        assert!(peers.take(a).is_none(), "third from the same address");
        let other = peers.take(b).unwrap();
        drop(one);
        assert!(peers.take(a).is_some());
        drop((two, other));
        assert!(peers.is_empty(), "entries removed at zero");
    }
}
