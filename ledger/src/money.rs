//! Money: [`Amount`] is an integer number of minor units (cents) of the one
//! currency the issuer deals in, and [`CoinSpec`] is what a purchaser or payee
//! asks to be minted. All arithmetic is checked: an overflow or a negative
//! result is an error, never a wrap.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::constants::SPEC_LINES_MAX;

/// Why a money computation or parse failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("amount overflow")]
    Overflow,
    #[error("amount would be negative")]
    Negative,
    #[error("invalid amount {0:?}: expected digits with at most two decimals, e.g. 12.25")]
    Parse(String),
    #[error("coin spec is empty")]
    EmptySpec,
    #[error("coin spec has {0} lines, at most {SPEC_LINES_MAX} allowed")]
    SpecTooLong(usize),
    #[error("coin spec line has a zero count or a zero denomination")]
    ZeroInSpec,
}

/// An amount of money in minor units (cents). Never negative.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(u64::MAX);

    pub const fn from_minor(minor_units: u64) -> Amount {
        Amount(minor_units)
    }

    pub const fn minor_units(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(MoneyError::Negative)
    }

    pub fn checked_mul(self, count: u64) -> Result<Amount, MoneyError> {
        self.0
            .checked_mul(count)
            .map(Amount)
            .ok_or(MoneyError::Overflow)
    }

    /// Sums amounts, failing on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Result<Amount, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl FromStr for Amount {
    type Err = MoneyError;

    /// Parses `12`, `12.5` or `12.25` (optionally with a leading `$`).
    fn from_str(s: &str) -> Result<Amount, MoneyError> {
        let bad = || MoneyError::Parse(s.chars().take(32).collect());
        let body = s.strip_prefix('$').unwrap_or(s);
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if body.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let cents: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().map_err(|_| bad())? * 10,
            _ => frac.parse::<u64>().map_err(|_| bad())?,
        };
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .map(Amount)
            .ok_or(MoneyError::Overflow)
    }
}

/// One line of a coin spec: `count` coins of value `value` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Denomination {
    pub count: u32,
    pub value: Amount,
}

/// What to mint: the paper's "(2, $2.50), (1, $1.25), (3, $2)".
///
/// A spec is never empty, has at most [`SPEC_LINES_MAX`] lines, no zero
/// count and no zero value; its total fits an [`Amount`]. Construct it with
/// [`CoinSpec::new`] (which checks) or decode it and call [`CoinSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoinSpec {
    lines: Vec<Denomination>,
}

impl CoinSpec {
    pub fn new(lines: Vec<Denomination>) -> Result<CoinSpec, MoneyError> {
        let spec = CoinSpec { lines };
        spec.validate()?;
        Ok(spec)
    }

    /// A spec of one coin of `value`.
    pub fn single(value: Amount) -> Result<CoinSpec, MoneyError> {
        CoinSpec::new(vec![Denomination { count: 1, value }])
    }

    /// Checks the invariants a decoded spec may not yet satisfy.
    pub fn validate(&self) -> Result<(), MoneyError> {
        if self.lines.is_empty() {
            return Err(MoneyError::EmptySpec);
        }
        if self.lines.len() > SPEC_LINES_MAX {
            return Err(MoneyError::SpecTooLong(self.lines.len()));
        }
        if self.lines.iter().any(|d| d.count == 0 || d.value.is_zero()) {
            return Err(MoneyError::ZeroInSpec);
        }
        self.total().map(|_| ())
    }

    pub fn lines(&self) -> &[Denomination] {
        &self.lines
    }

    /// The value of all coins of the spec.
    pub fn total(&self) -> Result<Amount, MoneyError> {
        self.lines.iter().try_fold(Amount::ZERO, |acc, d| {
            acc.checked_add(d.value.checked_mul(u64::from(d.count))?)
        })
    }

    /// How many coins the spec asks for.
    pub fn n_coins(&self) -> u64 {
        self.lines.iter().map(|d| u64::from(d.count)).sum()
    }

    /// The coin values one by one, in spec order.
    pub fn values(&self) -> impl Iterator<Item = Amount> + '_ {
        self.lines
            .iter()
            .flat_map(|d| std::iter::repeat_n(d.value, d.count as usize))
    }

    /// Greedy spec for `amount` over the given denominations (largest first);
    /// `None` if the denominations cannot make the amount exactly.
    pub fn greedy(amount: Amount, denominations: &[Amount]) -> Option<CoinSpec> {
        let mut denoms: Vec<Amount> = denominations
            .iter()
            .copied()
            .filter(|d| !d.is_zero())
            .collect();
        denoms.sort_unstable_by(|a, b| b.cmp(a));
        denoms.dedup();
        let mut rest = amount.minor_units();
        let mut lines = Vec::new();
        for d in denoms {
            let count = rest / d.minor_units();
            if count > 0 {
                lines.push(Denomination {
                    count: u32::try_from(count).ok()?,
                    value: d,
                });
                rest -= count * d.minor_units();
            }
        }
        if rest != 0 {
            return None;
        }
        CoinSpec::new(lines).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_paper_amounts() {
        assert_eq!("12.25".parse::<Amount>(), Ok(Amount::from_minor(1225)));
        assert_eq!("$2.50".parse::<Amount>(), Ok(Amount::from_minor(250)));
        assert_eq!("3".parse::<Amount>(), Ok(Amount::from_minor(300)));
        assert_eq!("0.5".parse::<Amount>(), Ok(Amount::from_minor(50)));
        assert_eq!(Amount::from_minor(1225).to_string(), "12.25");
        assert_eq!(Amount::from_minor(5).to_string(), "0.05");
    }

    #[test]
    fn rejects_malformed_amounts() {
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "1,00",
            "abc",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            Amount::MAX.checked_add(Amount::from_minor(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Amount::ZERO.checked_sub(Amount::from_minor(1)),
            Err(MoneyError::Negative)
        );
        assert_eq!(Amount::MAX.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn paper_spec_totals() {
        let spec = CoinSpec::new(vec![
            Denomination {
                count: 2,
                value: Amount::from_minor(250),
            },
            Denomination {
                count: 1,
                value: Amount::from_minor(125),
            },
            Denomination {
                count: 3,
                value: Amount::from_minor(200),
            },
        ])
        .expect("valid spec");
        assert_eq!(spec.total(), Ok(Amount::from_minor(1225)));
        assert_eq!(spec.n_coins(), 6);
        assert_eq!(spec.values().count(), 6);
    }

    #[test]
    fn invalid_specs_are_refused() {
        assert_eq!(CoinSpec::new(vec![]), Err(MoneyError::EmptySpec));
        let zero = Denomination {
            count: 0,
            value: Amount::from_minor(1),
        };
        assert_eq!(CoinSpec::new(vec![zero]), Err(MoneyError::ZeroInSpec));
        let huge = Denomination {
            count: u32::MAX,
            value: Amount::MAX,
        };
        assert_eq!(CoinSpec::new(vec![huge]), Err(MoneyError::Overflow));
    }

    #[test]
    fn greedy_makes_exact_change_or_nothing() {
        let denoms = [
            Amount::from_minor(100),
            Amount::from_minor(25),
            Amount::from_minor(5),
        ];
        let spec = CoinSpec::greedy(Amount::from_minor(235), &denoms).expect("makeable");
        assert_eq!(spec.total(), Ok(Amount::from_minor(235)));
        assert!(CoinSpec::greedy(Amount::from_minor(3), &denoms).is_none());
    }

    proptest! {
        #[test]
        fn add_then_sub_round_trips(a in 0u64..u64::MAX / 2, b in 0u64..u64::MAX / 2) {
            let (a, b) = (Amount::from_minor(a), Amount::from_minor(b));
            let sum = a.checked_add(b).expect("no overflow below MAX/2");
            prop_assert_eq!(sum.checked_sub(b), Ok(a));
            prop_assert_eq!(sum.checked_sub(a), Ok(b));
        }

        #[test]
        fn checked_add_matches_u128(a: u64, b: u64) {
            let wide = u128::from(a) + u128::from(b);
            let got = Amount::from_minor(a).checked_add(Amount::from_minor(b));
            if wide > u128::from(u64::MAX) {
                prop_assert_eq!(got, Err(MoneyError::Overflow));
            } else {
                prop_assert_eq!(got.map(Amount::minor_units), Ok(wide as u64));
            }
        }

        #[test]
        fn display_parse_round_trips(a: u64) {
            let amount = Amount::from_minor(a);
            prop_assert_eq!(amount.to_string().parse::<Amount>(), Ok(amount));
        }

        #[test]
        fn spec_total_is_sum_of_values(lines in proptest::collection::vec((1u32..100, 1u64..1_000_000), 1..20)) {
            let spec = CoinSpec::new(lines.iter().map(|&(count, v)| Denomination { count, value: Amount::from_minor(v) }).collect())
                .expect("small specs are valid");
            let by_values = Amount::checked_sum(spec.values()).expect("fits");
            prop_assert_eq!(spec.total(), Ok(by_values));
            let expected: u64 = lines.iter().map(|&(c, v)| u64::from(c) * v).sum();
            prop_assert_eq!(by_values.minor_units(), expected);
        }
    }
}
