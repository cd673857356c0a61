//! Crash tests: the named points of the commit path where a test stops the
//! issuer dead, as a crash would, and the switch that does it. Built only
//! with the `crash-tests` feature (the crate's own tests turn it on): a
//! production build has no crash point in its configuration, no
//! `IssuerError::Crashed`, and every check below is an empty inline
//! function.

use super::core::IssuerError;

/// A point of the commit path where a crash test stops the issuer: the
/// step returns [`IssuerError::Crashed`] and cleans nothing up; from then on
/// the issuer is dead (every later crash point and commit is refused), and
/// the test restarts it from its files. Each point is tested under
/// concurrent payments in `tests/it/crash_points.rs`; the sixth point of the
/// commit path, during the erasure of spent coins, belongs to the
/// coin-status projection (`projections::ProjectionDb::crash_after_writes`,
/// `projections/tests/it/crash_points.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg(feature = "crash-tests")]
pub enum CrashPoint {
    /// Inputs reserved, nothing staged.
    AfterReserve,
    /// Batch staged (a redemption's credit recorded as owed), not handed
    /// to the log.
    BeforeAppend,
    /// Batch handed to the log writer, its fsync not acknowledged: the
    /// issuer never learns whether it is durable. (A process crash keeps
    /// the written pages, so the restart finds it; a power cut before the
    /// fsync leaves the log as at `BeforeAppend`.)
    AfterAppendBeforeFsync,
    /// Batch durable in the log; shards not committed, nobody answered.
    AfterDurable,
    /// Shards committed and the transaction recorded; the answer built but
    /// not returned.
    AfterCommit,
    /// The coin-status checkpoint (what shards boot from) stops in the
    /// middle of applying a batch of records.
    DuringProjectionApply,
}

/// The crash points, as names the commit path checks; without the
/// `crash-tests` feature nothing stops at them.
#[cfg(not(feature = "crash-tests"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    AfterReserve,
    BeforeAppend,
    AfterAppendBeforeFsync,
    AfterDurable,
    AfterCommit,
}

/// Where the issuer stops dead, and whether it has.
#[derive(Debug)]
pub(crate) struct CrashSwitch {
    #[cfg(feature = "crash-tests")]
    at: Option<CrashPoint>,
    #[cfg(feature = "crash-tests")]
    passes_before: u32,
    #[cfg(feature = "crash-tests")]
    passes: std::sync::atomic::AtomicU32,
    #[cfg(feature = "crash-tests")]
    crashed: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "crash-tests")]
impl CrashSwitch {
    /// The switch `config` asks for (`crash_at`, `crash_after_passes`).
    pub(crate) fn of(config: &super::IssuerConfig) -> CrashSwitch {
        CrashSwitch {
            at: config.crash_at,
            passes_before: config.crash_after_passes,
            passes: std::sync::atomic::AtomicU32::new(0),
            crashed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A switch that never stops anything.
    pub(crate) fn never() -> CrashSwitch {
        CrashSwitch {
            at: None,
            passes_before: 0,
            passes: std::sync::atomic::AtomicU32::new(0),
            crashed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `Err(Crashed)` if the issuer stops at `point`: once it has stopped
    /// at its crash point, at every point.
    pub(crate) fn check(&self, point: CrashPoint) -> Result<(), IssuerError> {
        use std::sync::atomic::Ordering;
        let Some(at) = self.at else {
            return Ok(());
        };
        if self.crashed.load(Ordering::SeqCst) {
            return Err(IssuerError::Crashed);
        }
        if at != point || self.passes.fetch_add(1, Ordering::SeqCst) < self.passes_before {
            return Ok(());
        }
        self.stop_dead(point);
        Err(IssuerError::Crashed)
    }

    pub(crate) fn stop_dead(&self, point: CrashPoint) {
        self.crashed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(?point, "stopped at the crash point (crash test)");
    }

    pub(crate) fn has_crashed(&self) -> bool {
        self.crashed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(not(feature = "crash-tests"))]
impl CrashSwitch {
    pub(crate) fn of(_config: &super::IssuerConfig) -> CrashSwitch {
        CrashSwitch {}
    }

    pub(crate) fn never() -> CrashSwitch {
        CrashSwitch {}
    }

    #[inline(always)]
    pub(crate) fn check(&self, _point: CrashPoint) -> Result<(), IssuerError> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn has_crashed(&self) -> bool {
        false
    }
}

/// Whether `e` is a crash test's stop (which cleans nothing up).
pub(crate) fn is_crash(e: &IssuerError) -> bool {
    #[cfg(feature = "crash-tests")]
    {
        matches!(e, IssuerError::Crashed)
    }
    #[cfg(not(feature = "crash-tests"))]
    {
        let _ = e;
        false
    }
}
