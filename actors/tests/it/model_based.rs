//! Model-based property test of the real issuer.
//!
//! Random sequences of purchases (settled and refused debits, anonymous or
//! not), payments with each option (refresh, redeem, aggregate), change,
//! refresh of expired coins, redeem, redemption of the merchant's
//! aggregate, refund, double-spend attempts with copies of spent or revoked
//! coins, retransmissions of committed payments, card transfers (a card
//! loaded with coins, unloaded to coins, and card to card through the
//! issuer, with card-bridge's `Transfers` over the issuer's `CardAgency`),
//! clock jumps and restarts of the issuer from its files, run against the real `IssuerCore` (redb log,
//! simulated bank, protocol client state machines) and against the model of
//! `model/mod.rs`. After every step the issuer's view of every coin (its
//! shards, its signed coin-status answer, a replay of its log) and of every
//! balance (bank accounts, the aggregate, each card, the card float, the
//! running conservation totals) must be the model's, and each holder's purse must hold exactly the
//! model's coins; at the end the auditor (`replay::run_audit`, with the
//! coin-status projection check) must pass over the log and agree too.
//!
//! Clearing with the load/unload server is not in the model (it is
//! `tests/it/card_agency.rs`'s).
//!
//! `VC_MODEL_SEED=<u64>` replays a run; `VC_MODEL_CASES=<n>` changes the
//! number of sequences (16 by default).

use crate::model;
use crate::util;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use card_bridge::card::SmartCard;
use card_bridge::crypto::{MasterKeys, Suite};
use card_bridge::flows::CardTerminal;
use card_bridge::lus::LoadUnloadServer;
use card_bridge::transfer::{
    CardToCard, CardToSoft, SoftToCard, TransferId, TransferJournal, Transfers,
};
use ledger::{Amount, Coin, CoinId, CoinSpec, Role, Timestamp};
use ledger::{CardId, LusId};
use model::{ALICE, BOB, FUNDS_MINOR, Kind, Model, N_CARDS, N_HOLDERS, NAMES, Payout, ROLES, SHOP};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use protocol::flows::verify_coin_status;
use protocol::flows::{
    PayeeAwaitingIssuance, PayeeOutcome, PaymentPayee, PurchaseUpdate, RefundUpdate, SelfPayment,
};
use protocol::wire::payment::{ReceiptKind, SendCoins, VOption, ValidationRequest};
use protocol::wire::status::{CoinState, CoinStatusQuery};
use protocol::wire::{CoinSerials, RejectReason};
use util::{Harness, Who, spec};
use vc_actors::CardAgency;

/// The card system's one load/unload server.
const LUS: LusId = LusId(7);
/// Most a card holds (never reached: the model's cards hold what soft cash bought).
const CARD_MAX_MINOR: u64 = 1_000_000;

/// Coin values a purchase may ask for.
const DENOMINATIONS_MINOR: [u64; 4] = [10, 25, 100, 250];

#[derive(Debug, Clone)]
enum Op {
    /// A purchase of `lines` (count, denomination index); `poll_again`
    /// fetches Issuance1 a second time before the ack (it must not change).
    Buy {
        who: usize,
        lines: Vec<(u32, usize)>,
        anonymous: bool,
        poll_again: bool,
    },
    /// A payment of the coins `pick` selects from the purse of `from` (or
    /// of the next holder with coins) to `to` (the next holder if that is
    /// the payer).
    Pay {
        from: usize,
        to: usize,
        pick: u8,
        payout: Payout,
        split: bool,
    },
    Change {
        who: usize,
        pick: u8,
        split: bool,
    },
    Refresh {
        who: usize,
        pick: u8,
    },
    Redeem {
        who: usize,
        pick: u8,
    },
    /// The shop redeems part of its aggregate; `repeat` resends the last
    /// request that went through instead.
    RedeemAggregate {
        amount_sel: u16,
        repeat: bool,
    },
    /// `repeat` sends the same refund request a second time.
    Refund {
        who: usize,
        repeat: bool,
    },
    /// `who` (or the next holder with copies) pays the holder `to_offset`
    /// after it with a copy of a coin it spent or had revoked.
    DoubleSpend {
        who: usize,
        to_offset: usize,
        pick: u8,
    },
    /// The last committed validation again: with a fresh `K_PY` from the
    /// payee's state (`fresh_key`) or byte for byte.
    Retransmit {
        fresh_key: bool,
    },
    /// `who` (or the next holder with loadable coins) loads the coins
    /// `pick` selects onto `card` (Softcash to Cardcash).
    CardLoad {
        who: usize,
        card: usize,
        pick: u8,
    },
    /// Part of `card`'s value is unloaded into coins for `to`.
    CardUnload {
        card: usize,
        to: usize,
        amount_sel: u16,
    },
    /// Part of `from`'s value goes to the other card, through the issuer.
    CardToCard {
        from: usize,
        amount_sel: u16,
    },
    /// The clock moves on, and a key epoch opens if one is due.
    Advance(Jump),
    Restart,
}

/// How far the clock moves: boundaries are where off-by-one bugs live, so
/// some jumps land exactly on the next expiry or end of grace of a coin.
#[derive(Debug, Clone, Copy)]
enum Jump {
    Secs(u64),
    ToNextExpiry,
    ToNextGraceEnd,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..N_HOLDERS;
    let other = 1..N_HOLDERS;
    let payee = || prop_oneof![Just(ALICE), Just(BOB), Just(SHOP)];
    // Aggregates go mostly to the shop, the only merchant.
    let payout_to = prop_oneof![
        2 => (Just(Payout::Coins), payee()),
        1 => (Just(Payout::Redeem), payee()),
        2 => (Just(Payout::Aggregate), prop_oneof![3 => Just(SHOP), 1 => payee()]),
    ];
    prop_oneof![
        5 => (
            who.clone(),
            proptest::collection::vec((1u32..=3, 0..DENOMINATIONS_MINOR.len()), 1..=2),
            proptest::bool::weighted(0.35),
            any::<bool>()
        )
            .prop_map(|(who, lines, anonymous, poll_again)| Op::Buy {
                who,
                lines,
                anonymous,
                poll_again
            }),
        5 => (who.clone(), payout_to, any::<u8>(), any::<bool>()).prop_map(
            |(from, (payout, to), pick, split)| Op::Pay {
                from,
                to,
                pick,
                payout,
                split
            }
        ),
        2 => (who.clone(), any::<u8>(), any::<bool>())
            .prop_map(|(who, pick, split)| Op::Change { who, pick, split }),
        3 => (who.clone(), any::<u8>()).prop_map(|(who, pick)| Op::Refresh { who, pick }),
        2 => (who.clone(), any::<u8>()).prop_map(|(who, pick)| Op::Redeem { who, pick }),
        2 => (any::<u16>(), any::<bool>())
            .prop_map(|(amount_sel, repeat)| Op::RedeemAggregate { amount_sel, repeat }),
        2 => (who.clone(), any::<bool>()).prop_map(|(who, repeat)| Op::Refund { who, repeat }),
        2 => (who, other, any::<u8>()).prop_map(|(who, to_offset, pick)| Op::DoubleSpend {
            who,
            to_offset,
            pick
        }),
        2 => any::<bool>().prop_map(|fresh_key| Op::Retransmit { fresh_key }),
        2 => (0..N_HOLDERS, 0..N_CARDS, any::<u8>())
            .prop_map(|(who, card, pick)| Op::CardLoad { who, card, pick }),
        1 => (0..N_CARDS, 0..N_HOLDERS, any::<u16>())
            .prop_map(|(card, to, amount_sel)| Op::CardUnload { card, to, amount_sel }),
        1 => (0..N_CARDS, any::<u16>())
            .prop_map(|(from, amount_sel)| Op::CardToCard { from, amount_sel }),
        3 => prop_oneof![
            Just(Jump::Secs(150)),
            Just(Jump::Secs(400)),
            Just(Jump::Secs(700)),
            Just(Jump::ToNextExpiry),
            Just(Jump::ToNextGraceEnd),
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

/// How many times each outcome happened, by name.
type Tally = BTreeMap<String, u64>;

/// The tally of all cases of the random test, to show the generator reaches
/// every path.
static TALLY: Mutex<Tally> = Mutex::new(BTreeMap::new());

/// A validation that committed, kept for retransmission.
struct LastCommitted {
    payee: usize,
    awaiting: PayeeAwaitingIssuance,
    vreq: ValidationRequest,
    /// For a payment to another holder: the payee's state and SendCoins, to
    /// ask again under a fresh `K_PY`.
    fresh: Option<(PaymentPayee, SendCoins, VOption)>,
    outcome: Committed,
}

#[derive(Debug, Clone, PartialEq)]
enum Committed {
    Coins(Vec<Coin>),
    Receipt(ReceiptKind),
}

/// One run: the issuer, the holders' purses and the model.
struct World {
    h: Harness,
    who: Vec<Who>,
    shop_balance: ledger::BalanceId,
    model: Model,
    /// What each holder's purse holds (the client side).
    purses: [Vec<Coin>; N_HOLDERS],
    /// Copies of coins each holder spent or had revoked (a cheater keeps them).
    copies: [Vec<Coin>; N_HOLDERS],
    last: Option<LastCommitted>,
    /// The last aggregate redemption that went through: (request, amount).
    last_aggregate_redeem: Option<([u8; 16], u64)>,
    next_request: u64,
    /// The card system: its server, the transfers' journal, the cards.
    lus: LoadUnloadServer,
    journal: TransferJournal,
    cards: Vec<SmartCard>,
    tally: RefCell<Tally>,
}

fn ids(coins: &[Coin]) -> Vec<CoinId> {
    coins.iter().map(Coin::id).collect()
}

fn id_values(coins: &[Coin]) -> Vec<(CoinId, u64)> {
    coins
        .iter()
        .map(|c| (c.id(), c.value().minor_units()))
        .collect()
}

fn sorted_values(coins: &[Coin]) -> Vec<u64> {
    let mut v: Vec<u64> = coins.iter().map(|c| c.value().minor_units()).collect();
    v.sort_unstable();
    v
}

fn sorted_spec_values(spec: &CoinSpec) -> Vec<u64> {
    let mut v: Vec<u64> = spec.values().map(Amount::minor_units).collect();
    v.sort_unstable();
    v
}

/// Coins of `total`: one coin, or two of about half each.
fn output_spec(total: u64, split: bool) -> CoinSpec {
    if !split || total < 2 {
        spec(&[(1, total)])
    } else if total.is_multiple_of(2) {
        spec(&[(2, total / 2)])
    } else {
        spec(&[(1, total / 2), (1, total - total / 2)])
    }
}

fn reason_label(reason: RejectReason) -> String {
    format!("{reason:?}")
}

impl World {
    fn new() -> World {
        let h = Harness::new();
        let who: Vec<Who> = (0..N_HOLDERS).map(|i| Who::new(NAMES[i], i)).collect();
        for (i, w) in who.iter().enumerate() {
            h.register(w, FUNDS_MINOR[i]);
            if ROLES[i].purchaser {
                h.enroll(w, Role::CoinPurchaser);
            }
            if ROLES[i].redeemer {
                h.enroll(w, Role::Redeemer);
            }
            if ROLES[i].merchant {
                h.enroll(w, Role::Merchant);
            }
        }
        let shop_balance = h
            .core()
            .participant(&who[SHOP].id)
            .expect("registry")
            .and_then(|p| p.enrolled(Role::Merchant).and_then(|e| e.balance))
            .expect("the shop has an aggregate balance");
        let model = Model::new(h.now().0);
        let masters = MasterKeys::random(Suite::Tdes);
        let lus = LoadUnloadServer::open(&h.dir.path().join("lus.redb"), LUS, (&masters).into())
            .expect("lus opens");
        let journal =
            TransferJournal::open(&h.dir.path().join("journal.redb")).expect("journal opens");
        let cards = (0..N_CARDS)
            .map(|i| {
                SmartCard::issue(
                    &masters,
                    CardId::from_bytes([i as u8 + 1; 8]),
                    h.now().plus_secs(100_000_000),
                    Amount::from_minor(CARD_MAX_MINOR),
                )
                .expect("card issued")
            })
            .collect();
        World {
            h,
            who,
            shop_balance,
            model,
            purses: Default::default(),
            copies: Default::default(),
            last: None,
            last_aggregate_redeem: None,
            next_request: 0,
            lus,
            journal,
            cards,
            tally: RefCell::new(Tally::new()),
        }
    }

    fn note(&self, what: impl Into<String>) {
        *self.tally.borrow_mut().entry(what.into()).or_insert(0) += 1;
    }

    /// `who` if its purse has coins, else the next holder whose purse has.
    fn holder_with_coins(&self, who: usize) -> usize {
        (0..N_HOLDERS)
            .map(|i| (who + i) % N_HOLDERS)
            .find(|&i| !self.purses[i].is_empty())
            .unwrap_or(who)
    }

    /// The coins `pick` selects from `who`'s purse (bit i: the i-th coin of
    /// the first eight; none set: the first coin).
    fn pick(&self, who: usize, pick: u8) -> Vec<Coin> {
        let purse = &self.purses[who];
        let mut chosen: Vec<Coin> = (0..purse.len().min(8))
            .filter(|i| pick >> i & 1 == 1)
            .map(|i| purse[i])
            .collect();
        if chosen.is_empty()
            && let Some(first) = purse.first()
        {
            chosen.push(*first);
        }
        chosen
    }

    /// Moves `coins` from `who`'s purse to its copies.
    fn spend_from_purse(&mut self, who: usize, coins: &[CoinId]) {
        let gone: BTreeSet<CoinId> = coins.iter().copied().collect();
        let (spent, kept): (Vec<Coin>, Vec<Coin>) = self.purses[who]
            .iter()
            .partition(|c| gone.contains(&c.id()));
        self.purses[who] = kept;
        self.copies[who].extend(spent);
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op.clone() {
            Op::Buy {
                who,
                lines,
                anonymous,
                poll_again,
            } => self.buy(who, &lines, anonymous, poll_again),
            Op::Pay {
                from,
                to,
                pick,
                payout,
                split,
            } => {
                let from = self.holder_with_coins(from);
                let to = if to == from { (to + 1) % N_HOLDERS } else { to };
                self.pay(from, to, pick, payout, split)
            }
            Op::Change { who, pick, split } => {
                let who = self.holder_with_coins(who);
                let coins = self.pick(who, pick);
                if coins.is_empty() {
                    self.note("change/empty purse");
                    return Ok(());
                }
                let total = coins.iter().map(|c| c.value().minor_units()).sum();
                let core = self.h.core();
                let (awaiting, vreq) = SelfPayment::change(
                    core.suite(),
                    &self.h.pk_i(),
                    self.who[who].sk,
                    core.id(),
                    &self.who[who].id,
                    coins.clone(),
                    output_spec(total, split),
                )
                .expect("change request");
                self.validate(
                    "change",
                    Kind::Payment,
                    who,
                    who,
                    coins,
                    Payout::Coins,
                    awaiting,
                    vreq,
                    None,
                )
            }
            Op::Refresh { who, pick } => {
                // A purse refreshes its expired coins if it has any (those
                // still in their grace period first; it cannot tell the
                // others are dead until the issuer says so): the first
                // holder from `who` on that has some does.
                let now = self.model.now;
                let in_grace =
                    |c: &Coin| c.body.expiry.0 <= now && now < c.body.expiry.0 + model::GRACE_SECS;
                let expired = |c: &Coin| c.body.expiry.0 <= now;
                let first_with = |f: &dyn Fn(&Coin) -> bool| {
                    (0..N_HOLDERS)
                        .map(|i| (who + i) % N_HOLDERS)
                        .find(|&i| self.purses[i].iter().any(f))
                        .map(|i| {
                            let coins: Vec<Coin> = self.purses[i]
                                .iter()
                                .filter(|c| f(c))
                                .take(8)
                                .copied()
                                .collect();
                            (i, coins)
                        })
                };
                let (who, coins) = first_with(&in_grace)
                    .or_else(|| first_with(&expired))
                    .unwrap_or_else(|| {
                        let who = self.holder_with_coins(who);
                        (who, self.pick(who, pick))
                    });
                if coins.is_empty() {
                    self.note("refresh/empty purse");
                    return Ok(());
                }
                let total = coins.iter().map(|c| c.value().minor_units()).sum();
                let core = self.h.core();
                let (awaiting, vreq) = SelfPayment::refresh(
                    core.suite(),
                    &self.h.pk_i(),
                    self.who[who].sk,
                    core.id(),
                    &self.who[who].id,
                    coins.clone(),
                    output_spec(total, false),
                )
                .expect("refresh request");
                self.validate(
                    "refresh",
                    Kind::Refresh,
                    who,
                    who,
                    coins,
                    Payout::Coins,
                    awaiting,
                    vreq,
                    None,
                )
            }
            Op::Redeem { who, pick } => {
                let who = self.holder_with_coins(who);
                let coins = self.pick(who, pick);
                if coins.is_empty() {
                    self.note("redeem/empty purse");
                    return Ok(());
                }
                let core = self.h.core();
                let (awaiting, vreq) = SelfPayment::redeem(
                    core.suite(),
                    &self.h.pk_i(),
                    self.who[who].sk,
                    core.id(),
                    &self.who[who].id,
                    coins.clone(),
                    self.who[who].account.clone(),
                )
                .expect("redeem request");
                self.validate(
                    "redeem",
                    Kind::Payment,
                    who,
                    who,
                    coins,
                    Payout::Redeem,
                    awaiting,
                    vreq,
                    None,
                )
            }
            Op::RedeemAggregate { amount_sel, repeat } => self.redeem_aggregate(amount_sel, repeat),
            Op::Refund { who, repeat } => self.refund(who, repeat),
            Op::DoubleSpend {
                who,
                to_offset,
                pick,
            } => {
                let who = (0..N_HOLDERS)
                    .map(|i| (who + i) % N_HOLDERS)
                    .find(|&i| !self.copies[i].is_empty())
                    .unwrap_or(who);
                self.double_spend(who, (who + to_offset) % N_HOLDERS, pick)
            }
            Op::Retransmit { fresh_key } => self.retransmit(fresh_key),
            Op::CardLoad { who, card, pick } => self.card_load(who, card, pick),
            Op::CardUnload {
                card,
                to,
                amount_sel,
            } => self.card_unload(card, to, amount_sel),
            Op::CardToCard { from, amount_sel } => self.card_to_card(from, amount_sel),
            Op::Advance(jump) => {
                let now = self.model.now;
                let next = |grace: u64| {
                    self.purses
                        .iter()
                        .flatten()
                        .map(|c| c.body.expiry.0 + grace)
                        .filter(|&t| t > now)
                        .min()
                };
                let (secs, label) = match jump {
                    Jump::Secs(secs) => (secs, "advance"),
                    Jump::ToNextExpiry => {
                        next(0).map_or((150, "advance"), |t| (t - now, "advance/to an expiry"))
                    }
                    Jump::ToNextGraceEnd => next(model::GRACE_SECS)
                        .map_or((150, "advance"), |t| (t - now, "advance/to a grace end")),
                };
                self.h.clock.advance(secs);
                self.model.advance(secs);
                self.h.core().rotate_epoch_if_due().expect("epoch rotation");
                self.model.rotate_epoch_if_due();
                self.note(label);
                Ok(())
            }
            Op::Restart => {
                self.h.restart();
                self.model.rotate_epoch_if_due();
                self.note("restart");
                Ok(())
            }
        }
    }

    /// Softcash to Cardcash: the holder's unexpired coins among those
    /// `pick` selects pay for a load of their value.
    fn card_load(&mut self, who: usize, card: usize, pick: u8) -> Result<(), TestCaseError> {
        let who = (0..N_HOLDERS)
            .map(|i| (who + i) % N_HOLDERS)
            .find(|&i| {
                self.purses[i]
                    .iter()
                    .any(|c| self.model.loadable(i, &c.id()))
            })
            .unwrap_or(who);
        let coins: Vec<Coin> = self
            .pick(who, pick)
            .into_iter()
            .filter(|c| self.model.loadable(who, &c.id()))
            .collect();
        if coins.is_empty() {
            self.note("card-load/nothing loadable");
            return Ok(());
        }
        let out = self
            .with_transfers(|transfers, cards, now| {
                transfers.soft_to_card(TransferId::random(), &mut cards[card], &coins, now, None)
            })
            .map_err(|e| TestCaseError::fail(format!("card load failed: {e}")))?;
        prop_assert!(
            matches!(out, SoftToCard::Loaded(_)),
            "the model loads, the issuer did not: {:?}",
            out
        );
        self.model.apply_card_load(who, card, &ids(&coins));
        self.spend_from_purse(who, &ids(&coins));
        self.note("card-load/loaded");
        Ok(())
    }

    /// Runs `f` with the transfers between the load/unload server, a
    /// freshly opened card agency and the cards, at the harness's time. The
    /// agency is closed again before this returns, as a terminal would.
    fn with_transfers<R>(
        &mut self,
        f: impl FnOnce(&Transfers<'_, CardAgency<'_>>, &mut [SmartCard], Timestamp) -> R,
    ) -> R {
        let now = self.h.now();
        let agency = CardAgency::open(self.h.core()).expect("agency opens");
        let transfers = Transfers::new(
            &self.journal,
            CardTerminal::new(&self.lus, &agency),
            &agency,
        );
        f(&transfers, &mut self.cards, now)
    }

    /// `card` if it holds value, else the next card that does, and an
    /// amount of 1 to its balance chosen by `sel`; `None` if every card is
    /// empty.
    fn card_and_amount(&self, card: usize, sel: u16) -> Option<(usize, u64)> {
        let card = (0..N_CARDS)
            .map(|i| (card + i) % N_CARDS)
            .find(|&i| self.model.card_minor[i] > 0)?;
        Some((card, 1 + u64::from(sel) % self.model.card_minor[card]))
    }

    /// Cardcash to Softcash: part of the card's value as fresh coins.
    fn card_unload(&mut self, card: usize, to: usize, sel: u16) -> Result<(), TestCaseError> {
        let Some((card, amount)) = self.card_and_amount(card, sel) else {
            self.note("card-unload/empty card");
            return Ok(());
        };
        let out = self
            .with_transfers(|transfers, cards, now| {
                let value = Amount::from_minor(amount);
                transfers.card_to_soft(TransferId::random(), &mut cards[card], value, now, None)
            })
            .map_err(|e| TestCaseError::fail(format!("card unload failed: {e}")))?;
        let CardToSoft::Issued(coins) = out else {
            return Err(TestCaseError::fail(format!(
                "the model unloads {amount}, the issuer did not: {out:?}"
            )));
        };
        prop_assert_eq!(
            coins.iter().map(|c| c.value().minor_units()).sum::<u64>(),
            amount
        );
        self.model.apply_card_unload(card, to, &id_values(&coins));
        self.purses[to].extend(coins);
        self.note("card-unload/coins");
        Ok(())
    }

    /// Card to card through the issuer (an unload and a load).
    fn card_to_card(&mut self, from: usize, sel: u16) -> Result<(), TestCaseError> {
        let Some((from, amount)) = self.card_and_amount(from, sel) else {
            self.note("card-to-card/empty card");
            return Ok(());
        };
        let to = (from + 1) % N_CARDS;
        let out = self
            .with_transfers(|transfers, cards, now| {
                let (low, high) = cards.split_at_mut(1);
                let (payer, payee) = if from == 0 {
                    (&mut low[0], &mut high[0])
                } else {
                    (&mut high[0], &mut low[0])
                };
                let value = Amount::from_minor(amount);
                transfers.card_to_card(TransferId::random(), payer, payee, value, now, None)
            })
            .map_err(|e| TestCaseError::fail(format!("card to card failed: {e}")))?;
        prop_assert!(
            matches!(out, CardToCard::Loaded(_)),
            "the model moves {}, the issuer did not: {:?}",
            amount,
            out
        );
        self.model.apply_card_to_card(from, to, amount);
        self.note("card-to-card/moved");
        Ok(())
    }

    fn buy(
        &mut self,
        who: usize,
        lines: &[(u32, usize)],
        anonymous: bool,
        poll_again: bool,
    ) -> Result<(), TestCaseError> {
        let lines: Vec<(u32, u64)> = lines
            .iter()
            .map(|&(n, d)| (n, DENOMINATIONS_MINOR[d]))
            .collect();
        let spec = spec(&lines);
        let amount = spec.total().expect("total").minor_units();
        let expected = self.model.purchase_outcome(who, amount);
        if expected == Err(RejectReason::NotEnrolled) {
            // Refused at WRequest1: no session for a non-purchaser.
            let refused = self.h.wrequest1(&self.who[who]);
            prop_assert!(
                matches!(refused, Err(vc_actors::IssuerError::NoSuchEnrollment)),
                "WRequest1 of a non-purchaser: {:?}",
                refused.map(|w2| w2.purchase)
            );
            self.note("buy/refused NotEnrolled");
            return Ok(());
        }
        let (awaiting, iss1) = self
            .h
            .start_purchase(&self.who[who], spec.clone(), anonymous);
        match (
            awaiting.on_issuance1(&iss1).expect("Issuance1 opens"),
            expected,
        ) {
            (PurchaseUpdate::Issued { coins, ack }, Ok(())) => {
                prop_assert_eq!(sorted_values(&coins), sorted_spec_values(&spec));
                for c in &coins {
                    prop_assert_eq!(c.body.expiry.0, self.model.new_coin_expiry());
                }
                if poll_again {
                    let again = self.h.core().purchase_poll(&awaiting.poll()).expect("poll");
                    match awaiting.on_issuance1(&again).expect("opens") {
                        PurchaseUpdate::Issued { coins: same, .. } => {
                            prop_assert_eq!(&same, &coins, "a second poll changed the coins");
                        }
                        other => prop_assert!(false, "second poll: {:?}", other),
                    }
                }
                self.h.core().purchase_issuance2(&ack).expect("ack");
                self.model
                    .apply_purchase(who, &id_values(&coins), anonymous);
                self.purses[who].extend(coins);
                self.note(if anonymous {
                    "buy/issued anonymous"
                } else {
                    "buy/issued"
                });
            }
            (PurchaseUpdate::Rejected(s), Err(reason)) => {
                prop_assert_eq!(s.reason, reason);
                self.note(format!("buy/refused {}", reason_label(reason)));
            }
            (got, want) => prop_assert!(false, "purchase: issuer said {:?}, model {:?}", got, want),
        }
        Ok(())
    }

    fn pay(
        &mut self,
        from: usize,
        to: usize,
        pick: u8,
        payout: Payout,
        split: bool,
    ) -> Result<(), TestCaseError> {
        let coins = self.pick(from, pick);
        if coins.is_empty() {
            self.note("pay/empty purse");
            return Ok(());
        }
        let total = coins.iter().map(|c| c.value().minor_units()).sum();
        let option = match payout {
            Payout::Coins => VOption::Refresh {
                spec: output_spec(total, split),
            },
            Payout::Redeem => VOption::Redeem {
                bank_account: self.who[to].account.clone(),
            },
            Payout::Aggregate => VOption::Aggregate,
        };
        let (payee_state, _payer, _invoice, send) =
            self.h
                .send_coins(&self.who[from], &self.who[to], coins.clone());
        let (awaiting, vreq) = self.h.validation(&payee_state, &send, option.clone());
        self.validate(
            "pay",
            Kind::Payment,
            from,
            to,
            coins,
            payout,
            awaiting,
            vreq,
            Some((payee_state, send, option)),
        )
    }

    /// Sends `vreq` and checks the answer against the model, then applies it
    /// to the model and the purses.
    #[allow(clippy::too_many_arguments)]
    fn validate(
        &mut self,
        label: &str,
        kind: Kind,
        payer: usize,
        payee: usize,
        coins: Vec<Coin>,
        payout: Payout,
        awaiting: PayeeAwaitingIssuance,
        vreq: ValidationRequest,
        fresh: Option<(PaymentPayee, SendCoins, VOption)>,
    ) -> Result<(), TestCaseError> {
        let inputs = ids(&coins);
        let expected = self
            .model
            .validation_outcome(kind, payer, payee, &inputs, payout);
        let iss1 = self.h.core().validate(&vreq).expect("the issuer answers");
        let outcome = awaiting
            .on_issuance1(self.who[payee].sk, &iss1)
            .expect("Issuance1 opens");
        let now = self.model.now;
        let took_expired = coins.iter().any(|c| c.body.expiry.0 <= now);
        let committed = match (outcome, expected) {
            (PayeeOutcome::Coins { coins: new, ack }, Ok(())) => {
                if took_expired {
                    self.note(format!("{label}/new coins for expired coins"));
                }
                prop_assert_eq!(payout, Payout::Coins);
                let total: u64 = coins.iter().map(|c| c.value().minor_units()).sum();
                prop_assert_eq!(
                    new.iter().map(|c| c.value().minor_units()).sum::<u64>(),
                    total
                );
                for c in &new {
                    prop_assert_eq!(c.body.expiry.0, self.model.new_coin_expiry());
                }
                self.h.core().payment_issuance2(&ack).expect("ack");
                self.model
                    .apply_validation(payer, payee, &inputs, payout, &id_values(&new));
                self.spend_from_purse(payer, &inputs);
                self.purses[payee].extend(new.iter().copied());
                self.note(format!("{label}/new coins"));
                Committed::Coins(new)
            }
            (PayeeOutcome::Receipt(r), Ok(())) => {
                let want = match payout {
                    Payout::Redeem => ReceiptKind::Redeemed,
                    Payout::Aggregate => ReceiptKind::Aggregated,
                    Payout::Coins => {
                        return Err(TestCaseError::fail("a receipt where coins were due"));
                    }
                };
                prop_assert_eq!(r.kind, want);
                self.model
                    .apply_validation(payer, payee, &inputs, payout, &[]);
                self.spend_from_purse(payer, &inputs);
                self.note(format!("{label}/{:?}", r.kind));
                Committed::Receipt(r.kind)
            }
            (PayeeOutcome::Rejected(s), Err(reason)) => {
                prop_assert_eq!(s.reason, reason);
                if reason == RejectReason::AlreadySpent || reason == RejectReason::Expired {
                    let named: BTreeSet<CoinId> = s.bad_coins.iter().copied().collect();
                    prop_assert!(
                        !named.is_empty(),
                        "a refusal for {:?} names no coin",
                        reason
                    );
                    prop_assert!(
                        named.iter().all(|c| inputs.contains(c)),
                        "the refusal names coins not paid"
                    );
                }
                self.note(format!("{label}/refused {}", reason_label(reason)));
                return Ok(());
            }
            (got, want) => {
                return Err(TestCaseError::fail(format!(
                    "{label}: issuer said {got:?}, model {want:?}"
                )));
            }
        };
        self.last = Some(LastCommitted {
            payee,
            awaiting,
            vreq,
            fresh,
            outcome: committed,
        });
        Ok(())
    }

    fn double_spend(&mut self, who: usize, to: usize, pick: u8) -> Result<(), TestCaseError> {
        let Some(&copy) = self.copies[who].get(usize::from(pick) % self.copies[who].len().max(1))
        else {
            self.note("double-spend/no copy");
            return Ok(());
        };
        let total = copy.value().minor_units();
        let option = VOption::Refresh {
            spec: output_spec(total, false),
        };
        let (payee_state, _payer, _invoice, send) =
            self.h.send_coins(&self.who[who], &self.who[to], vec![copy]);
        let (awaiting, vreq) = self.h.validation(&payee_state, &send, option);
        prop_assert_eq!(
            self.model
                .validation_outcome(Kind::Payment, who, to, &[copy.id()], Payout::Coins),
            Err(RejectReason::AlreadySpent),
            "the model lost a spent coin"
        );
        self.validate(
            "double-spend",
            Kind::Payment,
            who,
            to,
            vec![copy],
            Payout::Coins,
            awaiting,
            vreq,
            None,
        )
    }

    fn retransmit(&mut self, fresh_key: bool) -> Result<(), TestCaseError> {
        let Some(last) = &self.last else {
            self.note("retransmit/nothing yet");
            return Ok(());
        };
        let (awaiting, vreq) = match (&last.fresh, fresh_key) {
            (Some((payee_state, send, option)), true) => {
                self.h.validation(payee_state, send, option.clone())
            }
            _ => (last.awaiting.clone(), last.vreq.clone()),
        };
        let iss1 = self.h.core().validate(&vreq).expect("the issuer answers");
        let outcome = awaiting
            .on_issuance1(self.who[last.payee].sk, &iss1)
            .expect("Issuance1 opens");
        match (outcome, &last.outcome) {
            (PayeeOutcome::Coins { coins, ack }, Committed::Coins(first)) => {
                prop_assert_eq!(&coins, first, "a retransmission got other coins");
                self.h.core().payment_issuance2(&ack).expect("ack again");
            }
            (PayeeOutcome::Receipt(r), Committed::Receipt(kind)) => {
                prop_assert_eq!(r.kind, *kind);
            }
            (got, first) => prop_assert!(false, "retransmission: {:?}, first {:?}", got, first),
        }
        self.note(if fresh_key && last.fresh.is_some() {
            "retransmit/new K_PY"
        } else {
            "retransmit/same bytes"
        });
        Ok(())
    }

    fn redeem_aggregate(&mut self, amount_sel: u16, repeat: bool) -> Result<(), TestCaseError> {
        let shop = &self.who[SHOP].id;
        if repeat && let Some((request, amount)) = self.last_aggregate_redeem {
            self.h
                .core()
                .redeem_aggregate(shop, Amount::from_minor(amount), request)
                .expect("a repeated redemption is answered");
            self.note("redeem-aggregate/repeat");
            return Ok(());
        }
        // Mostly within the balance, sometimes beyond it.
        let balance = self.model.aggregate_minor;
        let sel = u64::from(amount_sel);
        let amount = if balance > 0 && !sel.is_multiple_of(4) {
            1 + sel / 4 % balance
        } else {
            balance + 1 + sel % 50
        };
        self.next_request += 1;
        let mut request = [0u8; 16];
        request[..8].copy_from_slice(&self.next_request.to_le_bytes());
        let result = self
            .h
            .core()
            .redeem_aggregate(shop, Amount::from_minor(amount), request);
        match (result, self.model.redeem_aggregate_outcome(amount)) {
            (Ok(()), true) => {
                self.model.apply_redeem_aggregate(amount);
                self.last_aggregate_redeem = Some((request, amount));
                self.note("redeem-aggregate/credited");
            }
            (Err(_), false) => self.note("redeem-aggregate/refused"),
            (got, want) => prop_assert!(
                false,
                "redeem {} of the aggregate: issuer {:?}, model allows {}",
                amount,
                got,
                want
            ),
        }
        Ok(())
    }

    fn refund(&mut self, who: usize, repeat: bool) -> Result<(), TestCaseError> {
        let w = &self.who[who];
        let core = self.h.core();
        let (client, req) = self.h.refund_request(w);
        let answer = core.refund(&req).expect("the issuer answers");
        let update = client.on_answer(w.sk, &answer).expect("the answer opens");
        let expected = self.model.refund_revokes(who);
        match update {
            RefundUpdate::Replaced { revoked, coins } => {
                let revoked: BTreeSet<CoinId> = revoked.into_iter().collect();
                prop_assert_eq!(&revoked, &expected, "revoked other coins than the model");
                prop_assert_eq!(sorted_values(&coins), self.model.values_of(who, &expected));
                for c in &coins {
                    prop_assert_eq!(c.body.expiry.0, self.model.new_coin_expiry());
                }
                if repeat {
                    let again = core.refund(&req).expect("answered again");
                    match client.on_answer(w.sk, &again).expect("opens") {
                        RefundUpdate::Replaced { coins: same, .. } => {
                            prop_assert_eq!(&same, &coins, "a repeated refund changed the coins");
                        }
                        other => prop_assert!(false, "repeated refund: {:?}", other),
                    }
                }
                let revoked: Vec<CoinId> = revoked.into_iter().collect();
                self.model.apply_refund(who, &expected, &id_values(&coins));
                self.spend_from_purse(who, &revoked);
                self.purses[who].extend(coins);
                self.note("refund/replaced");
            }
            RefundUpdate::Rejected(s) => {
                prop_assert!(expected.is_empty(), "refund refused with coins to revoke");
                prop_assert_eq!(s.reason, RejectReason::NothingToRefund);
                self.note("refund/nothing to refund");
            }
        }
        Ok(())
    }

    /// The issuer, the purses and the model agree on every coin and balance.
    fn check_agree(&self) -> Result<(), TestCaseError> {
        let core = self.h.core();
        let mut model_unspent = BTreeSet::new();
        for (who, name) in NAMES.iter().enumerate() {
            let wallet = &self.model.wallets[who];
            let purse: BTreeMap<CoinId, Coin> =
                self.purses[who].iter().map(|c| (c.id(), *c)).collect();
            prop_assert_eq!(
                purse.len(),
                self.purses[who].len(),
                "a coin twice in a purse"
            );
            prop_assert_eq!(
                purse.keys().collect::<Vec<_>>(),
                wallet.keys().collect::<Vec<_>>(),
                "{}'s purse is not the model's wallet",
                name
            );
            for (id, coin) in &purse {
                let m = wallet[id];
                prop_assert_eq!(coin.value().minor_units(), m.value);
                prop_assert_eq!(coin.body.expiry.0, m.expires_at);
                prop_assert_eq!(
                    core.unspent_coin(id),
                    Some(coin.body),
                    "the issuer does not hold {}'s coin unspent",
                    name
                );
            }
            model_unspent.extend(wallet.keys().copied());
            let bank = self
                .h
                .bank()
                .balance(&self.who[who].account)
                .expect("bank balance")
                .minor_units();
            prop_assert_eq!(bank, self.model.bank_minor[who], "{}'s bank account", name);
        }
        prop_assert_eq!(
            &core.unspent_ids(),
            &model_unspent,
            "the issuer's unspent coins are not the model's"
        );
        for id in &self.model.gone {
            prop_assert!(
                core.unspent_coin(id).is_none(),
                "a gone coin is unspent again"
            );
        }
        // What the issuer tells anyone who asks, signed: every coin the model
        // knows is unspent or spent as the model says. On every other check
        // the housekeeper's catch-up runs first, so the shards have forgotten
        // the spent coins and the coin-status projection answers for them;
        // likewise the transaction index then answers every later repeat of
        // a transaction committed so far.
        if self.model.gone.len() % 2 == 1 {
            core.checkpoint_coin_status().expect("coin-status catch-up");
            prop_assert_eq!(core.n_gone(), 0, "the shards still hold spent coins");
            core.checkpoint_tx_index()
                .expect("transaction-index catch-up");
            prop_assert_eq!(
                core.n_committed_in_memory(),
                0,
                "committed transactions outlived the index catch-up"
            );
        }
        let asked: Vec<(CoinId, CoinState)> = model_unspent
            .iter()
            .map(|id| (*id, CoinState::Unspent))
            .chain(self.model.gone.iter().map(|id| (*id, CoinState::Spent)))
            .collect();
        for chunk in asked.chunks(ledger::constants::COINS_PER_TX_MAX) {
            let query = CoinStatusQuery {
                coins: CoinSerials::new(chunk.iter().map(|(id, _)| *id).collect())
                    .expect("a chunk fits a query"),
            };
            let answer = core.coin_status(&query).expect("the issuer answers");
            let entries = verify_coin_status(&self.h.pk_i(), &query, &answer)
                .expect("the answer is signed and answers the query");
            for (entry, (id, want)) in entries.iter().zip(chunk) {
                prop_assert_eq!(entry.state, *want, "the issuer's signed status of {}", id);
            }
        }
        // And what the log says, replayed from its first record.
        prop_assert_eq!(
            &core.unspent_ids_from_log().expect("log replay"),
            &model_unspent,
            "a replay of the log disagrees with the model"
        );
        prop_assert_eq!(
            core.n_reserved(),
            0,
            "a reservation outlived its transaction"
        );
        prop_assert_eq!(
            core.aggregate_balance(self.shop_balance).minor_units(),
            self.model.aggregate_minor,
            "the shop's aggregate"
        );
        let totals = core.totals();
        prop_assert_eq!(
            totals.outstanding,
            i128::from(self.model.outstanding_minor())
        );
        prop_assert_eq!(totals.aggregates, i128::from(self.model.aggregate_minor));
        prop_assert_eq!(totals.real_in, i128::from(self.model.money_in_minor));
        prop_assert_eq!(totals.real_out, i128::from(self.model.money_out_minor));
        let (_, epoch) = core.current_epoch().expect("an epoch is open");
        prop_assert_eq!(epoch.coins_expire_at.0, self.model.new_coin_expiry());
        // The cards: each holds the model's balance, nothing is left
        // pending, and the issuer owes the card system what they hold.
        for (i, card) in self.cards.iter().enumerate() {
            let balance = card.balance().expect("card balance").minor_units();
            prop_assert_eq!(balance, self.model.card_minor[i], "card {}", i);
            prop_assert!(
                card.info().expect("card info").pending.is_none(),
                "card {} left pending",
                i
            );
        }
        prop_assert_eq!(totals.card_float, self.model.card_float_minor, "card float");
        prop_assert_eq!(
            self.model.card_float_minor,
            self.model
                .card_minor
                .iter()
                .map(|&v| i128::from(v))
                .sum::<i128>(),
            "the model's float is what its cards hold"
        );
        Ok(())
    }

    /// Stops the issuer and runs the auditor over its log and coin-status
    /// checkpoint: it must pass and agree with the model.
    fn audit(mut self) -> Result<Tally, TestCaseError> {
        self.h.assert_conserved();
        let report = self.h.stop_and_audit();
        prop_assert_eq!(
            &report.outcome,
            &replay::Outcome::Holds,
            "{}",
            report.headline()
        );
        prop_assert_eq!(report.unspent_coins, self.model.n_unspent() as u64);
        prop_assert_eq!(
            report.totals.outstanding,
            i128::from(self.model.outstanding_minor())
        );
        prop_assert_eq!(
            report.totals.aggregates,
            i128::from(self.model.aggregate_minor)
        );
        prop_assert_eq!(report.totals.real_in, i128::from(self.model.money_in_minor));
        prop_assert_eq!(
            report.totals.real_out,
            i128::from(self.model.money_out_minor)
        );
        prop_assert_eq!(report.totals.card_float, self.model.card_float_minor);
        self.note("audit/holds");
        Ok(self.tally.into_inner())
    }
}

fn run_case(ops: &[Op]) -> Result<Tally, TestCaseError> {
    let mut world = World::new();
    world.check_agree()?;
    for (i, op) in ops.iter().enumerate() {
        world
            .step(op)
            .and_then(|()| world.check_agree())
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "step {i} {op:?}: {e}\nthe steps up to it: {:#?}",
                    &ops[..=i]
                ))
            })?;
    }
    world.audit()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Outcomes every random run reaches many times over (at least ~5 in 16
/// cases, usually far more), so a generator that drifts away from a path (or
/// a model that refuses everything) is noticed without the test flaking.
/// Rarer paths (the card transfers among them: 1 to 24 of each in 16
/// cases, measured) are pinned by [`a_fixed_day_reaches_every_path`].
/// Rounds of random cases the model test runs at most to reach every path
/// of [`MUST_REACH`].
const MODEL_ROUNDS_MAX: u32 = 4;

const MUST_REACH: &[&str] = &[
    "buy/issued",
    "buy/issued anonymous",
    "buy/refused BankRejected(InsufficientFunds)",
    "pay/new coins",
    "pay/Aggregated",
    "pay/refused NotEnrolled",
    "pay/refused Expired",
    "change/new coins",
    "refresh/new coins",
    "redeem/Redeemed",
    "double-spend/refused AlreadySpent",
    "refund/replaced",
    "retransmit/same bytes",
    "advance",
    "restart",
    "audit/holds",
];

/// A fixed sequence through every path, rare ones included, checked by the
/// same model after every step and audited at the end.
fn fixed_day() -> Vec<Op> {
    use Op::*;
    vec![
        // alice: 100, 100, 250 in her name; bob: 250 x3 anonymously, then
        // the bank refuses him (50 left).
        Buy {
            who: ALICE,
            lines: vec![(2, 2), (1, 3)],
            anonymous: false,
            poll_again: true,
        },
        Buy {
            who: BOB,
            lines: vec![(3, 3)],
            anonymous: true,
            poll_again: false,
        },
        Buy {
            who: BOB,
            lines: vec![(1, 3)],
            anonymous: false,
            poll_again: false,
        },
        // alice's first 100 to the shop's aggregate; bob pays the shop 250
        // in new coins, then alice 250 by redemption to her account.
        Pay {
            from: ALICE,
            to: SHOP,
            pick: 0b1,
            payout: Payout::Aggregate,
            split: false,
        },
        Pay {
            from: BOB,
            to: SHOP,
            pick: 0b1,
            payout: Payout::Coins,
            split: true,
        },
        Pay {
            from: BOB,
            to: ALICE,
            pick: 0b1,
            payout: Payout::Redeem,
            split: false,
        },
        // the same payment again under a new K_PY: the same receipt, no
        // second credit
        Retransmit { fresh_key: true },
        // bob may not redeem
        Pay {
            from: ALICE,
            to: BOB,
            pick: 0b1,
            payout: Payout::Redeem,
            split: false,
        },
        Change {
            who: SHOP,
            pick: 0b11,
            split: true,
        },
        Redeem {
            who: ALICE,
            pick: 0b1,
        },
        Redeem {
            who: BOB,
            pick: 0b1,
        },
        RedeemAggregate {
            amount_sel: 5,
            repeat: false,
        },
        RedeemAggregate {
            amount_sel: 0,
            repeat: true,
        },
        RedeemAggregate {
            amount_sel: 0,
            repeat: false,
        },
        // alice's 250 is revoked and replaced; bob's coins are anonymous
        Refund {
            who: ALICE,
            repeat: true,
        },
        // the replacements are in her name too: a new refund replaces them
        Refund {
            who: ALICE,
            repeat: false,
        },
        Refund {
            who: BOB,
            repeat: false,
        },
        DoubleSpend {
            who: ALICE,
            to_offset: 1,
            pick: 0,
        },
        Advance(Jump::ToNextExpiry),
        Pay {
            from: BOB,
            to: SHOP,
            pick: 0b1,
            payout: Payout::Coins,
            split: false,
        },
        Refresh { who: BOB, pick: 0 },
        Restart,
        Retransmit { fresh_key: false },
        Advance(Jump::ToNextGraceEnd),
        Refresh { who: SHOP, pick: 0 },
        // exactly one epoch period: a new epoch opens
        Advance(Jump::Secs(400)),
        Buy {
            who: SHOP,
            lines: vec![(1, 0)],
            anonymous: false,
            poll_again: false,
        },
        Refund {
            who: SHOP,
            repeat: false,
        },
        // cards: a load from alice's coins, card to card, an unload to
        // bob, and bob pays with the unloaded coins
        CardLoad {
            who: ALICE,
            card: 0,
            pick: 0b11,
        },
        CardToCard {
            from: 0,
            amount_sel: 7,
        },
        CardUnload {
            card: 1,
            to: BOB,
            amount_sel: 3,
        },
        Restart,
        CardUnload {
            card: 0,
            to: SHOP,
            amount_sel: 1,
        },
        Pay {
            from: BOB,
            to: SHOP,
            pick: 0b1,
            payout: Payout::Coins,
            split: false,
        },
    ]
}

/// Every path of the model-based test, rare ones included, in one fixed
/// sequence: a generator change that loses one still has it covered here.
#[test]
fn a_fixed_day_reaches_every_path() {
    let tally = run_case(&fixed_day()).unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        "buy/issued",
        "buy/issued anonymous",
        "buy/refused BankRejected(InsufficientFunds)",
        "pay/Aggregated",
        "pay/new coins",
        "pay/Redeemed",
        "retransmit/new K_PY",
        "pay/refused NotEnrolled",
        "change/new coins",
        "redeem/Redeemed",
        "redeem/refused NotEnrolled",
        "redeem-aggregate/credited",
        "redeem-aggregate/repeat",
        "redeem-aggregate/refused",
        "refund/replaced",
        "refund/nothing to refund",
        "double-spend/refused AlreadySpent",
        "advance/to an expiry",
        "pay/refused Expired",
        "refresh/new coins for expired coins",
        "restart",
        "retransmit/same bytes",
        "advance/to a grace end",
        "refresh/refused Expired",
        "advance",
        "card-load/loaded",
        "card-to-card/moved",
        "card-unload/coins",
        "audit/holds",
    ];
    let missed: Vec<&str> = expected
        .into_iter()
        .filter(|what| !tally.contains_key(*what))
        .collect();
    assert!(
        missed.is_empty(),
        "never reached {missed:?}; reached {tally:?}"
    );
}

#[test]
fn the_issuer_agrees_with_the_model_after_every_step() {
    let seed = env_u64("VC_MODEL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let cases = env_u64("VC_MODEL_CASES").map_or(16, |n| n as u32);
    let config = Config {
        cases,
        // The regressions file would land in a directory others own; the
        // seed printed on failure replays the run instead.
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed.to_le_bytes(); 4].concat());
    let mut runner = TestRunner::new_with_rng(config, rng);
    let started = std::time::Instant::now();
    // Random cases reach every path only most of the time: a round that
    // leaves one unreached is followed by another (same seed, the RNG runs
    // on), so a path the issuer can no longer take still fails the test,
    // while an unlucky draw does not.
    let mut rounds = 0;
    let (result, missed) = loop {
        rounds += 1;
        let result = runner.run(&proptest::collection::vec(op(), 20..=40), |ops| {
            let tally = run_case(&ops)?;
            let mut all = TALLY.lock().unwrap_or_else(|p| p.into_inner());
            for (what, n) in tally {
                *all.entry(what).or_insert(0) += n;
            }
            Ok(())
        });
        let tally = TALLY.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let missed: Vec<&str> = MUST_REACH
            .iter()
            .copied()
            .filter(|what| !tally.contains_key(*what))
            .collect();
        if result.is_err() || missed.is_empty() || rounds == MODEL_ROUNDS_MAX {
            break (result, missed);
        }
    };
    let tally = TALLY.lock().unwrap_or_else(|p| p.into_inner()).clone();
    eprintln!(
        "model-based run, seed {seed}, {rounds} round(s) of {cases} cases, {:.1} s:",
        started.elapsed().as_secs_f64()
    );
    for (what, n) in &tally {
        eprintln!("  {n:5}  {what}");
    }
    if let Err(e) = result {
        panic!("VC_MODEL_SEED={seed}: {e}");
    }
    assert!(
        missed.is_empty(),
        "VC_MODEL_SEED={seed}: never reached {missed:?}"
    );
}
