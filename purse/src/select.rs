//! Coin selection: which coins pay an amount. Pure: it sees a list of
//! spendable coins and answers; the store reserves what the caller then
//! decides to use.
//!
//! The paper pays exactly: a payment's coins total its amount, no change
//! comes back. So selection first looks for a subset of the coins that sums
//! to the amount exactly (a bounded subset-sum over distinct coin values);
//! failing that it picks the coins to change with the issuer first (the
//! subset with the smallest total at or above the amount) and the spec to ask
//! for, which contains one coin of exactly the amount.

use std::collections::BTreeMap;

use ledger::{Amount, Coin, CoinSpec, Denomination};

use crate::constants::{SELECT_DP_CELLS_MAX, SELECT_DP_SUM_MINOR_MAX};
use crate::error::PurseError;

/// What to do to pay an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These coins total the amount exactly: pay with them.
    Exact(Vec<Coin>),
    /// No subset is exact: change `give` with the issuer for `want` (same
    /// total, one coin of exactly the amount), then select again.
    NeedsChange { give: Vec<Coin>, want: CoinSpec },
    /// All spendable coins together do not reach the amount.
    Insufficient { available: Amount, wanted: Amount },
}

/// Chooses coins for `amount` among `spendable` (the caller passes only
/// available, unexpired coins). Among coins of one value, those expiring
/// first are used first.
pub fn select(spendable: &[Coin], amount: Amount) -> Result<Selection, PurseError> {
    if amount.is_zero() {
        return Err(PurseError::ZeroAmount);
    }
    let available = Amount::checked_sum(spendable.iter().map(Coin::value))?;
    if available < amount {
        return Ok(Selection::Insufficient {
            available,
            wanted: amount,
        });
    }
    let groups = group_by_value(spendable);
    let subset = match subset_sums(&groups, amount) {
        Some(table) => {
            if let Some(exact) = table.take(amount.minor_units()) {
                return Ok(Selection::Exact(pick(&groups, &exact)));
            }
            let over = table
                .smallest_reachable_from(amount.minor_units())
                .ok_or(PurseError::Invalid("no covering subset below total"))?;
            pick(
                &groups,
                &table
                    .take(over)
                    .ok_or(PurseError::Invalid("unreachable sum"))?,
            )
        }
        None => {
            if let Some(exact) = greedy_exact(&groups, amount) {
                return Ok(Selection::Exact(exact));
            }
            greedy_cover(&groups, amount)
        }
    };
    let give_total = Amount::checked_sum(subset.iter().map(Coin::value))?;
    let rest = give_total.checked_sub(amount)?;
    let want = change_spec(amount, rest)?;
    Ok(Selection::NeedsChange { give: subset, want })
}

/// The spec asked for in a change: one coin of the amount and one of the rest.
fn change_spec(amount: Amount, rest: Amount) -> Result<CoinSpec, PurseError> {
    let lines = if rest.is_zero() {
        vec![Denomination {
            count: 1,
            value: amount,
        }]
    } else if rest == amount {
        vec![Denomination {
            count: 2,
            value: amount,
        }]
    } else {
        vec![
            Denomination {
                count: 1,
                value: amount,
            },
            Denomination {
                count: 1,
                value: rest,
            },
        ]
    };
    Ok(CoinSpec::new(lines)?)
}

/// Coins of one value, those expiring first in front.
struct ValueGroup {
    value: u64,
    coins: Vec<Coin>,
}

/// Groups by value, largest value first (so the search favours few coins).
fn group_by_value(spendable: &[Coin]) -> Vec<ValueGroup> {
    let mut by_value: BTreeMap<u64, Vec<Coin>> = BTreeMap::new();
    for coin in spendable.iter().filter(|c| !c.value().is_zero()) {
        by_value
            .entry(coin.value().minor_units())
            .or_default()
            .push(*coin);
    }
    by_value
        .into_iter()
        .rev()
        .map(|(value, mut coins)| {
            coins.sort_by_key(|c| (c.body.expiry, *c.id().as_bytes()));
            ValueGroup { value, coins }
        })
        .collect()
}

/// How many coins of each group (by index) a subset uses.
type Counts = Vec<usize>;

fn pick(groups: &[ValueGroup], counts: &Counts) -> Vec<Coin> {
    groups
        .iter()
        .zip(counts)
        .flat_map(|(g, &n)| g.coins.iter().take(n).copied())
        .collect()
}

/// The bounded-knapsack reachability table over sums `0..=limit`: for each
/// reachable sum, the group at which it was first reached and how many coins
/// of that group it used; the rest of the sum was reached at an earlier group.
struct SubsetSums {
    n_groups: usize,
    group_of_sum: Vec<u32>,
    used_of_sum: Vec<u32>,
    values: Vec<u64>,
}

const UNREACHED: u32 = u32::MAX;
const START: u32 = u32::MAX - 1;

/// Builds the table up to `amount + largest value - 1` (every minimal
/// covering subset sums below that), or `None` if that is over the work limit.
fn subset_sums(groups: &[ValueGroup], amount: Amount) -> Option<SubsetSums> {
    let largest = groups.first()?.value;
    let limit = amount.minor_units().checked_add(largest - 1)?;
    let cells = limit.checked_add(1)?.checked_mul(groups.len() as u64)?;
    if limit > SELECT_DP_SUM_MINOR_MAX || cells > SELECT_DP_CELLS_MAX {
        return None;
    }
    let size = usize::try_from(limit).ok()? + 1;
    let mut group_of_sum = vec![UNREACHED; size];
    let mut used_of_sum = vec![0u32; size];
    group_of_sum[0] = START;
    let mut run = vec![0u32; size];
    for (g_idx, group) in groups.iter().enumerate() {
        let value = usize::try_from(group.value).ok()?;
        let have = u32::try_from(group.coins.len()).unwrap_or(u32::MAX);
        run.iter_mut().for_each(|r| *r = 0);
        for sum in value..size {
            let from = sum - value;
            if group_of_sum[sum] == UNREACHED && group_of_sum[from] != UNREACHED && run[from] < have
            {
                group_of_sum[sum] = g_idx as u32;
                run[sum] = run[from] + 1;
                used_of_sum[sum] = run[sum];
            }
        }
    }
    Some(SubsetSums {
        n_groups: groups.len(),
        group_of_sum,
        used_of_sum,
        values: groups.iter().map(|g| g.value).collect(),
    })
}

impl SubsetSums {
    /// The counts per group of a subset summing to `sum`, if one exists.
    fn take(&self, sum: u64) -> Option<Counts> {
        let mut at = usize::try_from(sum).ok()?;
        if at >= self.group_of_sum.len() || self.group_of_sum[at] == UNREACHED {
            return None;
        }
        let mut counts = vec![0usize; self.n_groups];
        while self.group_of_sum[at] != START {
            let g_idx = self.group_of_sum[at] as usize;
            let used = self.used_of_sum[at] as usize;
            counts[g_idx] += used;
            at -= used * usize::try_from(self.values[g_idx]).ok()?;
        }
        Some(counts)
    }

    fn smallest_reachable_from(&self, sum: u64) -> Option<u64> {
        let from = usize::try_from(sum).ok()?;
        (from..self.group_of_sum.len())
            .find(|&s| self.group_of_sum[s] != UNREACHED)
            .map(|s| s as u64)
    }
}

/// Largest-first greedy; `Some` only if it lands exactly on the amount.
fn greedy_exact(groups: &[ValueGroup], amount: Amount) -> Option<Vec<Coin>> {
    let mut rest = amount.minor_units();
    let mut out = Vec::new();
    for group in groups {
        for coin in &group.coins {
            if group.value <= rest {
                rest -= group.value;
                out.push(*coin);
            }
        }
    }
    (rest == 0).then_some(out)
}

/// Covers the amount: greedy largest-first below it, then the smallest
/// single coin that closes the gap. The caller has checked the total suffices.
fn greedy_cover(groups: &[ValueGroup], amount: Amount) -> Vec<Coin> {
    let mut rest = amount.minor_units();
    let mut out = Vec::new();
    let mut unused = Vec::new();
    for group in groups {
        for coin in &group.coins {
            if group.value <= rest && rest > 0 {
                rest -= group.value;
                out.push(*coin);
            } else {
                unused.push(*coin);
            }
        }
    }
    if rest > 0 {
        // Every unused coin is larger than what was left when it was skipped,
        // and `rest` only shrank, so the smallest unused coin closes the gap.
        if let Some(closer) = unused
            .iter()
            .filter(|c| c.value().minor_units() >= rest)
            .min_by_key(|c| c.value())
        {
            out.push(*closer);
        } else {
            out.extend(unused);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{CoinBody, CoinId, KeyEpoch, Tag, Timestamp};
    use proptest::prelude::*;

    fn coin(n: u32, minor: u64) -> Coin {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_le_bytes());
        Coin {
            body: CoinBody {
                id: CoinId::from_bytes(id),
                value: Amount::from_minor(minor),
                expiry: Timestamp(1_000 + u64::from(n)),
                epoch: KeyEpoch(1),
            },
            tag: Tag([0; 16]),
        }
    }

    fn coins(values: &[u64]) -> Vec<Coin> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| coin(i as u32, v))
            .collect()
    }

    fn total(coins: &[Coin]) -> u64 {
        coins.iter().map(|c| c.value().minor_units()).sum()
    }

    #[test]
    fn paper_purse_pays_exactly_when_a_subset_fits() {
        // The paper's purchase: (2, 2.50), (1, 1.25), (3, 2.00).
        let purse = coins(&[250, 250, 125, 200, 200, 200]);
        for amount in [125, 450, 575, 1225, 650, 200] {
            match select(&purse, Amount::from_minor(amount)) {
                Ok(Selection::Exact(picked)) => assert_eq!(total(&picked), amount),
                other => panic!("{amount}: {other:?}"),
            }
        }
    }

    #[test]
    fn exact_search_beats_greedy() {
        // Greedy takes 6 then is stuck at 2 short; 4 + 4 is exact.
        let purse = coins(&[600, 400, 400]);
        match select(&purse, Amount::from_minor(800)) {
            Ok(Selection::Exact(picked)) => {
                assert_eq!(total(&picked), 800);
                assert_eq!(picked.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_exact_subset_asks_for_change_with_the_smallest_cover() {
        let purse = coins(&[500, 300, 1000]);
        match select(&purse, Amount::from_minor(225)) {
            Ok(Selection::NeedsChange { give, want }) => {
                assert_eq!(total(&give), 300);
                assert_eq!(want.total(), Ok(Amount::from_minor(300)));
                assert!(want.values().any(|v| v == Amount::from_minor(225)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn change_into_two_equal_halves_is_one_spec_line() {
        let purse = coins(&[500]);
        match select(&purse, Amount::from_minor(250)) {
            Ok(Selection::NeedsChange { want, .. }) => {
                assert_eq!(want.lines().len(), 1);
                assert_eq!(want.n_coins(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_little_money_is_insufficient() {
        let purse = coins(&[100, 200]);
        assert_eq!(
            select(&purse, Amount::from_minor(301)).ok(),
            Some(Selection::Insufficient {
                available: Amount::from_minor(300),
                wanted: Amount::from_minor(301),
            })
        );
        assert!(matches!(
            select(&[], Amount::from_minor(1)),
            Ok(Selection::Insufficient { .. })
        ));
    }

    #[test]
    fn zero_amount_is_refused() {
        assert!(matches!(
            select(&coins(&[1]), Amount::ZERO),
            Err(PurseError::ZeroAmount)
        ));
    }

    #[test]
    fn earliest_expiring_coin_of_a_value_goes_first() {
        let mut purse = coins(&[100, 100, 100]);
        purse[0].body.expiry = Timestamp(9_999);
        match select(&purse, Amount::from_minor(100)) {
            Ok(Selection::Exact(picked)) => assert_eq!(picked[0].id(), purse[1].id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn huge_amounts_fall_back_to_greedy_and_stay_correct() {
        let big = SELECT_DP_SUM_MINOR_MAX * 2;
        let purse = coins(&[big, big, 7]);
        match select(&purse, Amount::from_minor(big + 7)) {
            Ok(Selection::Exact(picked)) => assert_eq!(total(&picked), big + 7),
            other => panic!("{other:?}"),
        }
        match select(&purse, Amount::from_minor(big + 3)) {
            Ok(Selection::NeedsChange { give, want }) => {
                assert!(total(&give) >= big + 3);
                assert_eq!(want.total().map(Amount::minor_units), Ok(total(&give)));
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        /// Exact selections sum to the amount with distinct coins of the
        /// purse; change selections cover it with the same total asked back,
        /// including a coin of the amount; insufficient only when it is.
        #[test]
        fn selection_is_exact_or_covers(
            values in proptest::collection::vec(1u64..3_000, 0..40),
            amount in 1u64..20_000,
        ) {
            let purse = coins(&values);
            let sum: u64 = values.iter().sum();
            let selection = select(&purse, Amount::from_minor(amount));
            match selection {
                Ok(Selection::Exact(picked)) => {
                    prop_assert_eq!(total(&picked), amount);
                    assert_distinct_members(&picked, &purse);
                }
                Ok(Selection::NeedsChange { give, want }) => {
                    prop_assert!(total(&give) > amount);
                    prop_assert_eq!(want.total().map(Amount::minor_units), Ok(total(&give)));
                    prop_assert!(want.values().any(|v| v.minor_units() == amount));
                    assert_distinct_members(&give, &purse);
                    // The search is complete below its limit: no exact subset exists.
                    prop_assert!(!has_subset_sum(&values, amount));
                }
                Ok(Selection::Insufficient { available, wanted }) => {
                    prop_assert!(sum < amount);
                    prop_assert_eq!(available.minor_units(), sum);
                    prop_assert_eq!(wanted.minor_units(), amount);
                }
                Err(e) => prop_assert!(false, "error {e}"),
            }
        }
    }

    fn assert_distinct_members(picked: &[Coin], purse: &[Coin]) {
        let mut ids: Vec<_> = picked.iter().map(Coin::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), picked.len(), "a coin picked twice");
        assert!(picked.iter().all(|c| purse.contains(c)));
    }

    /// A reference subset-sum by plain set of reachable sums.
    fn has_subset_sum(values: &[u64], amount: u64) -> bool {
        let mut reach = vec![false; amount as usize + 1];
        reach[0] = true;
        for &v in values {
            for s in (v as usize..=amount as usize).rev() {
                reach[s] |= reach[s - v as usize];
            }
        }
        reach[amount as usize]
    }
}
