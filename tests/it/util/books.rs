//! The books of a run, checked from outside: the issuer's log read as
//! its auditor would, and the purses' coins compared with it coin by coin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ledger::{CoinId, Event, EventStore, RedbStore, Seq, Sharing};
use purse::{CoinState, Purse};

use super::process::run;

/// How long `resume` runs `purse resume` before the test fails: an issuer
/// taking over after a kill (its standby waits for the lease, then
/// rebuilds from the log) can take seconds on a loaded machine, and the
/// purse's issuer answers nothing meanwhile.
const RESUME_SECS_MAX: u64 = 60;

/// `purse resume` until nothing is left unfinished.
pub fn resume(dir: &Path, purse: &str) {
    let deadline = Instant::now() + Duration::from_secs(RESUME_SECS_MAX);
    loop {
        let out = run(dir, &["purse", "resume", "--purse", purse]);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{purse} could not resume in {RESUME_SECS_MAX} s: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The coins `log` issued and has not spent, and those it spent; a coin
/// issued or spent twice fails the test.
pub fn coins_in_log(log: &Path) -> (BTreeSet<CoinId>, BTreeSet<CoinId>) {
    let store = RedbStore::open_read_only(log, Sharing::FollowableByReaders).expect("open log");
    let (mut unspent, mut spent) = (BTreeSet::new(), BTreeSet::new());
    let mut next = Seq(1);
    loop {
        let records = store.read(next, 4096).expect("read log");
        let Some(last) = records.last() else { break };
        next = Seq(last.record.seq.0 + 1);
        for r in &records {
            match &r.record.event {
                Event::CoinsIssued { coins, .. } => {
                    for c in coins {
                        assert!(unspent.insert(c.id), "coin {} issued twice", c.id);
                    }
                }
                Event::CoinsSpent { coins, .. } | Event::CoinsRevoked { coins } => {
                    for c in coins {
                        assert!(unspent.remove(&c.id), "coin {} spent twice", c.id);
                        spent.insert(c.id);
                    }
                }
                _ => {}
            }
        }
    }
    (unspent, spent)
}

/// Every coin a purse holds is unspent in `log`, every coin it spent is
/// spent there, no coin is in two purses, no payment is left unfinished,
/// and the log's unspent coins are exactly the purses' (nothing lost on
/// the way). Returns what each purse holds, in minor units, by name.
pub fn purses_agree_with_the_log(dir: &Path, log: &Path, purses: &[&str]) -> BTreeMap<String, u64> {
    let (unspent, spent) = coins_in_log(log);
    let mut held = BTreeSet::new();
    let mut held_minor = BTreeMap::new();
    for purse in purses {
        let purse_db = Purse::open(dir.join(purse), &super::passphrase()).expect("purse opens");
        let minor: &mut u64 = held_minor.entry((*purse).to_owned()).or_default();
        for c in purse_db.coins().expect("coins") {
            match c.state {
                CoinState::Available => {
                    assert!(
                        unspent.contains(&c.coin.id()),
                        "{purse} holds a coin the log does not have unspent"
                    );
                    assert!(held.insert(c.coin.id()), "a coin in two purses");
                    *minor += c.coin.value().minor_units();
                }
                CoinState::Spent(_) => assert!(
                    spent.contains(&c.coin.id()),
                    "{purse} spent a coin the log did not"
                ),
                CoinState::Pending(_) => panic!("{purse} left a payment unfinished"),
                CoinState::Bad(_) => {}
            }
        }
    }
    assert_eq!(held, unspent, "the log's unspent coins are the purses'");
    held_minor
}
