//! [`TxIds`]: each transaction id once (rule `transaction_twice`), checked
//! by sorting rather than by a hash set.
//!
//! A set of every id probed once per transaction cost the audit of the
//! 10 M-event bench log about 4 s of CPU (about 5 M random probes into a
//! table of over 100 MB, each a cache miss; measured with the set on the
//! reading thread, 15.2 s of CPU without it, 19.5 s with it). Appending
//! `(id, first seq)` to a vector is a sequential write; at the end one
//! sort brings any two transactions of one id side by side, and the
//! earliest repeat in log order is the one reported.

use ledger::{Seq, TxId};

/// The transaction ids of an audit: those of earlier runs (from the
/// checkpoint file, sorted) and those read in this one, in log order.
#[derive(Debug, Clone, Default)]
pub struct TxIds {
    /// Ids committed before this run, sorted, without repeats.
    prior: Vec<TxId>,
    /// Each transaction read in this run: its id and first record.
    seen: Vec<(TxId, Seq)>,
}

impl TxIds {
    /// The ids of the transactions audited before (any order).
    pub fn new(mut prior: Vec<TxId>) -> TxIds {
        if !prior.is_sorted() {
            prior.sort_unstable();
        }
        prior.dedup();
        TxIds {
            prior,
            seen: Vec::new(),
        }
    }

    /// Makes room for `n` more transactions.
    pub fn reserve(&mut self, n: usize) {
        self.seen.reserve(n);
    }

    /// A transaction read, at its first record.
    pub fn push(&mut self, tx: TxId, first_seq: Seq) {
        self.seen.push((tx, first_seq));
    }

    /// The first record of the earliest transaction (in log order) whose
    /// id was committed before it, and that id.
    pub fn first_repeat(&mut self) -> Option<(Seq, TxId)> {
        self.seen.sort_unstable();
        let mut first: Option<(Seq, TxId)> = None;
        let mut earliest = |seq: Seq, tx: TxId| {
            if first.is_none_or(|(s, _)| seq < s) {
                first = Some((seq, tx));
            }
        };
        let mut prior = self.prior.iter().peekable();
        for (i, &(tx, seq)) in self.seen.iter().enumerate() {
            if i > 0 && self.seen[i - 1].0 == tx {
                earliest(seq, tx);
                continue;
            }
            while prior.next_if(|p| **p < tx).is_some() {}
            if prior.peek() == Some(&&tx) {
                earliest(seq, tx);
            }
        }
        first
    }

    /// Every id of the transactions starting at or before `boundary`,
    /// sorted: what a checkpoint file keeps for the next run.
    pub fn sorted_through(&self, boundary: Seq) -> Vec<TxId> {
        let mut ids: Vec<TxId> = self
            .seen
            .iter()
            .filter(|(_, seq)| *seq <= boundary)
            .map(|(tx, _)| *tx)
            .collect();
        ids.extend_from_slice(&self.prior);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: u8) -> TxId {
        TxId::from_bytes([n; TxId::LEN])
    }

    #[test]
    fn no_repeat_no_violation() {
        let mut ids = TxIds::new(vec![tx(9)]);
        for (i, n) in [3, 1, 2].into_iter().enumerate() {
            ids.push(tx(n), Seq(i as u64 + 1));
        }
        assert_eq!(ids.first_repeat(), None);
        assert_eq!(ids.sorted_through(Seq(2)), vec![tx(1), tx(3), tx(9)]);
    }

    #[test]
    fn the_earliest_repeat_in_log_order_is_named() {
        let mut ids = TxIds::new(Vec::new());
        for (seq, n) in [(1, 5), (2, 7), (4, 7), (6, 5), (8, 5)] {
            ids.push(tx(n), Seq(seq));
        }
        assert_eq!(ids.first_repeat(), Some((Seq(4), tx(7))));
    }

    #[test]
    fn a_repeat_of_an_earlier_run_is_named() {
        let mut ids = TxIds::new(vec![tx(4), tx(2)]);
        ids.push(tx(3), Seq(10));
        ids.push(tx(4), Seq(12));
        ids.push(tx(3), Seq(15));
        assert_eq!(ids.first_repeat(), Some((Seq(12), tx(4))));
    }
}
