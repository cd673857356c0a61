//! [`Iban`] (ISO 13616) and [`Bic`] (ISO 9362), checked when made: an
//! IBAN's check digits by mod-97, its length by its country where known.

use std::fmt;

use crate::error::BankFileError;

/// An International Bank Account Number, without spaces, upper case, its
/// check digits verified.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iban(String);

/// IBAN lengths of some countries (ISO 13616 registry); other countries
/// are held to the general 15..=34.
const COUNTRY_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("DE", 22),
    ("DK", 18),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("IE", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("SE", 24),
];

/// The IBAN's remainder mod 97 (letters as 10..=35, the first four
/// characters moved to the end); a valid IBAN gives 1.
fn mod97(iban: &str) -> u32 {
    let (head, tail) = iban.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return 0,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

impl Iban {
    /// Parses an IBAN, spaces allowed (as it is printed), any case.
    pub fn parse(text: &str) -> Result<Iban, BankFileError> {
        if text.len() > 64 {
            return Err(BankFileError::BadIban("too long"));
        }
        let compact: String = text
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !(15..=34).contains(&compact.len()) {
            return Err(BankFileError::BadIban("15 to 34 characters"));
        }
        if !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(BankFileError::BadIban("letters and digits only"));
        }
        let bytes = compact.as_bytes();
        if !bytes[..2].iter().all(u8::is_ascii_uppercase) {
            return Err(BankFileError::BadIban("a two-letter country code first"));
        }
        if !bytes[2..4].iter().all(u8::is_ascii_digit) {
            return Err(BankFileError::BadIban("two check digits after the country"));
        }
        if let Some((_, len)) = COUNTRY_LENGTHS.iter().find(|(c, _)| *c == &compact[..2])
            && compact.len() != *len
        {
            return Err(BankFileError::BadIban("wrong length for its country"));
        }
        if mod97(&compact) != 1 {
            return Err(BankFileError::BadIban("check digits do not match"));
        }
        Ok(Iban(compact))
    }

    /// The IBAN with check digits computed for `country` and `bban`.
    pub fn from_parts(country: &str, bban: &str) -> Result<Iban, BankFileError> {
        let probe = format!("{country}00{bban}").to_ascii_uppercase();
        if probe.len() < 5 || !probe.is_char_boundary(4) {
            return Err(BankFileError::BadIban("too short"));
        }
        let check = 98 - mod97(&probe);
        Iban::parse(&format!("{country}{check:02}{bban}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for Iban {
    /// Groups of four, as printed on paper.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(chunk).unwrap_or(""))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Iban {
    /// An account number is not for logs: the country and the last four.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({}…{})", &self.0[..2], &self.0[self.0.len() - 4..])
    }
}

impl std::str::FromStr for Iban {
    type Err = BankFileError;

    fn from_str(s: &str) -> Result<Iban, BankFileError> {
        Iban::parse(s)
    }
}

/// A Business Identifier Code: 4 letters (bank), 2 letters (country), 2
/// letters or digits (location), optionally 3 more (branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bic(String);

impl Bic {
    pub fn parse(text: &str) -> Result<Bic, BankFileError> {
        let bic = text.trim().to_ascii_uppercase();
        let b = bic.as_bytes();
        if b.len() != 8 && b.len() != 11 {
            return Err(BankFileError::BadBic("8 or 11 characters"));
        }
        if !b[..6].iter().all(u8::is_ascii_uppercase) {
            return Err(BankFileError::BadBic(
                "a bank code and a country code of letters",
            ));
        }
        if !b[6..].iter().all(u8::is_ascii_alphanumeric) {
            return Err(BankFileError::BadBic(
                "location and branch of letters and digits",
            ));
        }
        Ok(Bic(bic))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ibans_check_and_a_changed_digit_does_not() {
        for good in [
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "be71 0961 2345 6769",
        ] {
            let iban = Iban::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(Iban::parse(&iban.to_string()), Ok(iban));
        }
        for bad in [
            "DE89 3704 0044 0532 0130 01",
            "GB82WEST12345698765433",
            "DE89370400440532013",
            "XX",
            "DE8937040044053201300O",
            "1E89370400440532013000",
            "DE8X370400440532013000",
        ] {
            assert!(Iban::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn check_digits_are_computed_for_a_country_and_bban() {
        let iban = Iban::from_parts("DE", "370400440532013000").expect("iban");
        assert_eq!(iban.as_str(), "DE89370400440532013000");
        assert_eq!(format!("{iban:?}"), "Iban(DE…3000)");
    }

    #[test]
    fn bics_have_their_shape() {
        assert!(Bic::parse("COBADEFFXXX").is_ok());
        assert!(Bic::parse("DEUTDEFF").is_ok());
        for bad in ["DEUTDEF", "DEUT1EFF", "DEUTDEFF50", "DEUTDEFF5_0"] {
            assert!(Bic::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
