//! The sequence of one validation (payment, change, refresh, redeem),
//! written once: the actor shell runs it with its expensive steps on the
//! crypto workers ([`Steps`] over the pool), a synchronous caller with
//! every step on its own thread (`IssuerCore::validate`). Both reserve and
//! commit through the issuer's one [`CommitPath`](super::commit::CommitPath).
//!
//! ```text
//! open, check, replay check (worker)          answered: refusal or committed repeat
//!   -> reserve inputs (commit path)           busy / spent: refusal
//!   -> stage: events, balanced batch,         expired, bad body: refusal
//!      new coins' grant (K_I) + ack session
//!   -> commit path: durable, shards, state    failure: reservations released
//!   -> outcome once the ack session is held (a soft session write)
//!   -> said: new coins sealed to the payee, a receipt or refusal signed
//! ```
//!
//! The sequence decides a [`ValidationOutcome`]; saying it (the answer's
//! public-key work) is a step of its own, so that a validator node that
//! opened the request says it too ([`Issuer::decide_opened`](crate::Issuer::decide_opened)),
//! and the issuer's sequencer does no public-key work for it.

use std::future::Future;
use std::time::Instant;

use protocol::flows::issuer::OpenedValidation;
use protocol::wire::payment::{PaymentIssuance1, ValidationRequest};

use crate::issuer::core::{IssuerCore, IssuerError};
use crate::issuer::payment::{Opened, SessionDone, Staged, ValidationOutcome};
use crate::sessions::SessionError;
use crate::timing::Stage;

/// Where a validation's expensive steps run (opening envelopes, signing,
/// disk writes of the registry): on a crypto worker in the actor shell, on
/// the caller's own thread in a synchronous caller. Cheap steps run where
/// the sequence runs.
pub(crate) trait Steps {
    fn core(&self) -> &IssuerCore;

    /// Runs `step` on a worker and resolves with its result.
    fn on_worker<R: Send + 'static>(
        &self,
        step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
    ) -> impl Future<Output = Result<R, IssuerError>>;
}

/// Every step on the caller's thread.
pub(crate) struct Inline<'a>(pub(crate) &'a IssuerCore);

impl Steps for Inline<'_> {
    fn core(&self) -> &IssuerCore {
        self.0
    }

    async fn on_worker<R: Send + 'static>(
        &self,
        step: impl FnOnce(&IssuerCore) -> R + Send + 'static,
    ) -> Result<R, IssuerError> {
        Ok(step(self.0))
    }
}

/// What a validation starts from: the request as the payee sent it, or
/// as a validator node opened it (envelopes, signature under the key the
/// node checked it with, P3, amount).
pub(crate) enum Presented {
    Sealed(ValidationRequest),
    Opened {
        opened: Box<OpenedValidation>,
        checked_under: ledger::PublicKeyDer,
    },
}

/// ValidationRequest -> Issuance1: the sequence, then its outcome said on
/// the caller's thread (sealing new coins), or on a worker (a signature,
/// which may be RSA).
pub(crate) async fn validate_and_answer(
    steps: &impl Steps,
    msg: ValidationRequest,
) -> Result<PaymentIssuance1, IssuerError> {
    let outcome = validate(steps, Presented::Sealed(msg)).await?;
    if outcome.needs_signature() {
        steps.on_worker(move |core| core.answer(outcome)).await?
    } else {
        steps.core().answer(outcome)
    }
}

/// A validation's outcome. A panic in the sequence (whichever
/// thread polls it: in the actor shell, the gateway's) is caught here and
/// stops the issuer, as it would on a thread the issuer owns.
pub(crate) async fn validate(
    steps: &impl Steps,
    msg: Presented,
) -> Result<ValidationOutcome, IssuerError> {
    let core = steps.core();
    core.ensure_alive()?;
    let started = Instant::now();
    let answer = match CatchUnwind(Box::pin(validate_timed(steps, msg))).await {
        Ok(answer) => answer,
        Err(_panic) => {
            core.fail_stop().trip("a payment's validation panicked");
            core.ensure_alive().and(Err(IssuerError::Stopped))
        }
    };
    core.stage_timings()
        .record(Stage::Validation, started.elapsed());
    answer
}

/// [`validate`], recording each stage's time.
async fn validate_timed(
    steps: &impl Steps,
    msg: Presented,
) -> Result<ValidationOutcome, IssuerError> {
    let core = steps.core();
    let timings = core.stage_timings();
    let queued = Instant::now();
    let opened = match msg {
        Presented::Sealed(msg) => {
            steps
                .on_worker(move |core| {
                    core.stage_timings()
                        .record(Stage::PoolWait, queued.elapsed());
                    core.validation_open(&msg)
                })
                .await??
        }
        // Opened already: the checks left are map reads and one MAC per
        // coin, no public-key work, so they run here, not on the pool.
        Presented::Opened {
            opened,
            checked_under,
        } => core.validation_forwarded(*opened, &checked_under)?,
    };
    let pending = match opened {
        Opened::Answered(answer) => return Ok(answer),
        Opened::Reserve(pending) => pending,
    };
    let reserving = Instant::now();
    let tx = pending.tx;
    let inputs = match core.commit.reserve(tx, &pending.opened.serials()) {
        Ok(inputs) => inputs,
        Err(refusal) => {
            return steps
                .on_worker(move |core| core.validation_unreserved(&pending, &refusal))
                .await?;
        }
    };
    let staging = Instant::now();
    timings.record(Stage::Reserve, staging.duration_since(reserving));
    let (done, written) = tokio::sync::oneshot::channel();
    let staged = if IssuerCore::stages_inline(&pending) {
        // New coins: staging is ~0.1 ms of CPU and no disk; on the pool
        // it queued behind every newer payment's RSA.
        core.validation_stage(pending, inputs, session_done(done))
    } else {
        steps
            .on_worker(move |core| core.validation_stage(pending, inputs, session_done(done)))
            .await?
    };
    let staged = match staged {
        Ok(Staged::Commit(staged)) => staged,
        Ok(Staged::Answered(answer)) => {
            core.commit.abort(tx);
            core.validation_abandon(tx);
            return Ok(answer);
        }
        Err(e) => {
            core.commit.abort(tx);
            core.validation_abandon(tx);
            return Err(e);
        }
    };
    let appending = Instant::now();
    timings.record(Stage::StageBatch, appending.duration_since(staging));
    // Nothing is acknowledged before this resolves: the batch is durable,
    // the shards committed and the transaction marked committed.
    let at = match core.commit.commit(staged.commit.clone()).await {
        Ok(at) => at,
        Err(e) => {
            // A failed append may still have reached the disk (the writer
            // died after the fsync, or the fsync failed after the pages
            // were written): only the log, read at the next start, says.
            let maybe_durable = matches!(e, IssuerError::Log(_));
            steps
                .on_worker(move |core| core.validation_failed(&staged, maybe_durable))
                .await?;
            return Err(e);
        }
    };
    let durable = Instant::now();
    timings.record(Stage::LogDurable, durable.duration_since(appending));
    let answer = if IssuerCore::is_prepared(&staged) {
        // New coins: granted at staging; finishing is bookkeeping, done
        // here rather than queued behind RSA work.
        core.validation_finish(*staged, at)?
    } else {
        steps
            .on_worker(move |core| core.validation_finish(*staged, at))
            .await??
    };
    let finished = Instant::now();
    timings.record(Stage::AfterLog, finished.duration_since(durable));
    // The ack session was held at staging (a soft write, answered at
    // once); a receipt's or a repeat's outcome is waited for here, not on
    // a crypto worker.
    session_written(written).await?;
    timings.record(Stage::SessionWait, finished.elapsed());
    Ok(answer)
}

/// A session-write callback that completes `done`.
pub(crate) fn session_done(
    done: tokio::sync::oneshot::Sender<Result<(), SessionError>>,
) -> SessionDone {
    Box::new(move |outcome| {
        // The requester may have gone; the write stands regardless.
        let _ = done.send(outcome);
    })
}

/// Waits for a session write; a callback dropped uncalled is a failure.
pub(crate) async fn session_written(
    written: tokio::sync::oneshot::Receiver<Result<(), SessionError>>,
) -> Result<(), IssuerError> {
    Ok(written.await.unwrap_or(Err(SessionError::Stopped))?)
}

/// A future whose panic is returned rather than unwound into the thread
/// polling it (which belongs to whoever embeds the issuer).
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}
