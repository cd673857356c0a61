//! A coin purchase with the real protocol messages and keys, journaled by
//! the purse and crashed at every step.
//!
//! The issuer side is made of `protocol::flows::issuer` helpers and a real
//! mint; the client side is `PurchaseClient`. The journal keeps the exact
//! wire bytes of each message and the flow state (with its key shares) as a
//! session secret. A crash is the file image copied while the purse is
//! open; after it, resuming from the journal alone must end with the bank
//! debited once, the purse holding exactly the issued coins (with valid
//! tags), and the purchase acknowledged.

use crate::util;

use std::collections::HashMap;
use std::fs;

use ledger::{Amount, BankAccount, Coin, CoinSpec, Denomination, KeyEpoch, PurchaseId};
use protocol::crypto::SuiteId;
use protocol::flows::issuer::{self, PurchaseSession};
use protocol::flows::{
    FlowError, PurchaseAwaitingIssuance, PurchaseAwaitingWRequest2, PurchaseClient, PurchaseUpdate,
};
use protocol::mint::Mint;
use protocol::wire::purchase::{
    PurchaseIssuance1, PurchaseIssuance2, PurchasePoll, WDesc, WRequest1, WRequest3,
};
use protocol::wire::{decode, encode};
use util::{NOW, new_purse, passphrase, profile, purse_path};
use vc_purse::{
    Completion, Destination, NewTransaction, Purse, PurseError, SessionSecret, Step, StepRecord,
    TxKind, TxRef,
};

const EPOCH: KeyEpoch = KeyEpoch(1);

struct Issuer {
    mint: Mint,
    _mint_dir: tempfile::TempDir,
    sessions: HashMap<PurchaseId, PurchaseSession>,
    orders: HashMap<PurchaseId, WDesc>,
    settled: HashMap<PurchaseId, Vec<Coin>>,
    acknowledged: std::collections::HashSet<PurchaseId>,
    polls: usize,
}

impl Issuer {
    fn new() -> Issuer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut mint = Mint::create(&dir.path().join("mint.key"), SuiteId::Aes256).expect("mint");
        mint.open_epoch(EPOCH).expect("epoch");
        Issuer {
            mint,
            _mint_dir: dir,
            sessions: HashMap::new(),
            orders: HashMap::new(),
            settled: HashMap::new(),
            acknowledged: std::collections::HashSet::new(),
            polls: 0,
        }
    }

    fn wrequest1(&mut self, bytes: &[u8]) -> Vec<u8> {
        let msg: WRequest1 = decode(bytes).expect("WRequest1");
        let pk_cp = profile().public_key().expect("registered key");
        let opened = issuer::open_wrequest1(
            util::issuer_secret_key(),
            &msg,
            |_| Some(pk_cp.clone()),
            NOW,
        )
        .expect("opens");
        let (session, answer) =
            issuer::answer_wrequest1(opened, &pk_cp, util::issuer().issuer, PurchaseId::random())
                .expect("WRequest2");
        self.sessions.insert(session.purchase, session);
        encode(&answer)
    }

    /// W3: a second WRequest3 of a session is refused as a replay.
    fn wrequest3(&mut self, bytes: &[u8]) -> Result<(), FlowError> {
        let msg: WRequest3 = decode(bytes).expect("WRequest3");
        let session = self.sessions.get_mut(&msg.purchase).expect("session");
        let pk_cp = profile().public_key().expect("registered key");
        let order = issuer::open_wrequest3(session, &pk_cp, &msg)?;
        self.orders.insert(order.purchase, order.w_desc);
        Ok(())
    }

    /// The bank settles after the first poll; the coins are minted once.
    fn poll(&mut self, bytes: &[u8]) -> Vec<u8> {
        let msg: PurchasePoll = decode(bytes).expect("poll");
        let session = &self.sessions[&msg.purchase];
        issuer::open_purchase_poll(session, &msg).expect("poll MAC");
        self.polls += 1;
        if self.polls == 1 {
            return encode(&issuer::purchase_pending(msg.purchase));
        }
        let spec = self.orders[&msg.purchase].spec.clone();
        let mint = &self.mint;
        let coins = self.settled.entry(msg.purchase).or_insert_with(|| {
            spec.values()
                .map(|value| {
                    let body = ledger::CoinBody {
                        id: ledger::CoinId::random(),
                        value,
                        expiry: NOW.plus_secs(86_400),
                        epoch: EPOCH,
                    };
                    Coin {
                        body,
                        tag: mint.tag(&body).expect("tag"),
                    }
                })
                .collect()
        });
        encode(&issuer::build_purchase_issuance1(session, coins.clone()).expect("Issuance1"))
    }

    fn ack(&mut self, bytes: &[u8]) {
        let msg: PurchaseIssuance2 = decode(bytes).expect("Issuance2");
        issuer::open_purchase_issuance2(&self.sessions[&msg.purchase], &msg).expect("ack MAC");
        // A repeated ack (sent, then the purse crashed before closing) is harmless.
        self.acknowledged.insert(msg.purchase);
    }
}

#[derive(Debug)]
struct Crash;

struct Budget(Option<usize>);

impl Budget {
    fn tick(&mut self) -> Result<(), Crash> {
        match &mut self.0 {
            Some(0) => Err(Crash),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn paper_spec() -> CoinSpec {
    let line = |count, minor| Denomination {
        count,
        value: Amount::from_minor(minor),
    };
    CoinSpec::new(vec![line(2, 250), line(1, 125), line(3, 200)]).expect("spec")
}

fn w_desc() -> WDesc {
    let spec = paper_spec();
    WDesc {
        amount: spec.total().expect("total"),
        spec,
        bank_account: BankAccount::new("111-alice").expect("account"),
        anonymous: false,
    }
}

fn record(step: Step, message: Vec<u8>, secret: Option<SessionSecret>) -> StepRecord {
    StepRecord {
        step,
        message,
        secrets: secret.map(|s| vec![s]),
        context: None,
        now: NOW,
    }
}

fn start(purse: &Purse, budget: &mut Budget) -> Result<TxRef, Crash> {
    let pk_i = util::issuer().key().expect("issuer key");
    let sk_cp = profile().secret_key().expect("key");
    let (state, w1) =
        PurchaseClient::start(SuiteId::Aes256, &sk_cp, profile().participant, &pk_i, NOW)
            .expect("WRequest1");
    let tx = purse
        .begin(NewTransaction {
            kind: TxKind::Purchase,
            amount: Amount::from_minor(1225),
            reserve: vec![],
            step: Step::SessionOpen,
            to: Destination::Issuer,
            message: encode(&w1),
            secrets: vec![SessionSecret::from_state(&state).expect("state fits")],
            context: vec![],
            now: NOW,
        })
        .expect("begin");
    budget.tick()?;
    Ok(tx)
}

/// Resumes the purchase from its journal entry alone.
fn drive(purse: &Purse, issuer: &mut Issuer, budget: &mut Budget, tx: TxRef) -> Result<(), Crash> {
    let sk_cp = purse.profile().expect("profile").secret_key().expect("key");
    let id_i = purse.issuer().expect("issuer").expect("set").issuer;
    loop {
        let entry = match purse.entry(tx) {
            Ok(entry) => entry,
            Err(PurseError::UnknownTransaction(_)) => return Ok(()),
            Err(e) => panic!("journal: {e}"),
        };
        match entry.step {
            Step::SessionOpen => {
                let w2 = issuer.wrequest1(&entry.last_sent);
                budget.tick()?;
                let state: PurchaseAwaitingWRequest2 = entry.secrets[0].to_state().expect("state");
                let (state, w3) = state
                    .on_wrequest2(&sk_cp, &id_i, &decode(&w2).expect("WRequest2"), w_desc())
                    .expect("WRequest3");
                let secret = SessionSecret::from_state(&state).expect("fits");
                purse
                    .record_step(tx, record(Step::Request, encode(&w3), Some(secret)))
                    .expect("record");
            }
            Step::Request => {
                match issuer.wrequest3(&entry.last_sent) {
                    // A replay means the first WRequest3 arrived: go on polling.
                    Ok(()) | Err(FlowError::ReplayedNonce) => {}
                    Err(e) => panic!("WRequest3: {e}"),
                }
                budget.tick()?;
                let state: PurchaseAwaitingIssuance = entry.secrets[0].to_state().expect("state");
                purse
                    .record_step(tx, record(Step::Poll, encode(&state.poll()), None))
                    .expect("record");
            }
            Step::Poll => {
                let answer = issuer.poll(&entry.last_sent);
                budget.tick()?;
                let state: PurchaseAwaitingIssuance = entry.secrets[0].to_state().expect("state");
                let answer: PurchaseIssuance1 = decode(&answer).expect("Issuance1");
                match state.on_issuance1(&answer).expect("opens") {
                    PurchaseUpdate::Pending => continue,
                    PurchaseUpdate::Issued { coins, ack } => {
                        let done = Completion {
                            received: coins,
                            acknowledge: Some(encode(&ack)),
                            ..Completion::default()
                        };
                        purse.complete(tx, done).expect("complete");
                    }
                    PurchaseUpdate::Rejected(r) => panic!("rejected: {r:?}"),
                }
            }
            Step::Acknowledge => {
                issuer.ack(&entry.last_sent);
                budget.tick()?;
                purse.close(tx).expect("close");
            }
        }
        budget.tick()?;
    }
}

#[test]
fn a_real_purchase_crashed_at_every_step_debits_once_and_keeps_every_coin() {
    let mut k = 0;
    loop {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut issuer = Issuer::new();
        let purse = new_purse(dir.path());
        let mut budget = Budget(Some(k));
        let crashed = start(&purse, &mut budget)
            .and_then(|tx| drive(&purse, &mut issuer, &mut budget, tx))
            .is_err();
        let purse = if crashed {
            let image = dir.path().join("crash.redb");
            fs::copy(purse_path(dir.path()), &image).expect("crash image");
            drop(purse);
            let purse = Purse::open(&image, &passphrase()).expect("reopen");
            let mut unlimited = Budget(None);
            for entry in purse.in_flight().expect("journal") {
                drive(&purse, &mut issuer, &mut unlimited, entry.tx).expect("resume");
            }
            if issuer.orders.is_empty() {
                // The crash came before WRequest3 reached the issuer: the
                // user buys again, and nothing was debited twice.
                let tx = start(&purse, &mut unlimited).expect("start");
                drive(&purse, &mut issuer, &mut unlimited, tx).expect("drive");
            }
            purse
        } else {
            purse
        };
        assert_eq!(
            issuer.orders.len(),
            1,
            "crash at {k}: debited {} times",
            issuer.orders.len()
        );
        assert_eq!(issuer.acknowledged.len(), 1, "crash at {k}");
        let issued = issuer.settled.values().next().expect("settled");
        let mut held = purse.spendable(NOW).expect("coins");
        held.sort_by_key(Coin::id);
        let mut want = issued.clone();
        want.sort_by_key(Coin::id);
        assert_eq!(held, want, "crash at {k}: purse and issuer disagree");
        for coin in &held {
            issuer.mint.check(coin).expect("tag checks");
        }
        assert!(purse.in_flight().expect("journal").is_empty());
        assert_eq!(
            purse.balance().expect("balance").available,
            Amount::from_minor(1225)
        );
        if !crashed {
            break;
        }
        k += 1;
    }
    assert!(k >= 9, "only {k} crash points");
}
