//! Amounts in files: ISO 20022 `ActiveOrHistoricCurrencyAndAmount`,
//! decimal text, at most two fraction digits for the euro, never negative.

use ledger::Amount;

use crate::error::BankFileError;

/// `12.34` for 1234 minor units.
pub fn to_text(amount: Amount) -> String {
    amount.to_string()
}

/// Reads `12.34`, `12.3` or `12` (no sign, no exponent, at most 18 digits
/// before the point and 2 after).
pub fn from_text(text: &str) -> Result<Amount, BankFileError> {
    let text = text.trim();
    let (units, fraction) = match text.split_once('.') {
        Some((u, f)) => (u, f),
        None => (text, ""),
    };
    if units.is_empty() || units.len() > 18 || !units.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BankFileError::BadAmount("digits before the point"));
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BankFileError::BadAmount(
            "at most two digits after the point",
        ));
    }
    let units: u64 = units
        .parse()
        .map_err(|_| BankFileError::BadAmount("too large"))?;
    let cents: u64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<u64>().unwrap_or(0) * 10,
        _ => fraction.parse::<u64>().unwrap_or(0),
    };
    units
        .checked_mul(100)
        .and_then(|m| m.checked_add(cents))
        .map(Amount::from_minor)
        .ok_or(BankFileError::BadAmount("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_read_as_iso_20022_writes_them() {
        assert_eq!(from_text("12.34"), Ok(Amount::from_minor(1234)));
        assert_eq!(from_text("12.3"), Ok(Amount::from_minor(1230)));
        assert_eq!(from_text("7"), Ok(Amount::from_minor(700)));
        for bad in [
            "",
            "-1.00",
            "1.234",
            "1e3",
            "1,00",
            ".5",
            "99999999999999999999",
        ] {
            assert!(from_text(bad).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn every_amount_round_trips(minor in 0u64..u64::MAX / 200) {
            let amount = Amount::from_minor(minor);
            prop_assert_eq!(from_text(&to_text(amount)), Ok(amount));
        }
    }
}
