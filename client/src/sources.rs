//! Limits per source address: connections, bodies still arriving, requests
//! in flight, and requests per second (a token bucket), so that one client
//! cannot take the places the server's global limits share among all.
//!
//! A source is an IPv4 address or an IPv6 /64 (one host usually holds a
//! whole /64). The table is bounded ([`SOURCES_TRACKED_MAX`]); a source
//! that holds nothing and whose bucket is full is forgotten when room is
//! needed. Counting is done under one mutex held for a few arithmetic
//! operations, never across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::constants::{
    CONNECTIONS_PER_SOURCE_MAX, REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX,
    REQUESTS_IN_FLIGHT_PER_SOURCE_MAX, REQUESTS_PER_SOURCE_BURST, REQUESTS_PER_SOURCE_PER_SEC,
    SOURCES_TRACKED_MAX,
};

/// What one source may hold at once, and how fast it may ask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceLimits {
    /// Open connections (counted once established: after the TLS handshake).
    pub connections_max: usize,
    /// Requests whose bodies are still arriving.
    pub bodies_receiving_max: usize,
    /// Requests being handled.
    pub requests_in_flight_max: usize,
    /// Sustained requests per second.
    pub requests_per_sec: f64,
    /// Requests that may come at once after a quiet spell.
    pub requests_burst: f64,
}

impl Default for SourceLimits {
    /// The limits of [`crate::constants`].
    fn default() -> SourceLimits {
        SourceLimits {
            connections_max: CONNECTIONS_PER_SOURCE_MAX,
            bodies_receiving_max: REQUEST_BODIES_RECEIVING_PER_SOURCE_MAX,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_PER_SOURCE_MAX,
            requests_per_sec: REQUESTS_PER_SOURCE_PER_SEC as f64,
            requests_burst: REQUESTS_PER_SOURCE_BURST as f64,
        }
    }
}

impl SourceLimits {
    /// No limit per source (the global ones still hold): for a benchmark
    /// whose load generator is one address.
    pub fn unlimited() -> SourceLimits {
        SourceLimits {
            connections_max: usize::MAX,
            bodies_receiving_max: usize::MAX,
            requests_in_flight_max: usize::MAX,
            requests_per_sec: f64::INFINITY,
            requests_burst: f64::INFINITY,
        }
    }
}

/// The key of a source: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(_) => Source(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let mut octets = v6.octets();
                    octets[8..].fill(0);
                    Source(IpAddr::from(octets))
                }
            },
        }
    }
}

#[derive(Debug)]
struct SourceState {
    connections: usize,
    bodies_receiving: usize,
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
}

impl SourceState {
    fn new(limits: &SourceLimits, now: Instant) -> SourceState {
        SourceState {
            connections: 0,
            bodies_receiving: 0,
            in_flight: 0,
            tokens: limits.requests_burst,
            refilled: now,
        }
    }

    fn refill(&mut self, limits: &SourceLimits, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.requests_per_sec).min(limits.requests_burst);
        self.refilled = now;
    }

    fn is_idle(&self, limits: &SourceLimits) -> bool {
        self.connections == 0
            && self.bodies_receiving == 0
            && self.in_flight == 0
            && self.tokens >= limits.requests_burst
    }
}

/// Why a source was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRefusal {
    /// Over its share: 503, like the global limits.
    Full,
    /// Asking faster than its rate: 429.
    TooFast,
}

/// Which per-source count a place takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Body,
    InFlight,
}

/// Every source's counts.
#[derive(Debug)]
pub struct Sources {
    limits: SourceLimits,
    table: Mutex<HashMap<Source, SourceState>>,
}

impl Sources {
    pub fn new(limits: SourceLimits) -> Sources {
        Sources {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(
        &self,
        source: Source,
        f: impl FnOnce(&mut SourceState, &SourceLimits) -> T,
    ) -> Option<T> {
        let now = Instant::now();
        let mut table = self.table.lock().expect(ledger::sync::POISONED_LOCK);
        if !table.contains_key(&source) && table.len() >= SOURCES_TRACKED_MAX {
            let limits = self.limits;
            table.retain(|_, s| {
                s.refill(&limits, now);
                !s.is_idle(&limits)
            });
            if table.len() >= SOURCES_TRACKED_MAX {
                return None;
            }
        }
        let state = table
            .entry(source)
            .or_insert_with(|| SourceState::new(&self.limits, now));
        state.refill(&self.limits, now);
        let out = f(state, &self.limits);
        if state.is_idle(&self.limits) {
            table.remove(&source);
        }
        Some(out)
    }

    /// Spends one of the source's request tokens.
    pub fn allow_request(&self, source: Source) -> Result<(), SourceRefusal> {
        match self.with(source, |s, _| {
            if s.tokens >= 1.0 {
                s.tokens -= 1.0;
                true
            } else {
                false
            }
        }) {
            Some(true) => Ok(()),
            Some(false) => Err(SourceRefusal::TooFast),
            None => Err(SourceRefusal::Full),
        }
    }

    /// Takes a place of `kind` for the source, unless it holds its share.
    pub(crate) fn take(&self, source: Source, kind: Place) -> bool {
        self.with(source, |s, limits| {
            let (count, max) = match kind {
                Place::Body => (&mut s.bodies_receiving, limits.bodies_receiving_max),
                Place::InFlight => (&mut s.in_flight, limits.requests_in_flight_max),
            };
            if *count < max {
                *count += 1;
                true
            } else {
                false
            }
        })
        .unwrap_or(false)
    }

    pub(crate) fn leave(&self, source: Source, kind: Place) {
        self.with(source, |s, _| {
            let count = match kind {
                Place::Body => &mut s.bodies_receiving,
                Place::InFlight => &mut s.in_flight,
            };
            *count = count.saturating_sub(1);
        });
    }

    /// Counts a new connection of the source; the slot uncounts it when
    /// the connection ends (dropped with the connection's data). Over the
    /// source's share, the slot says so and the connection's requests are
    /// refused.
    pub(crate) fn connect(self: &Arc<Sources>, source: Source) -> ConnectionSlot {
        let over_limit = self
            .with(source, |s, limits| {
                s.connections += 1;
                s.connections > limits.connections_max
            })
            .unwrap_or(true);
        ConnectionSlot {
            sources: self.clone(),
            source,
            over_limit,
        }
    }

    fn disconnect(&self, source: Source) {
        self.with(source, |s, _| {
            s.connections = s.connections.saturating_sub(1)
        });
    }

    /// Sources tracked now (for `/metrics`).
    pub(crate) fn n_tracked(&self) -> usize {
        self.table.lock().expect(ledger::sync::POISONED_LOCK).len()
    }
}

/// One connection's place among its source's connections.
#[derive(Debug)]
pub struct ConnectionSlot {
    sources: Arc<Sources>,
    pub source: Source,
    /// The source held its share of connections when this one came.
    pub(crate) over_limit: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.sources.disconnect(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits() -> SourceLimits {
        SourceLimits {
            connections_max: 2,
            bodies_receiving_max: 1,
            requests_in_flight_max: 1,
            requests_per_sec: 1.0,
            requests_burst: 3.0,
        }
    }

    fn ip(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    #[test]
    fn each_source_has_its_own_share() {
        let sources = Arc::new(Sources::new(limits()));
        assert!(sources.take(ip(2), Place::Body));
        assert!(!sources.take(ip(2), Place::Body));
        assert!(
            sources.take(ip(3), Place::Body),
            "another source is not affected"
        );
        sources.leave(ip(2), Place::Body);
        assert!(sources.take(ip(2), Place::Body));
        let a = sources.connect(ip(2));
        let b = sources.connect(ip(2));
        let c = sources.connect(ip(2));
        assert!(!a.over_limit && !b.over_limit && c.over_limit);
        drop(c);
        drop(b);
        assert!(!sources.connect(ip(2)).over_limit);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let sources = Sources::new(limits());
        for _ in 0..3 {
            assert_eq!(sources.allow_request(ip(2)), Ok(()));
        }
        assert_eq!(sources.allow_request(ip(2)), Err(SourceRefusal::TooFast));
        assert_eq!(sources.allow_request(ip(3)), Ok(()));
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64_and_a_mapped_v4_is_the_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(Source::of(a), Source::of(b));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().expect("ip");
        assert_eq!(Source::of(mapped), ip(2));
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let sources = Sources::new(SourceLimits::default());
        assert!(sources.take(ip(2), Place::InFlight));
        assert_eq!(sources.n_tracked(), 1);
        sources.leave(ip(2), Place::InFlight);
        assert_eq!(sources.n_tracked(), 0);
    }
}
