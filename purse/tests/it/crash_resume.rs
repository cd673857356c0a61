//! Crash at every step of journaled transactions, then resume by retrying:
//! no coin is lost and none is counted twice.
//!
//! A simulated issuer-and-payee (`World`) answers idempotently by the exact
//! request bytes, as the real issuer does. A scenario (buy the paper's coins,
//! pay exactly, pay with change first) runs with a crash budget: after `k`
//! actions (a durable purse write, or a message the world processed whose
//! reply is then lost) the purse "crashes". Two kinds of crash: the purse is
//! dropped and reopened, or the file image is copied while the purse is open
//! (what a `kill -9` leaves) and the copy is opened. Then every journal entry
//! is resumed, the rest of the scenario is run, and the purse's coins must
//! agree exactly with what the world says the purse owns, and the payee must
//! have been paid each amount exactly once. `k` runs over every step.

use crate::util;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use ledger::{Amount, Coin, CoinId};
use serde::{Deserialize, Serialize};
use util::{NOW, coin, new_purse, passphrase, purse_path};
use vc_purse::{
    BadKind, Completion, Destination, NewTransaction, Purse, PurseError, Refusal, Selection,
    SessionSecret, Step, StepRecord, TxKind, TxRef,
};

#[derive(Serialize, Deserialize)]
enum Request {
    OpenSession {
        nonce: [u8; 16],
    },
    Buy {
        session: [u8; 16],
        values: Vec<u64>,
    },
    Poll {
        purchase: [u8; 16],
    },
    Validate {
        tid: [u8; 16],
        inputs: Vec<Coin>,
        want: Vec<u64>,
        to_payee: bool,
    },
    Ack {
        of: [u8; 16],
    },
}

#[derive(Clone, Debug)]
enum Reply {
    Session([u8; 16]),
    Pending([u8; 16]),
    NotYet,
    Coins(Vec<Coin>),
    Paid,
    Refused(Vec<CoinId>),
    Acked,
}

/// The issuer and the payee, simulated: idempotent by request bytes.
#[derive(Default)]
struct World {
    answers: HashMap<Vec<u8>, Reply>,
    purchases: HashMap<[u8; 16], Purchase>,
    owned_by_purse: BTreeSet<CoinId>,
    spent: BTreeSet<CoinId>,
    payee_total: u64,
    bought_total: u64,
    n_settled_purchases: usize,
}

struct Purchase {
    values: Vec<u64>,
    polls: usize,
    coins: Option<Vec<Coin>>,
}

impl World {
    fn handle(&mut self, bytes: &[u8]) -> Reply {
        let request: Request = postcard::from_bytes(bytes).expect("test request");
        if let Request::Poll { purchase } = request {
            return self.poll(purchase);
        }
        if let Some(reply) = self.answers.get(bytes) {
            return reply.clone();
        }
        let reply = match request {
            Request::OpenSession { nonce } => Reply::Session(nonce),
            Request::Buy { session, values } => {
                self.purchases.insert(
                    session,
                    Purchase {
                        values,
                        polls: 0,
                        coins: None,
                    },
                );
                Reply::Pending(session)
            }
            Request::Validate {
                inputs,
                want,
                to_payee,
                ..
            } => self.validate(inputs, want, to_payee),
            Request::Ack { .. } => Reply::Acked,
            Request::Poll { .. } => unreachable!("handled above"),
        };
        self.answers.insert(bytes.to_vec(), reply.clone());
        reply
    }

    /// The bank settles on the second poll; the coins are the same every time.
    fn poll(&mut self, purchase: [u8; 16]) -> Reply {
        let p = self.purchases.get_mut(&purchase).expect("known purchase");
        p.polls += 1;
        if p.polls < 2 {
            return Reply::NotYet;
        }
        if p.coins.is_none() {
            let coins: Vec<Coin> = p.values.iter().map(|&v| coin(v)).collect();
            self.owned_by_purse.extend(coins.iter().map(Coin::id));
            self.bought_total += p.values.iter().sum::<u64>();
            self.n_settled_purchases += 1;
            p.coins = Some(coins);
        }
        Reply::Coins(p.coins.clone().expect("just minted"))
    }

    fn validate(&mut self, inputs: Vec<Coin>, want: Vec<u64>, to_payee: bool) -> Reply {
        let bad: Vec<CoinId> = inputs
            .iter()
            .map(Coin::id)
            .filter(|id| self.spent.contains(id) || !self.owned_by_purse.contains(id))
            .collect();
        if !bad.is_empty() {
            return Reply::Refused(bad);
        }
        let total: u64 = inputs.iter().map(|c| c.value().minor_units()).sum();
        for c in &inputs {
            self.spent.insert(c.id());
            self.owned_by_purse.remove(&c.id());
        }
        if to_payee {
            self.payee_total += total;
            Reply::Paid
        } else {
            assert_eq!(want.iter().sum::<u64>(), total, "change must balance");
            let coins: Vec<Coin> = want.iter().map(|&v| coin(v)).collect();
            self.owned_by_purse.extend(coins.iter().map(Coin::id));
            Reply::Coins(coins)
        }
    }
}

#[derive(Debug)]
struct Crash;

/// Counts actions down to the crash.
struct Runner<'w> {
    world: &'w mut World,
    budget: Option<usize>,
}

impl Runner<'_> {
    fn tick(&mut self) -> Result<(), Crash> {
        match &mut self.budget {
            Some(0) => Err(Crash),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The world processes the message; a crash right after loses the reply.
    fn send(&mut self, message: &[u8]) -> Result<Reply, Crash> {
        let reply = self.world.handle(message);
        self.tick()?;
        Ok(reply)
    }
}

fn encode(request: &Request) -> Vec<u8> {
    postcard::to_stdvec(request).expect("encode")
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("randomness");
    b
}

fn ids(coins: &[Coin]) -> Vec<CoinId> {
    coins.iter().map(Coin::id).collect()
}

/// Resumes one transaction from its journal entry until it is closed.
fn drive(purse: &Purse, run: &mut Runner<'_>, tx: TxRef) -> Result<(), Crash> {
    loop {
        let entry = match purse.entry(tx) {
            Ok(entry) => entry,
            Err(PurseError::UnknownTransaction(_)) => return Ok(()),
            Err(e) => panic!("journal read: {e}"),
        };
        let reply = run.send(&entry.last_sent)?;
        if entry.is_settled() {
            assert!(matches!(reply, Reply::Acked));
            purse.close(tx).expect("close");
            run.tick()?;
            continue;
        }
        let ack = || Some(encode(&Request::Ack { of: *tx.as_bytes() }));
        match (entry.kind, entry.step, reply) {
            (TxKind::Purchase, Step::SessionOpen, Reply::Session(session)) => {
                let values: Vec<u64> = postcard::from_bytes(&entry.context).expect("context");
                let message = encode(&Request::Buy { session, values });
                purse
                    .record_step(tx, record(Step::Request, message))
                    .expect("record");
            }
            (TxKind::Purchase, Step::Request, Reply::Pending(purchase)) => {
                let message = encode(&Request::Poll { purchase });
                purse
                    .record_step(tx, record(Step::Poll, message))
                    .expect("record");
            }
            (TxKind::Purchase, Step::Poll, Reply::NotYet) => continue,
            (TxKind::Purchase, Step::Poll, Reply::Coins(coins)) => {
                let done = Completion {
                    received: coins,
                    acknowledge: ack(),
                    ..Completion::default()
                };
                purse.complete(tx, done).expect("complete purchase");
            }
            (TxKind::Change, Step::Request, Reply::Coins(coins)) => {
                let done = Completion {
                    spent: entry.reserved.clone(),
                    received: coins,
                    acknowledge: ack(),
                    ..Completion::default()
                };
                purse.complete(tx, done).expect("complete change");
            }
            (TxKind::Pay, Step::Request, Reply::Paid) => {
                let done = Completion {
                    spent: entry.reserved.clone(),
                    ..Completion::default()
                };
                purse.complete(tx, done).expect("complete payment");
            }
            (_, _, Reply::Refused(bad)) => {
                let bad = bad
                    .into_iter()
                    .map(|id| (id, BadKind::AlreadySpent))
                    .collect();
                purse
                    .refuse(
                        tx,
                        Refusal {
                            bad,
                            statement: b"S_I(reject)".to_vec(),
                        },
                    )
                    .expect("refuse");
            }
            (kind, step, reply) => panic!("{kind:?} at {step:?} got {reply:?}"),
        }
        run.tick()?;
    }
}

fn record(step: Step, message: Vec<u8>) -> StepRecord {
    StepRecord {
        step,
        message,
        secrets: None,
        context: None,
        now: NOW,
    }
}

fn buy(purse: &Purse, run: &mut Runner<'_>, values: &[u64]) -> Result<(), Crash> {
    let total = values.iter().sum();
    let tx = purse
        .begin(NewTransaction {
            kind: TxKind::Purchase,
            amount: Amount::from_minor(total),
            reserve: vec![],
            step: Step::SessionOpen,
            to: Destination::Issuer,
            message: encode(&Request::OpenSession { nonce: random16() }),
            secrets: vec![SessionSecret::new(random16().to_vec())],
            context: postcard::to_stdvec(&values.to_vec()).expect("context"),
            now: NOW,
        })
        .expect("begin purchase");
    run.tick()?;
    drive(purse, run, tx)
}

/// Pays exactly, making change with the issuer first if no subset fits.
fn pay(purse: &Purse, run: &mut Runner<'_>, amount: u64) -> Result<(), Crash> {
    loop {
        let selection = purse
            .select(Amount::from_minor(amount), NOW)
            .expect("select");
        let (kind, coins, want, to_payee, to) = match selection {
            Selection::Exact(coins) => (
                TxKind::Pay,
                coins,
                vec![],
                true,
                Destination::Payee("http://shop.test".into()),
            ),
            Selection::NeedsChange { give, want } => {
                let want = want.values().map(Amount::minor_units).collect();
                (TxKind::Change, give, want, false, Destination::Issuer)
            }
            Selection::Insufficient { .. } => panic!("scenario is funded"),
        };
        let value = Amount::checked_sum(coins.iter().map(Coin::value)).expect("sum");
        let message = encode(&Request::Validate {
            tid: random16(),
            inputs: coins.clone(),
            want,
            to_payee,
        });
        let tx = purse
            .begin(NewTransaction {
                kind,
                amount: value,
                reserve: ids(&coins),
                step: Step::Request,
                to,
                message,
                secrets: vec![],
                context: vec![],
                now: NOW,
            })
            .expect("begin");
        run.tick()?;
        drive(purse, run, tx)?;
        if kind == TxKind::Pay {
            return Ok(());
        }
    }
}

const PAPER_COINS: [u64; 6] = [250, 250, 125, 200, 200, 200];
const PAYMENTS: [u64; 3] = [450, 310, 125];

/// The scenario's intents, each skipped if the world says it is done, so a
/// rerun after a crash does only what is left.
fn scenario(purse: &Purse, run: &mut Runner<'_>) -> Result<(), Crash> {
    if run.world.n_settled_purchases == 0 {
        buy(purse, run, &PAPER_COINS)?;
    }
    let mut paid = 0;
    for amount in PAYMENTS {
        paid += amount;
        if run.world.payee_total < paid {
            pay(purse, run, amount)?;
        }
    }
    Ok(())
}

fn resume_all(purse: &Purse, world: &mut World) {
    let mut run = Runner {
        world,
        budget: None,
    };
    for entry in purse.in_flight().expect("journal") {
        drive(purse, &mut run, entry.tx).expect("no crash without a budget");
    }
}

/// The purse's view agrees with the world's: the same coins, nothing
/// pending, and the payee was paid a prefix of the payments exactly.
fn assert_agrees(purse: &Purse, world: &World, context: &str) {
    assert!(
        purse.in_flight().expect("journal").is_empty(),
        "{context}: still in flight"
    );
    let balance = purse.balance().expect("balance");
    assert_eq!(balance.pending, Amount::ZERO, "{context}");
    assert_eq!(balance.n_bad, 0, "{context}: a coin went bad");
    let held: BTreeSet<CoinId> = purse
        .spendable(NOW)
        .expect("spendable")
        .iter()
        .map(Coin::id)
        .collect();
    assert_eq!(
        held, world.owned_by_purse,
        "{context}: purse and issuer disagree on coins"
    );
    assert_eq!(
        balance.available.minor_units() + world.payee_total,
        world.bought_total,
        "{context}: cash not conserved"
    );
    let prefixes: Vec<u64> = PAYMENTS
        .iter()
        .scan(0, |acc, a| {
            *acc += a;
            Some(*acc)
        })
        .collect();
    assert!(
        world.payee_total == 0 || prefixes.contains(&world.payee_total),
        "{context}: payee got {}, not a prefix of {prefixes:?}",
        world.payee_total
    );
}

#[derive(Debug, Clone, Copy)]
enum CrashKind {
    DropAndReopen,
    FileImage,
}

/// Runs the scenario with a crash after `k` actions; returns whether the
/// crash happened (false once `k` is past the last action).
fn run_with_crash_at(dir: &Path, k: usize, kind: CrashKind) -> bool {
    let mut world = World::default();
    let mut path: PathBuf = purse_path(dir);
    let purse = new_purse(dir);
    let crashed = {
        let mut run = Runner {
            world: &mut world,
            budget: Some(k),
        };
        scenario(&purse, &mut run).is_err()
    };
    let purse = if crashed {
        match kind {
            CrashKind::DropAndReopen => {
                drop(purse);
            }
            CrashKind::FileImage => {
                let image = dir.join(format!("crash-{k}.redb"));
                fs::copy(&path, &image).expect("copy the file a crash leaves");
                drop(purse);
                path = image;
            }
        }
        let purse = Purse::open(&path, &passphrase()).expect("reopen after crash");
        let context = format!("{kind:?} at {k}, after resume");
        resume_all(&purse, &mut world);
        assert_agrees(&purse, &world, &context);
        purse
    } else {
        purse
    };
    let mut run = Runner {
        world: &mut world,
        budget: None,
    };
    scenario(&purse, &mut run).expect("no crash without a budget");
    let context = format!("{kind:?} at {k}, at the end");
    assert_agrees(&purse, &world, &context);
    assert_eq!(world.payee_total, PAYMENTS.iter().sum::<u64>(), "{context}");
    assert_eq!(world.n_settled_purchases, 1, "{context}");
    crashed
}

fn crash_at_every_step(kind: CrashKind) {
    let mut k = 0;
    loop {
        let dir = tempfile::tempdir().expect("tempdir");
        if !run_with_crash_at(dir.path(), k, kind) {
            break;
        }
        k += 1;
    }
    // The scenario has a purchase, a change and three payments: dozens of steps.
    assert!(k > 20, "only {k} crash points");
}

#[test]
fn crash_and_reopen_at_every_step_loses_and_doubles_nothing() {
    crash_at_every_step(CrashKind::DropAndReopen);
}

#[test]
fn crash_file_image_at_every_step_loses_and_doubles_nothing() {
    crash_at_every_step(CrashKind::FileImage);
}

/// A copy of the purse (a restored backup) tries to spend coins the
/// original already spent: the world refuses, the copy marks exactly those
/// coins bad, and its journal is empty again.
#[test]
fn a_restored_backup_learns_its_spent_coins_are_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut world = World::default();
    let purse = new_purse(dir.path());
    let mut run = Runner {
        world: &mut world,
        budget: None,
    };
    buy(&purse, &mut run, &PAPER_COINS).expect("buy");
    drop(purse);
    let backup = dir.path().join("backup.redb");
    fs::copy(purse_path(dir.path()), &backup).expect("backup");
    let purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("open");
    pay(&purse, &mut run, 450).expect("pay");
    drop(purse);

    let restored = Purse::open(&backup, &passphrase()).expect("open backup");
    let Selection::Exact(coins) = restored
        .select(Amount::from_minor(450), NOW)
        .expect("select")
    else {
        panic!("450 is exact");
    };
    let message = encode(&Request::Validate {
        tid: random16(),
        inputs: coins.clone(),
        want: vec![],
        to_payee: true,
    });
    let tx = restored
        .begin(NewTransaction {
            kind: TxKind::Pay,
            amount: Amount::from_minor(450),
            reserve: ids(&coins),
            step: Step::Request,
            to: Destination::Payee("http://shop.test".into()),
            message,
            secrets: vec![],
            context: vec![],
            now: NOW,
        })
        .expect("begin");
    drive(&restored, &mut run, tx).expect("drive");
    let balance = restored.balance().expect("balance");
    assert_eq!(balance.bad, Amount::from_minor(450));
    assert_eq!(balance.available, Amount::from_minor(1225 - 450));
    assert_eq!(world.payee_total, 450, "paid once, not twice");
}
