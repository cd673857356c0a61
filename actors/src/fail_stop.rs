//! Fail-stop: what the issuer does when one of its invariants breaks. A
//! panic in a thread the issuer owns (a crypto worker, the housekeeper, the
//! thread that booted it), in a payment's validation sequence, or while the
//! log writer's thread applies a durable batch (caught by the commit path), or a
//! poisoned lock (a panic while holding it) means its memory can no longer
//! be trusted; the issuer stops as a whole and is restarted from its log,
//! never kept serving with one thread gone or a lock silently recovered.
//!
//! How it stops is the [`FailStopPolicy`] of its `IssuerConfig`:
//! [`FailStopPolicy::ExitProcess`] (the `varietycash issuer serve` process)
//! logs the reason at error level and exits with [`FAIL_STOP_EXIT_CODE`];
//! [`FailStopPolicy::StopIssuer`] (the default: tests, the demo, an issuer
//! embedded in another process) marks that issuer dead, and every later
//! request is refused with `IssuerError::FailStopped`, so a test sees a
//! typed error and the process hosting it carries on.
//!
//! Storage whose outcome the issuer cannot know stops it too: a failed log
//! append (`issuer::commit`), and any failure of the tables beside a log
//! in PostgreSQL ([`StopOnFailure`]: the registry and card agency there;
//! a failed write may have committed, and a failed read means the database
//! is gone), so an issuer whose primary died exits and is restarted on the
//! promoted standby rather than serving on.
//!
//! Panics reach a [`FailStop`] through one process-wide panic hook: each
//! thread the issuer owns is bound to its issuer's `FailStop`
//! ([`FailStop::guard_this_thread`]), and a process that is wholly an issuer
//! binds every thread at once ([`FailStop::guard_whole_process`]).

use std::cell::RefCell;
use std::sync::{Arc, Once, OnceLock};

use ledger::kv::{KvBatch, KvError, KvStore};

/// The exit code of an issuer process stopped by a broken invariant
/// (`EX_SOFTWARE` of sysexits.h: an internal software error).
pub const FAIL_STOP_EXIT_CODE: i32 = 70;

/// What a broken invariant does to the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStopPolicy {
    /// Mark this issuer dead; every later request gets
    /// `IssuerError::FailStopped`. The process goes on (library use).
    #[default]
    StopIssuer,
    /// Log and exit the process with [`FAIL_STOP_EXIT_CODE`] (the issuer's
    /// own process: its supervisor restarts it from the log).
    ExitProcess,
}

/// One issuer's fail-stop switch. Clones share it; it trips once.
#[derive(Debug, Clone)]
pub struct FailStop {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policy: FailStopPolicy,
    reason: OnceLock<String>,
}

thread_local! {
    /// The issuer that owns this thread, if any.
    static OWNER: RefCell<Option<FailStop>> = const { RefCell::new(None) };
}

/// The issuer that owns every thread of this process, if the process is one.
static WHOLE_PROCESS: OnceLock<FailStop> = OnceLock::new();
static HOOK: Once = Once::new();

impl FailStop {
    /// A switch not tripped yet, acting by `policy` when it trips.
    pub fn new(policy: FailStopPolicy) -> FailStop {
        install_panic_hook();
        FailStop {
            inner: Arc::new(Inner {
                policy,
                reason: OnceLock::new(),
            }),
        }
    }

    /// Stops the issuer: logs `reason` at error level, then exits the
    /// process or marks the issuer dead, by its policy. Later trips only log.
    pub fn trip(&self, reason: &str) {
        let first = self.inner.reason.set(reason.to_owned()).is_ok();
        tracing::error!(
            reason,
            policy = ?self.inner.policy,
            "broken invariant: this process stops (fail-stop); restart it from its files"
        );
        if first && self.inner.policy == FailStopPolicy::ExitProcess {
            // Not `abort`: exit flushes the standard streams, so the reason
            // above reaches the operator's log.
            std::process::exit(FAIL_STOP_EXIT_CODE);
        }
    }

    /// Why the issuer stopped, if it has.
    pub fn stopped_because(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.reason.get().is_some()
    }

    /// A panic on this thread from now on trips this switch.
    pub fn guard_this_thread(&self) {
        let me = self.clone();
        OWNER.with(|owner| *owner.borrow_mut() = Some(me));
    }

    /// A panic on any thread of this process trips this switch (the first
    /// switch to ask keeps the process). For a process that is the issuer.
    pub fn guard_whole_process(&self) {
        let _ = WHOLE_PROCESS.set(self.clone());
    }
}

/// Chains a hook after the one already installed (which prints the panic),
/// once per process.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let owner = OWNER
                .try_with(|owner| owner.borrow().clone())
                .ok()
                .flatten()
                .or_else(|| WHOLE_PROCESS.get().cloned());
            if let Some(fail_stop) = owner {
                fail_stop.trip(&format!("panic: {info}"));
            }
        }));
    });
}

/// Tables whose storage failure stops the issuer: a refused batch
/// ([`KvError::AlreadyPresent`]) is an answer, any other error is not.
pub(crate) struct StopOnFailure {
    pub(crate) inner: Arc<dyn KvStore>,
    pub(crate) fail_stop: FailStop,
}

/// `inner`, whose storage failures stop the issuer of `fail_stop` (for
/// tables the issuer's process uses beside its core, such as the operator
/// requests' nonces: a predecessor fenced out of the database stops at
/// its first write there too).
pub fn stop_on_failure(inner: Arc<dyn KvStore>, fail_stop: FailStop) -> Arc<dyn KvStore> {
    Arc::new(StopOnFailure { inner, fail_stop })
}

impl StopOnFailure {
    fn checked<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
        if let Err(KvError::Storage(e)) = &result {
            tracing::error!(error = %e, "the issuer's tables beside the log failed");
            self.fail_stop
                .trip("the tables beside the log failed: restart from the database");
        }
        result
    }
}

impl KvStore for StopOnFailure {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.checked(self.inner.get(table, key))
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
        self.checked(self.inner.scan(table, prefix))
    }

    fn write(&self, batch: &KvBatch) -> Result<(), KvError> {
        self.checked(self.inner.write(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables that fail every call.
    struct Broken;

    impl KvStore for Broken {
        fn get(&self, _: &str, _: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            Err(KvError::Storage("gone".into()))
        }
        fn scan(&self, _: &str, _: &[u8]) -> Result<Vec<ledger::KvRow>, KvError> {
            Err(KvError::Storage("gone".into()))
        }
        fn write(&self, _: &KvBatch) -> Result<(), KvError> {
            Err(KvError::Storage("gone".into()))
        }
    }

    #[test]
    fn a_failure_of_the_tables_stops_the_issuer_and_a_refusal_does_not() {
        let fail_stop = FailStop::new(FailStopPolicy::StopIssuer);
        let working = StopOnFailure {
            inner: Arc::new(ledger::MemoryKv::new()),
            fail_stop: fail_stop.clone(),
        };
        let mut batch = KvBatch::new();
        batch.put("t", b"k", vec![1]);
        working.write(&batch).expect("write");
        batch.require_absent("t", b"k");
        assert!(matches!(
            working.write(&batch),
            Err(KvError::AlreadyPresent { .. })
        ));
        assert!(!fail_stop.is_stopped());
        let broken = StopOnFailure {
            inner: Arc::new(Broken),
            fail_stop: fail_stop.clone(),
        };
        assert!(broken.get("t", b"k").is_err());
        assert!(fail_stop.is_stopped());
    }

    #[test]
    fn a_panic_on_a_guarded_thread_stops_its_issuer_only() {
        let guarded = FailStop::new(FailStopPolicy::StopIssuer);
        let other = FailStop::new(FailStopPolicy::StopIssuer);
        let on_thread = guarded.clone();
        let joined = std::thread::spawn(move || {
            on_thread.guard_this_thread();
            panic!("a broken invariant (test)");
        })
        .join();
        assert!(joined.is_err());
        assert!(guarded.is_stopped());
        assert!(
            guarded
                .stopped_because()
                .is_some_and(|r| r.contains("a broken invariant (test)"))
        );
        assert!(!other.is_stopped());
    }

    #[test]
    fn a_panic_on_an_unguarded_thread_stops_nothing() {
        let fail_stop = FailStop::new(FailStopPolicy::StopIssuer);
        let joined = std::thread::spawn(|| panic!("not the issuer's thread (test)")).join();
        assert!(joined.is_err());
        assert!(!fail_stop.is_stopped());
    }
}
