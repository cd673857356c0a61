//! One PostgreSQL connection on a thread of its own.
//!
//! The `postgres` client runs each call to completion on a small runtime
//! of its own, and refuses to do so on a thread that already drives an
//! async runtime (it panics: "Cannot start a runtime from within a
//! runtime"). The issuer opens and reads its log from inside actix, so the
//! client lives on its own thread and every call is a job sent to it and
//! answered: callers may be on any thread, async or not. The jobs of one
//! connection run one at a time, in the order sent.

use std::sync::mpsc;

use ledger::StoreError;
use postgres::Client;

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// The sending end of a connection's thread; the thread (and the
/// connection) ends when this is dropped.
pub struct Connection {
    jobs: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Backend("postgres: the connection's thread stopped".to_string())
}

impl Connection {
    /// Connects with `connect` and runs `setup` on the new thread; returns
    /// the connection and what `setup` returned.
    pub fn open<T: Send + 'static>(
        name: &str,
        connect: impl FnOnce() -> Result<Client, StoreError> + Send + 'static,
        setup: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(Connection, T), StoreError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut client = match connect() {
                    Ok(client) => client,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let ready = setup(&mut client);
                let ok = ready.is_ok();
                let _ = ready_tx.send(ready);
                if !ok {
                    return;
                }
                for job in inbox {
                    job(&mut client);
                }
            })
            .map_err(StoreError::Io)?;
        let value = ready_rx.recv().map_err(|_| stopped())??;
        Ok((Connection { jobs }, value))
    }

    /// Runs `f` on the connection's thread and returns its result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |client| {
                let _ = reply_tx.send(f(client));
            }))
            .map_err(|_| stopped())?;
        reply_rx.recv().map_err(|_| stopped())?
    }
}
