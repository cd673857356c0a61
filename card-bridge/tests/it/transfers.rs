//! Transfers between card cash and soft cash as atomic composites. Value
//! enters only as minted coins, so across both systems at every quiet point
//! Σ card balances + outstanding coins = Σ minted. Each transfer is stopped
//! at every step (crash points, lost messages, a tear on the card), the
//! servers are reopened from their files, and the transfer is run again: it
//! completes or is fully undone, and the sum holds.

use crate::util;

use ledger::LusId;
use tempfile::TempDir;
use util::issuer::{TestCoins, TestIssuer};
use util::*;
use vc_card_bridge::card::{SmartCard, TearAfter};
use vc_card_bridge::crypto::{MasterKeys, Suite};
use vc_card_bridge::flows::{CardTerminal, LossPoint};
use vc_card_bridge::lus::LoadUnloadServer;
use vc_card_bridge::transfer::{
    CardToCard, CardToSoft, SoftToCard, TransferFault, TransferId, TransferJournal, Transfers,
};

struct Bridge {
    dir: TempDir,
    masters: MasterKeys,
    lus: LoadUnloadServer,
    issuer: TestIssuer,
    journal: TransferJournal,
    minted: i128,
}

impl Bridge {
    fn new() -> Bridge {
        let dir = tempfile::tempdir().expect("tempdir");
        let masters = MasterKeys::random(Suite::Tdes);
        let (lus, issuer, journal) = Bridge::open_servers(&dir, &masters);
        Bridge {
            dir,
            masters,
            lus,
            issuer,
            journal,
            minted: 0,
        }
    }

    fn open_servers(
        dir: &TempDir,
        masters: &MasterKeys,
    ) -> (LoadUnloadServer, TestIssuer, TransferJournal) {
        let lus = LoadUnloadServer::open(&dir.path().join("lus.redb"), LusId(1), masters.into())
            .expect("lus");
        let issuer = TestIssuer::open(dir.path());
        let journal = TransferJournal::open(&dir.path().join("journal.redb")).expect("journal");
        (lus, issuer, journal)
    }

    /// A crash of everything but the cards: reopen every server from disk.
    fn restart(self) -> Bridge {
        let Bridge {
            dir,
            masters,
            lus,
            issuer,
            journal,
            minted,
        } = self;
        drop((lus, issuer, journal));
        let (lus, issuer, journal) = Bridge::open_servers(&dir, &masters);
        Bridge {
            dir,
            masters,
            lus,
            issuer,
            journal,
            minted,
        }
    }

    fn transfers(&self) -> Transfers<'_, TestIssuer> {
        Transfers::new(
            &self.journal,
            CardTerminal::new(&self.lus, &self.issuer),
            &self.issuer,
        )
    }

    fn card(&self, n: u8, max: u64) -> SmartCard {
        SmartCard::issue(
            &self.masters,
            ledger::CardId::from_bytes([n; 8]),
            EXPIRY,
            cents(max),
        )
        .expect("issue")
    }

    fn mint(&mut self, v: u64) -> TestCoins {
        self.minted += i128::from(v);
        self.issuer.mint(cents(v))
    }

    fn assert_conserved(&self, cards: &[&SmartCard]) {
        let on_cards: i128 = cards
            .iter()
            .map(|c| i128::from(c.balance().expect("balance").minor_units()))
            .sum();
        assert_eq!(
            on_cards + self.issuer.outstanding(),
            self.minted,
            "value created or lost across card and soft cash"
        );
        for c in cards {
            assert!(
                c.info().expect("info").pending.is_none(),
                "card left pending"
            );
        }
    }
}

fn funded_card(b: &mut Bridge, n: u8, v: u64) -> SmartCard {
    let coins = b.mint(v);
    let mut card = b.card(n, 100_000);
    let out = b
        .transfers()
        .soft_to_card(TransferId::random(), &mut card, &coins, NOW, None)
        .expect("fund");
    assert!(matches!(out, SoftToCard::Loaded(_)));
    assert!(!b.issuer.is_unspent(&coins), "redeemed coins are spent");
    card
}

#[test]
fn each_transfer_moves_value_between_card_and_soft_cash() {
    let mut b = Bridge::new();
    let mut a = funded_card(&mut b, 1, 1_000);
    let mut c = b.card(2, 100_000);
    assert_eq!(a.balance(), Ok(cents(1_000)));
    let id = TransferId::random();
    let CardToSoft::Issued(coins) = b
        .transfers()
        .card_to_soft(id, &mut a, cents(400), NOW, None)
        .expect("c2s")
    else {
        panic!("unload should commit");
    };
    assert_eq!(coins.value, cents(400));
    // Running it again is a no-op returning the same coins.
    assert_eq!(
        b.transfers()
            .card_to_soft(id, &mut a, cents(400), NOW, None),
        Ok(CardToSoft::Issued(coins.clone()))
    );
    let out = b
        .transfers()
        .card_to_card(TransferId::random(), &mut a, &mut c, cents(250), NOW, None)
        .expect("c2c");
    assert!(matches!(out, CardToCard::Loaded(_)));
    assert_eq!((a.balance(), c.balance()), (Ok(cents(350)), Ok(cents(250))));
    b.assert_conserved(&[&a, &c]);
}

#[test]
fn a_card_to_card_transfer_the_payee_cannot_take_returns_to_the_payer() {
    let mut b = Bridge::new();
    let mut a = funded_card(&mut b, 1, 1_000);
    let mut small = b.card(2, 100);
    // The payee card's limit refuses the load; the value goes back to `a`.
    let id = TransferId::random();
    let out = b
        .transfers()
        .card_to_card(id, &mut a, &mut small, cents(500), NOW, None)
        .expect("c2c");
    assert!(matches!(out, CardToCard::Returned(_)), "{out:?}");
    assert_eq!(
        (a.balance(), small.balance()),
        (Ok(cents(1_000)), Ok(cents(0)))
    );
    b.assert_conserved(&[&a, &small]);
    // Running it again changes nothing.
    let again = b
        .transfers()
        .card_to_card(id, &mut a, &mut small, cents(500), NOW, None)
        .expect("again");
    assert_eq!(again, out);
    assert_eq!(a.balance(), Ok(cents(1_000)));
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
fn card_to_soft_stopped_at_any_step_completes_or_is_undone_on_retry() {
    for fault in faults() {
        let mut b = Bridge::new();
        let mut a = funded_card(&mut b, 1, 1_000);
        let id = TransferId::random();
        let first = b
            .transfers()
            .card_to_soft(id, &mut a, cents(300), NOW, Some(fault));
        assert!(first.is_err(), "{fault:?}: {first:?}");
        let b = b.restart();
        let out = b
            .transfers()
            .card_to_soft(id, &mut a, cents(300), NOW, None)
            .expect("retry");
        match &out {
            CardToSoft::Issued(c) => {
                assert_eq!(c.value, cents(300));
                assert_eq!(a.balance(), Ok(cents(700)), "{fault:?}");
            }
            CardToSoft::Undone => assert_eq!(a.balance(), Ok(cents(1_000)), "{fault:?}"),
        }
        b.assert_conserved(&[&a]);
        assert_eq!(
            b.transfers()
                .card_to_soft(id, &mut a, cents(300), NOW, None),
            Ok(out)
        );
    }
}

#[test]
fn soft_to_card_stopped_at_any_step_completes_or_is_undone_on_retry() {
    for fault in faults() {
        let mut b = Bridge::new();
        let coins = b.mint(600);
        let mut a = b.card(1, 100_000);
        let id = TransferId::random();
        let first = b
            .transfers()
            .soft_to_card(id, &mut a, &coins, NOW, Some(fault));
        if matches!(
            fault,
            TransferFault::BeforeCoins | TransferFault::AfterCoins
        ) {
            // No soft cash is bought on this path: these points do not exist.
            assert!(
                matches!(first, Ok(SoftToCard::Loaded(_))),
                "{fault:?}: {first:?}"
            );
            b.assert_conserved(&[&a]);
            continue;
        }
        assert!(first.is_err(), "{fault:?}: {first:?}");
        let b = b.restart();
        let out = b
            .transfers()
            .soft_to_card(id, &mut a, &coins, NOW, None)
            .expect("retry");
        match &out {
            SoftToCard::Loaded(_) => {
                assert_eq!(a.balance(), Ok(cents(600)));
                assert!(!b.issuer.is_unspent(&coins));
            }
            SoftToCard::Undone(back) => {
                assert_eq!(back, &coins);
                assert_eq!(a.balance(), Ok(cents(0)));
                assert!(
                    b.issuer.is_unspent(&coins),
                    "{fault:?}: undone coins must be spendable"
                );
            }
        }
        b.assert_conserved(&[&a]);
    }
}

#[test]
fn card_to_card_stopped_at_any_step_completes_on_retry() {
    for fault in faults() {
        let mut b = Bridge::new();
        let mut a = funded_card(&mut b, 1, 1_000);
        let mut c = b.card(2, 100_000);
        let id = TransferId::random();
        let first = b
            .transfers()
            .card_to_card(id, &mut a, &mut c, cents(450), NOW, Some(fault));
        assert!(first.is_err(), "{fault:?}: {first:?}");
        let b = b.restart();
        let out = b
            .transfers()
            .card_to_card(id, &mut a, &mut c, cents(450), NOW, None)
            .expect("retry");
        match out {
            CardToCard::Loaded(_) => assert_eq!(c.balance(), Ok(cents(450)), "{fault:?}"),
            CardToCard::Undone => assert_eq!(a.balance(), Ok(cents(1_000)), "{fault:?}"),
            other => panic!("{fault:?}: unexpected {other:?}"),
        }
        b.assert_conserved(&[&a, &c]);
    }
}

#[test]
fn a_tear_on_the_card_during_card_to_soft_is_recovered_on_retry() {
    let mut n = 1;
    loop {
        let mut b = Bridge::new();
        let mut a = funded_card(&mut b, 1, 1_000);
        let id = TransferId::random();
        a.arm_tear(Some(TearAfter(n)));
        let first = b
            .transfers()
            .card_to_soft(id, &mut a, cents(300), NOW, None);
        let torn = !a.eeprom().is_powered();
        assert_eq!(torn, first.is_err(), "write {n}: {first:?}");
        a.power_up().expect("power up");
        let out = b
            .transfers()
            .card_to_soft(id, &mut a, cents(300), NOW, None)
            .expect("retry after the tear");
        let expected = match out {
            CardToSoft::Issued(_) => 700,
            CardToSoft::Undone => 1_000,
        };
        assert_eq!(a.balance(), Ok(cents(expected)), "write {n}");
        b.assert_conserved(&[&a]);
        if !torn {
            break;
        }
        n += 1;
    }
    assert_eq!(n, 19);
}
