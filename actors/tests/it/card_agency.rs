//! The real issuer as the card systems' payment agency: card-bridge's
//! `Transfers`, `CardTerminal` and `LoadUnloadServer` against `CardAgency`
//! over an `IssuerCore`. Value enters only through coin purchases, so at
//! every quiet point Σ card balances + outstanding coins = Σ bought, and
//! Σ card balances = what the issuer's log says it owes the LUS plus what
//! clearing already paid it. Each transfer is stopped at every step, the
//! issuer, the LUS and the journal are reopened from their files, and the
//! transfer is run again: it completes or is fully undone. Every test ends
//! with the issuer's conservation audit; the last ones with `replay`'s.

use crate::util;

use card_bridge::agency::Agency;
use card_bridge::card::SmartCard;
use card_bridge::clearing;
use card_bridge::crypto::{MasterKeys, Suite};
use card_bridge::flows::{CardTerminal, LossPoint};
use card_bridge::lus::LoadUnloadServer;
use card_bridge::transfer::{
    CardToCard, CardToSoft, SoftCash, SoftToCard, TransferError, TransferFault, TransferId,
    TransferJournal, Transfers,
};
use ledger::{Amount, CardId, Coin, Event, IssueCause, LusId, SpendCause, Timestamp};
use protocol::flows::PayeeOutcome;
use util::{Harness, Who, refresh, spec};
use vc_actors::{CardAgency, CoinPresence};

const LUS: LusId = LusId(7);

fn cents(n: u64) -> Amount {
    Amount::from_minor(n)
}

/// The issuer, one LUS, a transfer journal and the cards' masters.
struct World {
    h: Harness,
    masters: MasterKeys,
    lus: Option<LoadUnloadServer>,
    journal: Option<TransferJournal>,
    buyer: Who,
    /// Value bought as coins so far (the only way value enters).
    bought: u64,
    /// Paid to the LUS by clearing, net of what it paid back.
    cleared_to_lus: i128,
}

impl World {
    fn new() -> World {
        World::on(Harness::new())
    }

    fn on(h: Harness) -> World {
        let buyer = h.purchaser("card-holder", 0, 10_000_000);
        let masters = MasterKeys::random(Suite::Tdes);
        let mut w = World {
            h,
            masters,
            lus: None,
            journal: None,
            buyer,
            bought: 0,
            cleared_to_lus: 0,
        };
        w.open_card_side();
        w
    }

    fn open_card_side(&mut self) {
        let dir = self.h.dir.path();
        self.lus = Some(
            LoadUnloadServer::open(&dir.join("lus.redb"), LUS, (&self.masters).into())
                .expect("lus opens"),
        );
        self.journal =
            Some(TransferJournal::open(&dir.join("journal.redb")).expect("journal opens"));
    }

    /// A crash of every server (not the cards): all reopen from their files.
    fn restart(&mut self) {
        self.lus = None;
        self.journal = None;
        self.h.restart();
        self.open_card_side();
    }

    fn lus(&self) -> &LoadUnloadServer {
        self.lus.as_ref().expect("lus open")
    }

    fn now(&self) -> Timestamp {
        self.h.now()
    }

    fn card(&self, n: u8, max: u64) -> SmartCard {
        SmartCard::issue(
            &self.masters,
            CardId::from_bytes([n; 8]),
            self.now().plus_secs(1_000_000),
            cents(max),
        )
        .expect("card issued")
    }

    fn buy(&mut self, v: u64) -> Vec<Coin> {
        self.bought += v;
        self.h.buy(&self.buyer, spec(&[(1, v)]))
    }

    /// Runs `f` with a fresh agency over the running issuer (as a process
    /// would after its start) and the transfers over it.
    fn with<R>(&self, f: impl FnOnce(&CardAgency<'_>, &Transfers<'_, CardAgency<'_>>) -> R) -> R {
        let agency = CardAgency::open(self.h.core()).expect("agency opens");
        let journal = self.journal.as_ref().expect("journal open");
        let t = Transfers::new(journal, CardTerminal::new(self.lus(), &agency), &agency);
        f(&agency, &t)
    }

    fn fund(&mut self, n: u8, v: u64) -> SmartCard {
        let coins = self.buy(v);
        let mut card = self.card(n, 100_000);
        let now = self.now();
        let out = self
            .with(|_, t| t.soft_to_card(TransferId::random(), &mut card, &coins, now, None))
            .expect("card funded");
        assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");
        card
    }

    /// Conservation across both systems, and the issuer's own audit.
    fn assert_conserved(&self, cards: &[&SmartCard]) {
        let on_cards: i128 = cards
            .iter()
            .map(|c| i128::from(c.balance().expect("balance").minor_units()))
            .sum();
        let totals = self.h.core().totals();
        assert_eq!(
            on_cards + totals.outstanding,
            i128::from(self.bought),
            "value created or lost across card and soft cash"
        );
        assert_eq!(
            on_cards,
            totals.card_float + self.cleared_to_lus,
            "the issuer's card float is not what the cards hold"
        );
        for c in cards {
            assert!(
                c.info().expect("info").pending.is_none(),
                "card left pending"
            );
        }
        self.h.assert_conserved();
    }

    /// The issuer's log as events, batch by batch.
    fn logged_events(&self) -> Vec<Event> {
        use ledger::EventStore;
        let store = self.h.core().store();
        let head = store.head().expect("head").last_seq;
        store
            .read(ledger::Seq(1), usize::try_from(head.0).expect("small log"))
            .expect("log reads")
            .into_iter()
            .map(|r| r.record.event)
            .collect()
    }
}

fn faults() -> Vec<TransferFault> {
    let mut v = vec![
        TransferFault::AfterJournal,
        TransferFault::AfterGuarantee,
        TransferFault::BeforeCoins,
        TransferFault::AfterCoins,
    ];
    v.extend(
        LossPoint::ALL
            .iter()
            .filter(|l| **l != LossPoint::L1ToAgency)
            .map(|l| TransferFault::Loss(*l)),
    );
    v
}

#[test]
fn transfers_and_clearing_are_balanced_events_in_the_issuers_log() {
    let mut w = World::new();
    let mut a = w.fund(1, 1_000);
    let mut c = w.card(2, 100_000);
    assert_eq!(a.balance(), Ok(cents(1_000)));
    w.assert_conserved(&[&a, &c]);

    let now = w.now();
    let id = TransferId::random();
    let CardToSoft::Issued(coins) = w
        .with(|_, t| t.card_to_soft(id, &mut a, cents(400), now, None))
        .expect("card to soft")
    else {
        panic!("the unload should commit");
    };
    assert_eq!(w.with(|ag, _| ag.value_of(&coins)), Ok(cents(400)));
    assert!(
        coins
            .iter()
            .all(|k| w.h.core().coin_presence(&k.body.id) == CoinPresence::Unspent)
    );
    // Again, after a restart: the same coins, not a second issue.
    w.restart();
    let again = w
        .with(|_, t| t.card_to_soft(id, &mut a, cents(400), now, None))
        .expect("again");
    assert_eq!(again, CardToSoft::Issued(coins.clone()));
    w.assert_conserved(&[&a, &c]);

    let out = w
        .with(|_, t| t.card_to_card(TransferId::random(), &mut a, &mut c, cents(250), now, None))
        .expect("card to card");
    assert!(matches!(out, CardToCard::Loaded(_)), "{out:?}");
    assert_eq!((a.balance(), c.balance()), (Ok(cents(350)), Ok(cents(250))));
    w.assert_conserved(&[&a, &c]);

    // The coins bought with the unload are real coins: a payee refreshes them.
    let payee = Who::new("payee", 1);
    w.h.register(&payee, 0);
    let paid = w.h.pay(&w.buyer, &payee, coins, refresh(400));
    assert!(matches!(paid, PayeeOutcome::Coins { .. }), "{paid:?}");
    w.assert_conserved(&[&a, &c]);

    // The log: each card leg is one balanced batch of the issuer.
    let events = w.logged_events();
    let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(&|e| matches!(e, Event::CardLoaded { .. })), 2);
    assert_eq!(count(&|e| matches!(e, Event::CardUnloaded { .. })), 2);
    assert_eq!(
        count(&|e| matches!(
            e,
            Event::CoinsSpent {
                cause: SpendCause::CardLoad,
                ..
            }
        )),
        2
    );
    assert_eq!(
        count(&|e| matches!(
            e,
            Event::CoinsIssued {
                cause: IssueCause::CardUnload,
                ..
            }
        )),
        2
    );
    assert_eq!(w.h.core().totals().card_float, 600);

    // Clearing: 1,250 loaded, 650 unloaded; the issuer pays the LUS 600.
    let report = w
        .with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    let s = report.settlement.clone();
    assert_eq!((s.loads, s.unloads), (cents(1_250), cents(650)));
    assert_eq!((s.paid_to_lus, s.received_from_lus), (cents(600), cents(0)));
    w.cleared_to_lus += 600;
    assert_eq!(w.h.core().totals().card_float, 0);
    let at_lus = w.lus().finished_in(s.period).expect("lus records");
    assert_eq!(clearing::position(&at_lus, Some(&s)), 0, "LUS not even");
    let at_issuer = w
        .with(|ag, _| ag.finished_records(LUS, s.period))
        .expect("agency records");
    let settled = w
        .with(|ag, _| ag.settlement(LUS, s.period))
        .expect("settlement");
    assert_eq!(
        clearing::position(&at_issuer, settled.as_ref()),
        0,
        "issuer not even"
    );
    // Clearing the same period again changes nothing, even after a restart.
    w.restart();
    let again = w
        .with(|ag, _| clearing::settle_period(w.lus(), ag, s.period))
        .expect("re-cleared");
    assert_eq!(again.settlement, s);
    assert_eq!(
        w.logged_events()
            .iter()
            .filter(|e| matches!(e, Event::Cleared { .. }))
            .count(),
        1
    );
    w.assert_conserved(&[&a, &c]);
    audit(&mut w, 1_250, 650, 0);
}

/// The auditor over the issuer's files: every rule holds and the LUS's
/// card float is what the cards say.
fn audit(w: &mut World, loaded: u128, unloaded: u128, float: i128) {
    let report = w.h.stop_and_audit();
    assert_eq!(
        report.outcome,
        replay::Outcome::Holds,
        "{}",
        report.headline()
    );
    let server = report
        .card_servers
        .iter()
        .find(|s| s.lus == LUS.0)
        .expect("the LUS is in the report");
    assert_eq!(
        (
            server.loaded_minor,
            server.unloaded_minor,
            server.float_minor
        ),
        (loaded, unloaded, float)
    );
}

#[test]
fn a_card_to_card_transfer_the_payee_cannot_take_goes_back_to_the_payer() {
    let mut w = World::new();
    let mut a = w.fund(1, 1_000);
    let mut small = w.card(2, 100);
    let now = w.now();
    let id = TransferId::random();
    let out = w
        .with(|_, t| t.card_to_card(id, &mut a, &mut small, cents(500), now, None))
        .expect("card to card");
    assert!(matches!(out, CardToCard::Returned(_)), "{out:?}");
    assert_eq!(
        (a.balance(), small.balance()),
        (Ok(cents(1_000)), Ok(cents(0)))
    );
    let again = w
        .with(|_, t| t.card_to_card(id, &mut a, &mut small, cents(500), now, None))
        .expect("again");
    assert_eq!(again, out);
    w.assert_conserved(&[&a, &small]);
}

#[test]
fn the_issuer_refuses_loads_not_paid_with_its_coins() {
    let mut w = World::new();
    let mut a = w.card(1, 100_000);
    let now = w.now();
    // A plain load with a bank holder: the issuer guarantees no such load.
    let holder = ledger::BankAccount::new("someone").expect("account");
    let plain =
        w.with(|ag, _| CardTerminal::new(w.lus(), ag).load(&mut a, cents(10), &holder, now));
    assert!(plain.is_err(), "{plain:?}");
    // Coins already spent cannot be loaded.
    let coins = w.buy(300);
    let first = w
        .with(|_, t| t.soft_to_card(TransferId::random(), &mut a, &coins, now, None))
        .expect("load");
    assert!(matches!(first, SoftToCard::Loaded(_)));
    let second = w.with(|_, t| t.soft_to_card(TransferId::random(), &mut a, &coins, now, None));
    assert!(
        matches!(second, Err(TransferError::SoftCash(_))),
        "{second:?}"
    );
    // Nor coins with a forged tag.
    let mut forged = w.buy(200);
    forged[0].body.value = cents(900);
    let third = w.with(|_, t| t.soft_to_card(TransferId::random(), &mut a, &forged, now, None));
    assert!(third.is_err(), "{third:?}");
    // The refused attempts left the card's pending slot to the next resolve.
    w.with(|_, t| t.terminal.resolve(&mut a)).expect("resolve");
    assert_eq!(a.balance(), Ok(cents(300)));
    // The 200 bought are still outstanding: the forged copy did not spend them.
    w.assert_conserved(&[&a]);
}

#[test]
fn coins_held_for_an_open_load_cannot_be_paid_elsewhere_even_after_a_restart() {
    let mut w = World::new();
    let coins = w.buy(500);
    let mut a = w.card(1, 100_000);
    let now = w.now();
    let id = TransferId::random();
    let first =
        w.with(|_, t| t.soft_to_card(id, &mut a, &coins, now, Some(TransferFault::AfterGuarantee)));
    assert!(first.is_err());
    w.restart();
    // The restarted issuer holds the coins again before anything is
    // served, with no card agency open in the process.
    let payee = Who::new("payee", 1);
    w.h.register(&payee, 0);
    let outcome = w.h.pay(&w.buyer, &payee, coins.clone(), refresh(500));
    assert!(matches!(outcome, PayeeOutcome::Rejected(_)), "{outcome:?}");
    let out = w
        .with(|_, t| t.soft_to_card(id, &mut a, &coins, now, None))
        .expect("retry");
    assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");
    assert_eq!(a.balance(), Ok(cents(500)));
    w.assert_conserved(&[&a]);
}

#[test]
fn card_to_soft_stopped_at_any_step_completes_or_is_undone_on_retry() {
    let mut w = World::new();
    let mut cards = Vec::new();
    for (i, fault) in faults().into_iter().enumerate() {
        let mut a = w.fund(10 + i as u8, 1_000);
        let now = w.now();
        let id = TransferId::random();
        let first = w.with(|_, t| t.card_to_soft(id, &mut a, cents(300), now, Some(fault)));
        assert!(first.is_err(), "{fault:?}: {first:?}");
        w.restart();
        let out = w
            .with(|_, t| t.card_to_soft(id, &mut a, cents(300), now, None))
            .expect("retry");
        match &out {
            CardToSoft::Issued(coins) => {
                assert_eq!(w.with(|ag, _| ag.value_of(coins)), Ok(cents(300)));
                assert_eq!(a.balance(), Ok(cents(700)), "{fault:?}");
            }
            CardToSoft::Undone => assert_eq!(a.balance(), Ok(cents(1_000)), "{fault:?}"),
        }
        // Once the index has it, the issuer's memory lets go and the
        // retry is answered from the index: the same coins.
        w.h.core().checkpoint_tx_index().expect("index catch-up");
        assert_eq!(w.h.core().n_committed_in_memory(), 0);
        let again = w
            .with(|_, t| t.card_to_soft(id, &mut a, cents(300), now, None))
            .expect("again");
        assert_eq!(again, out, "{fault:?}");
        cards.push(a);
        w.assert_conserved(&cards.iter().collect::<Vec<_>>());
    }
}

#[test]
fn soft_to_card_stopped_at_any_step_completes_or_is_undone_on_retry() {
    let mut w = World::new();
    let mut cards = Vec::new();
    for (i, fault) in faults().into_iter().enumerate() {
        let coins = w.buy(600);
        let mut a = w.card(10 + i as u8, 100_000);
        let now = w.now();
        let id = TransferId::random();
        let first = w.with(|_, t| t.soft_to_card(id, &mut a, &coins, now, Some(fault)));
        if matches!(
            fault,
            TransferFault::BeforeCoins | TransferFault::AfterCoins
        ) {
            // No coins are bought on this path: these points do not exist.
            assert!(
                matches!(first, Ok(SoftToCard::Loaded(_))),
                "{fault:?}: {first:?}"
            );
        } else {
            assert!(first.is_err(), "{fault:?}: {first:?}");
            w.restart();
        }
        let out = w
            .with(|_, t| t.soft_to_card(id, &mut a, &coins, now, None))
            .expect("retry");
        let spent = coins
            .iter()
            .all(|k| w.h.core().coin_presence(&k.body.id) != CoinPresence::Unspent);
        match &out {
            SoftToCard::Loaded(_) => {
                assert_eq!(a.balance(), Ok(cents(600)), "{fault:?}");
                assert!(spent, "{fault:?}: loaded coins must be spent");
            }
            SoftToCard::Undone(back) => {
                assert_eq!(back, &coins);
                assert_eq!(a.balance(), Ok(cents(0)), "{fault:?}");
                assert!(!spent, "{fault:?}: undone coins must be spendable");
            }
        }
        cards.push(a);
        w.assert_conserved(&cards.iter().collect::<Vec<_>>());
    }
}

#[test]
fn card_to_card_stopped_at_any_step_completes_on_retry_and_clearing_evens_out() {
    let mut w = World::new();
    let mut cards = Vec::new();
    for (i, fault) in faults().into_iter().enumerate() {
        let mut a = w.fund(10 + 2 * i as u8, 1_000);
        let mut c = w.card(11 + 2 * i as u8, 100_000);
        let now = w.now();
        let id = TransferId::random();
        let first = w.with(|_, t| t.card_to_card(id, &mut a, &mut c, cents(450), now, Some(fault)));
        assert!(first.is_err(), "{fault:?}: {first:?}");
        w.restart();
        let out = w
            .with(|_, t| t.card_to_card(id, &mut a, &mut c, cents(450), now, None))
            .expect("retry");
        match out {
            CardToCard::Loaded(_) => {
                assert_eq!((a.balance(), c.balance()), (Ok(cents(550)), Ok(cents(450))))
            }
            CardToCard::Undone => assert_eq!(a.balance(), Ok(cents(1_000)), "{fault:?}"),
            other => panic!("{fault:?}: unexpected {other:?}"),
        }
        cards.push(a);
        cards.push(c);
        w.assert_conserved(&cards.iter().collect::<Vec<_>>());
    }
    let report = w
        .with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    assert!(
        report.carried_forward.is_empty(),
        "{:?}",
        report.carried_forward
    );
    let s = report.settlement;
    w.cleared_to_lus +=
        i128::from(s.paid_to_lus.minor_units()) - i128::from(s.received_from_lus.minor_units());
    w.assert_conserved(&cards.iter().collect::<Vec<_>>());
    assert_eq!(w.h.core().totals().card_float, 0);
    let on_cards: u64 = cards
        .iter()
        .map(|c| c.balance().expect("balance").minor_units())
        .sum();
    assert_eq!(s.paid_to_lus.minor_units(), on_cards);
    let (loaded, unloaded) = (s.loads.minor_units(), s.unloads.minor_units());
    audit(&mut w, loaded.into(), unloaded.into(), 0);
}

#[test]
fn a_load_or_unload_the_card_aborts_is_undone_and_frees_the_coins() {
    let mut w = World::new();
    let coins = w.buy(600);
    let mut a = w.card(1, 100_000);
    let now = w.now();
    // The issuer holds the coins for the load; the LUS never got L1, and
    // the card aborts its pending load (its reject proof is all that is left).
    let id = TransferId::random();
    let lost = Some(TransferFault::Loss(LossPoint::L1ToLus));
    let first = w.with(|_, t| t.soft_to_card(id, &mut a, &coins, now, lost));
    assert!(first.is_err(), "{first:?}");
    a.reject_pending().expect("card aborts");
    w.restart();
    let out = w
        .with(|_, t| t.soft_to_card(id, &mut a, &coins, now, None))
        .expect("retry");
    assert_eq!(out, SoftToCard::Undone(coins.clone()));
    assert_eq!(a.balance(), Ok(cents(0)));
    assert!(
        coins
            .iter()
            .all(|k| w.h.core().coin_presence(&k.body.id) == CoinPresence::Unspent),
        "the coins of an undone load are the holder's again"
    );
    w.assert_conserved(&[&a]);
    // They load fine afterwards.
    let out = w
        .with(|_, t| t.soft_to_card(TransferId::random(), &mut a, &coins, now, None))
        .expect("load");
    assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");

    // Same for an unload: no coins are issued for it.
    let id = TransferId::random();
    let first = w.with(|_, t| t.card_to_soft(id, &mut a, cents(200), now, lost));
    assert!(first.is_err(), "{first:?}");
    a.reject_pending().expect("card aborts");
    w.restart();
    let out = w
        .with(|_, t| t.card_to_soft(id, &mut a, cents(200), now, None))
        .expect("retry");
    assert_eq!(out, CardToSoft::Undone);
    assert_eq!(a.balance(), Ok(cents(600)));
    let rejected = w
        .with(|ag, _| ag.all_finished())
        .expect("records")
        .iter()
        .filter(|r| r.outcome == card_bridge::wire::Outcome::Rejected)
        .count();
    assert_eq!(rejected, 2);
    w.assert_conserved(&[&a]);
}

#[test]
fn a_load_in_doubt_at_clearing_is_carried_forward_and_cleared_when_resolved() {
    let mut w = World::new();
    let mut a = w.fund(1, 1_000);
    let coins = w.buy(400);
    let now = w.now();
    // The card never got L2: the load is pending at the LUS at clearing time.
    let id = TransferId::random();
    let lost = Some(TransferFault::Loss(LossPoint::L2ToCard));
    let first = w.with(|_, t| t.soft_to_card(id, &mut a, &coins, now, lost));
    assert!(first.is_err(), "{first:?}");
    let first_period = w
        .with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    assert_eq!(first_period.carried_forward.len(), 1);
    assert_eq!(first_period.settlement.loads, cents(1_000));
    w.cleared_to_lus += 1_000;
    // The index catches up while the load is in doubt: nothing of it is
    // committed, so memory keeps nothing and the restart still holds it.
    w.h.core().checkpoint_tx_index().expect("index catch-up");
    assert_eq!(w.h.core().n_committed_in_memory(), 0);
    // Still held for the load, across a restart.
    w.restart();
    assert!(
        coins
            .iter()
            .all(|k| w.h.core().coin_presence(&k.body.id) == CoinPresence::Reserved)
    );
    let out = w
        .with(|_, t| t.soft_to_card(id, &mut a, &coins, now, None))
        .expect("retry");
    assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");
    assert_eq!(a.balance(), Ok(cents(1_400)));
    w.assert_conserved(&[&a]);
    // Resolved; once the index has the load, a retry is answered from it.
    w.h.core().checkpoint_tx_index().expect("index catch-up");
    assert_eq!(w.h.core().n_committed_in_memory(), 0);
    let again = w
        .with(|_, t| t.soft_to_card(id, &mut a, &coins, now, None))
        .expect("retry after the catch-up");
    assert!(matches!(again, SoftToCard::Loaded(_)), "{again:?}");
    assert_eq!(a.balance(), Ok(cents(1_400)), "loaded once");
    let second = w
        .with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    assert!(second.carried_forward.is_empty());
    assert_eq!(second.settlement.period, first_period.settlement.period + 1);
    assert_eq!(second.settlement.loads, cents(400));
    w.cleared_to_lus += 400;
    assert_eq!(w.h.core().totals().card_float, 0);
    w.assert_conserved(&[&a]);
    audit(&mut w, 1_400, 0, 0);
}

#[test]
fn a_load_guaranteed_before_its_coins_expired_commits_after_and_the_audit_holds() {
    let mut w = World::new();
    let mut a = w.fund(1, 1_000);
    let coins = w.buy(400);
    let guaranteed = w.now();
    // The card never got L2: the load stays in doubt, its coins held.
    let id = TransferId::random();
    let lost = Some(TransferFault::Loss(LossPoint::L2ToCard));
    let first = w.with(|_, t| t.soft_to_card(id, &mut a, &coins, guaranteed, lost));
    assert!(first.is_err(), "{first:?}");
    // The card comes back only after the coins it was loaded with expired.
    let expiry = coins[0].body.expiry;
    w.h.clock.advance(expiry.0 - guaranteed.0 + 3_600);
    w.restart();
    assert!(coins[0].body.is_expired_at(w.now()));
    let out = w
        .with(|_, t| t.soft_to_card(id, &mut a, &coins, w.now(), None))
        .expect("the guaranteed load completes");
    assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");
    assert_eq!(a.balance(), Ok(cents(1_400)));
    // The log says when the issuer guaranteed it, and that was in time.
    let loaded_at: Vec<Timestamp> = w
        .logged_events()
        .iter()
        .filter_map(|e| match e {
            Event::CardLoaded { guaranteed_at, .. } => Some(*guaranteed_at),
            _ => None,
        })
        .collect();
    assert_eq!(loaded_at.len(), 2);
    assert!(
        loaded_at[1] < expiry && loaded_at[1] >= guaranteed,
        "{loaded_at:?}"
    );
    w.assert_conserved(&[&a]);
    audit(&mut w, 1_400, 0, 1_400);
}

/// Beside a log in PostgreSQL the agency (and the registry) keep their rows
/// in tables there: the same books, a replacement issuer with the registry
/// key finds them, and the tables name no card and no account.
#[test]
fn the_agency_in_tables_beside_the_log_keeps_its_books_sealed() {
    let tables = std::sync::Arc::new(ledger::MemoryKv::new());
    let mut w = World::on(Harness::with_side_tables(tables.clone()));
    let mut a = w.fund(0xa1, 1_000);
    let mut c = w.card(0xc2, 100_000);
    let now = w.now();
    let id = TransferId::random();
    let CardToSoft::Issued(coins) = w
        .with(|_, t| t.card_to_soft(id, &mut a, cents(400), now, None))
        .expect("card to soft")
    else {
        panic!("the unload should commit");
    };
    // A replacement: nothing of the agency or the registry is in the
    // directory, and after a restart the same transfer finds its coins.
    let issuer_dir = w.h.dir.path().join("issuer");
    for file in ["card-agency.redb", "registry.redb"] {
        assert!(!issuer_dir.join(file).exists(), "{file} written");
    }
    w.restart();
    let again = w
        .with(|_, t| t.card_to_soft(id, &mut a, cents(400), now, None))
        .expect("again");
    assert_eq!(again, CardToSoft::Issued(coins));
    let out = w
        .with(|_, t| t.card_to_card(TransferId::random(), &mut a, &mut c, cents(250), now, None))
        .expect("card to card");
    assert!(matches!(out, CardToCard::Loaded(_)), "{out:?}");
    w.assert_conserved(&[&a, &c]);
    let report = w
        .with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    assert_eq!(
        (report.settlement.loads, report.settlement.unloads),
        (cents(1_250), cents(650))
    );
    w.cleared_to_lus += 600;
    let finished = w.with(|ag, _| ag.all_finished()).expect("finished");
    assert_eq!(finished.len(), 4);
    assert!(finished.windows(2).all(|p| p[0].key() <= p[1].key()));

    let contains = |row: &[u8], needle: &[u8]| row.windows(needle.len()).any(|w| w == needle);
    let rows = tables.rows();
    assert!(rows.iter().any(|(t, _, _)| t.starts_with("card-ag/")));
    assert!(rows.iter().any(|(t, _, _)| t.starts_with("registry/")));
    for (table, key, value) in &rows {
        for card in [&a, &c] {
            let card_id = card.id().expect("card id");
            for row in [key, value] {
                assert!(!contains(row, card_id.as_bytes()), "a card id in {table}");
            }
        }
        assert!(!contains(value, b"xfer-"), "a holder's account in {table}");
        assert!(!contains(value, b"card-holder"), "an id in {table}");
    }
    w.assert_conserved(&[&a, &c]);
    audit(&mut w, 1_250, 650, 0);
}

/// Whether `bytes` hold `needle` anywhere.
fn holds(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// The agency's file in the issuer's directory is sealed as its tables
/// beside a PostgreSQL log are: after loads, unloads, a transfer left open
/// and a clearing, no file of the issuer's directory but its log holds a
/// card id, and none holds the buyer's id or a transfer holder's account.
/// The log names the card of each `CardLoaded` and `CardUnloaded` for the
/// auditor. Checked to fail with the agency's rows written in the clear.
#[test]
fn the_agency_file_in_the_issuers_directory_names_no_card() {
    let mut w = World::new();
    let mut a = w.fund(0xa1, 1_000);
    let mut c = w.card(0xc2, 100_000);
    let now = w.now();
    let CardToSoft::Issued(_) = w
        .with(|_, t| t.card_to_soft(TransferId::random(), &mut a, cents(400), now, None))
        .expect("card to soft")
    else {
        panic!("the unload should commit");
    };
    let out = w
        .with(|_, t| t.card_to_card(TransferId::random(), &mut a, &mut c, cents(250), now, None))
        .expect("card to card");
    assert!(matches!(out, CardToCard::Loaded(_)), "{out:?}");
    w.with(|ag, _| clearing::clear(w.lus(), ag))
        .expect("cleared");
    w.cleared_to_lus += 600;
    // A load left open: its guarantee (card, coins) stays in the file.
    let coins = w.buy(300);
    let mut d = w.card(0xd3, 100_000);
    let open_id = TransferId::random();
    let open = w.with(|_, t| {
        t.soft_to_card(
            open_id,
            &mut d,
            &coins,
            now,
            Some(TransferFault::AfterGuarantee),
        )
    });
    assert!(open.is_err());
    w.restart();

    let issuer_dir = w.h.dir.path().join("issuer");
    assert!(issuer_dir.join("card-agency.redb").exists());
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&issuer_dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let bytes = std::fs::read(&path).expect("read");
        if name != "log.redb" {
            for card in [&a, &c, &d] {
                let id = card.id().expect("card id");
                assert!(!holds(&bytes, id.as_bytes()), "{name} holds a card id");
            }
        }
        assert!(!holds(&bytes, b"xfer-"), "{name} holds a holder's account");
        assert!(!holds(&bytes, b"card-holder"), "{name} holds an id");
        checked.push(name);
    }
    assert!(
        checked.iter().any(|n| n == "card-agency.redb") && checked.len() >= 5,
        "checked only {checked:?}"
    );
    // The sealed file still does its work: the open load's coins are held
    // after the restart, and the load completes on retry.
    let out = w
        .with(|_, t| t.soft_to_card(open_id, &mut d, &coins, now, None))
        .expect("load");
    assert!(matches!(out, SoftToCard::Loaded(_)), "{out:?}");
    w.assert_conserved(&[&a, &c, &d]);
}
