//! Where the time comes from: [`Clock`], read by whoever stamps or checks a
//! [`Timestamp`] (the issuer's expiry and epochs, a wallet's coin refresh),
//! and [`SystemClock`], the wall clock. It lives here, beside `Timestamp`,
//! so that clients and the issuer share it without either linking the other.

use crate::ids::Timestamp;

/// Where the time comes from: the wall clock in production, a hand-driven
/// clock in tests of expiry and epochs.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
