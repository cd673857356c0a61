//! What a person wants to see of a log besides the verdict: events by kind,
//! money in and out, the largest transactions, and a bounded time series of
//! outstanding e-money and volume for the chart. Kept beside the replay
//! state so an incremental audit reports on the whole log.

use crate::constants::{DAILY_VOLUME_DAYS_MAX, LARGEST_TRANSACTIONS_MAX, SERIES_POINTS_MAX};
use crate::logtime::utc_day;
use std::collections::BTreeMap;

use ledger::{Flows, Seq, Timestamp, Totals, TxId};
use serde::{Deserialize, Serialize};

/// One transaction and the value it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxValue {
    /// Sequence number of the transaction's first record.
    pub seq: Seq,
    pub tx: TxId,
    /// The largest money movement of the transaction, in minor units.
    pub value_minor: u128,
    /// The kinds of its events, e.g. `coins_spent+redeemed`.
    pub kinds: String,
}

/// One point of the chart: the state after the last transaction of a span
/// of the log, and the value moved during that span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Last sequence number of the span.
    pub seq: u64,
    /// Latest log time in the span (seconds since the Unix epoch).
    pub at: u64,
    pub outstanding_minor: i128,
    pub volume_minor: u128,
    pub transactions: u64,
}

/// Where a transaction sits in the log and in log time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxPlace {
    pub first_seq: Seq,
    pub last_seq: Seq,
    pub tx: TxId,
    pub at: Timestamp,
}

/// Counters over the replayed log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub records: u64,
    pub transactions: u64,
    pub events_by_kind: BTreeMap<String, u64>,
    /// Real money received: settled purchases and clearings from card servers.
    pub money_in_minor: u128,
    /// Real money paid out: redemptions and clearings to card servers.
    pub money_out_minor: u128,
    pub coins_issued_minor: u128,
    pub coins_spent_minor: u128,
    pub coins_revoked_minor: u128,
    pub checkpoints_verified: u64,
    pub checkpoint_signatures_verified: u64,
    /// Largest first, at most [`LARGEST_TRANSACTIONS_MAX`].
    pub largest: Vec<TxValue>,
    pub series: Vec<SeriesPoint>,
    /// Transactions per series point; doubles when the series is full.
    pub series_span_transactions: u64,
    /// The log's time span: its first transaction's time and its latest.
    pub first_at: Option<Timestamp>,
    pub latest_at: Option<Timestamp>,
    /// Value moved per calendar day (UTC day number, see
    /// [`crate::logtime`]), the latest [`DAILY_VOLUME_DAYS_MAX`] days.
    pub daily_volume_minor: BTreeMap<u64, u128>,
    /// Days dropped from the front of `daily_volume_minor` to bound it.
    pub daily_volume_days_dropped: u64,
    /// Collected purchase debits the bank gave back: the issuer's loss,
    /// covered from its own funds (also in money in and money out).
    pub debits_returned_minor: u128,
    /// Every disclosure of an identity on the log, in log order: each one
    /// is listed, none is summarized away.
    pub disclosures: Vec<DisclosureLine>,
}

/// One disclosure of who is behind a coin or purchase, as the log has it
/// (the identity itself is not on the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureLine {
    pub seq: Seq,
    /// `coin <id>` or `purchase <id>`.
    pub subject: String,
    pub requester: String,
    pub reason: String,
    /// The approving operator keys' fingerprints (first 8 bytes, hex);
    /// empty for a disclosure logged without dual control.
    pub approver_keys: Vec<String>,
}

/// The largest single movement of a transaction.
pub fn transaction_value(flows: &Flows) -> u128 {
    [
        flows.coins_issued,
        flows.coins_spent + flows.coins_revoked,
        flows.aggregated,
        flows.aggregate_withdrawn,
        flows.card_loaded,
        flows.card_unloaded,
        flows.real_in,
        flows.real_out,
        flows.cleared_to_lus,
        flows.cleared_from_lus,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

impl Stats {
    /// Lists `event` if it discloses an identity.
    pub(crate) fn note_disclosure(&mut self, seq: Seq, event: &ledger::Event) {
        let line = match event {
            ledger::Event::IdentityDisclosed {
                coin,
                requester,
                reason,
            } => DisclosureLine {
                seq,
                subject: format!("coin {coin}"),
                requester: requester.clone(),
                reason: reason.clone(),
                approver_keys: Vec::new(),
            },
            ledger::Event::IdentityDisclosedUnderDualControl {
                subject,
                requester,
                reason,
                approver_keys,
            } => DisclosureLine {
                seq,
                subject: subject.to_string(),
                requester: requester.clone(),
                reason: reason.clone(),
                approver_keys: approver_keys
                    .iter()
                    .map(|k| hex::encode(&k.0[..8]))
                    .collect(),
            },
            _ => return,
        };
        self.disclosures.push(line);
    }

    pub(crate) fn count_event(&mut self, kind: &'static str) {
        self.records += 1;
        match self.events_by_kind.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.events_by_kind.insert(kind.to_string(), 1);
            }
        }
    }

    pub(crate) fn observe_transaction(
        &mut self,
        place: TxPlace,
        kinds: impl FnOnce() -> String,
        flows: &Flows,
        totals: &Totals,
    ) {
        let TxPlace {
            first_seq,
            last_seq,
            tx,
            at,
        } = place;
        self.transactions += 1;
        self.first_at.get_or_insert(at);
        if self.latest_at.is_none_or(|latest| at > latest) {
            self.latest_at = Some(at);
        }
        self.money_in_minor += flows.real_in + flows.cleared_from_lus + flows.loss_covered;
        self.money_out_minor += flows.real_out + flows.cleared_to_lus + flows.debits_returned;
        self.debits_returned_minor += flows.debits_returned;
        self.coins_issued_minor += flows.coins_issued;
        self.coins_spent_minor += flows.coins_spent;
        self.coins_revoked_minor += flows.coins_revoked;
        let value = transaction_value(flows);
        self.note_largest(first_seq, tx, value, kinds);
        self.extend_series(last_seq, at, totals.outstanding, value);
        self.add_daily_volume(at, value);
    }

    fn add_daily_volume(&mut self, at: Timestamp, volume_minor: u128) {
        *self.daily_volume_minor.entry(utc_day(at)).or_insert(0) += volume_minor;
        while self.daily_volume_minor.len() > DAILY_VOLUME_DAYS_MAX {
            self.daily_volume_minor.pop_first();
            self.daily_volume_days_dropped += 1;
        }
    }

    fn note_largest(
        &mut self,
        seq: Seq,
        tx: TxId,
        value_minor: u128,
        kinds: impl FnOnce() -> String,
    ) {
        if value_minor == 0 {
            return;
        }
        let full = self.largest.len() >= LARGEST_TRANSACTIONS_MAX;
        if full
            && self
                .largest
                .last()
                .is_some_and(|l| l.value_minor >= value_minor)
        {
            return;
        }
        let at = self
            .largest
            .partition_point(|l| l.value_minor >= value_minor);
        self.largest.insert(
            at,
            TxValue {
                seq,
                tx,
                value_minor,
                kinds: kinds(),
            },
        );
        self.largest.truncate(LARGEST_TRANSACTIONS_MAX);
    }

    fn extend_series(
        &mut self,
        last_seq: Seq,
        at: Timestamp,
        outstanding_minor: i128,
        volume_minor: u128,
    ) {
        let span = self.series_span_transactions.max(1);
        self.series_span_transactions = span;
        match self.series.last_mut() {
            Some(point) if point.transactions < span => {
                point.seq = last_seq.0;
                point.at = point.at.max(at.0);
                point.outstanding_minor = outstanding_minor;
                point.volume_minor += volume_minor;
                point.transactions += 1;
            }
            _ => self.series.push(SeriesPoint {
                seq: last_seq.0,
                at: at.0,
                outstanding_minor,
                volume_minor,
                transactions: 1,
            }),
        }
        if self.series.len() > SERIES_POINTS_MAX {
            self.series = self
                .series
                .chunks(2)
                .map(|pair| {
                    let last = pair[pair.len() - 1];
                    SeriesPoint {
                        seq: last.seq,
                        at: pair.iter().map(|p| p.at).max().unwrap_or(last.at),
                        outstanding_minor: last.outstanding_minor,
                        volume_minor: pair.iter().map(|p| p.volume_minor).sum(),
                        transactions: pair.iter().map(|p| p.transactions).sum(),
                    }
                })
                .collect();
            self.series_span_transactions = span * 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_keeps_the_top_values_in_order() {
        let mut stats = Stats::default();
        for v in 1..=30u128 {
            stats.note_largest(Seq(v as u64), TxId::from_bytes([0; 16]), v * 7 % 31, || {
                "x".into()
            });
        }
        let values: Vec<u128> = stats.largest.iter().map(|t| t.value_minor).collect();
        assert_eq!(values.len(), LARGEST_TRANSACTIONS_MAX);
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(values[0], 30);
    }

    #[test]
    fn series_stays_bounded_and_keeps_the_total_volume() {
        let mut stats = Stats::default();
        for i in 1..=10_000u64 {
            stats.extend_series(Seq(i), Timestamp(i * 7), i as i128, 2);
        }
        assert!(stats.series.len() <= SERIES_POINTS_MAX);
        let volume: u128 = stats.series.iter().map(|p| p.volume_minor).sum();
        assert_eq!(volume, 20_000);
        let last = stats.series.last().copied();
        assert_eq!(
            last.map(|p| (p.seq, p.at, p.outstanding_minor)),
            Some((10_000, 70_000, 10_000))
        );
    }

    #[test]
    fn daily_volume_is_summed_per_utc_calendar_day_and_bounded() {
        let mut stats = Stats::default();
        let day = crate::logtime::SECS_PER_DAY;
        // 23:59:59 and 00:00:00 the next day fall on two days.
        stats.add_daily_volume(Timestamp(10 * day - 1), 5);
        stats.add_daily_volume(Timestamp(10 * day - 2), 1);
        stats.add_daily_volume(Timestamp(10 * day), 7);
        assert_eq!(
            stats.daily_volume_minor.iter().collect::<Vec<_>>(),
            vec![(&9, &6), (&10, &7)]
        );
        for d in 0..(DAILY_VOLUME_DAYS_MAX as u64 + 5) {
            stats.add_daily_volume(Timestamp(d * day), 1);
        }
        assert_eq!(stats.daily_volume_minor.len(), DAILY_VOLUME_DAYS_MAX);
        assert_eq!(stats.daily_volume_days_dropped, 5);
        assert_eq!(
            stats.daily_volume_minor.keys().next_back().copied(),
            Some(DAILY_VOLUME_DAYS_MAX as u64 + 4)
        );
    }
}
