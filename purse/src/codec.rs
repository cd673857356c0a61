//! How records are stored: one version byte, then postcard, sealed under
//! the purse key for the row it lives in ([`seal_record`], [`open_record`]).
//! Decoding checks the length against the record's limit first and returns
//! a typed error on anything malformed, so a damaged purse file never
//! panics the purse.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::PurseError;
use crate::seal::{PurseKey, SEAL_OVERHEAD_BYTES, slot};

/// The version byte in front of every stored record.
pub(crate) const RECORD_VERSION: u8 = 1;

pub(crate) fn encode<T: Serialize>(
    what: &'static str,
    value: &T,
    max_bytes: usize,
) -> Result<Vec<u8>, PurseError> {
    let mut out = vec![RECORD_VERSION];
    let body = postcard::to_stdvec(value).map_err(|_| PurseError::Invalid(what))?;
    out.extend_from_slice(&body);
    crate::error::check_len(what, out.len(), max_bytes)?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T, PurseError> {
    if bytes.len() > max_bytes {
        return Err(PurseError::Corrupt(format!(
            "{what} record of {} bytes exceeds {max_bytes}",
            bytes.len()
        )));
    }
    match bytes.split_first() {
        None => Err(PurseError::Corrupt(format!("{what} record is empty"))),
        Some((&RECORD_VERSION, body)) => match postcard::take_from_bytes::<T>(body) {
            Ok((value, [])) => Ok(value),
            Ok(_) => Err(PurseError::Corrupt(format!(
                "{what} record has trailing bytes"
            ))),
            Err(e) => Err(PurseError::Corrupt(format!("{what} record: {e}"))),
        },
        Some((v, _)) => Err(PurseError::Corrupt(format!(
            "{what} record of unknown version {v}"
        ))),
    }
}

/// Encodes `value` and seals it for row `row` of `table`.
pub(crate) fn seal_record<T: Serialize>(
    key: &PurseKey,
    table: &str,
    row: &[u8],
    what: &'static str,
    value: &T,
    max_bytes: usize,
) -> Result<Vec<u8>, PurseError> {
    let plain = Zeroizing::new(encode(what, value, max_bytes)?);
    key.seal(&slot(table, row), &plain)
}

/// Opens a record sealed by [`seal_record`] for row `row` of `table` and
/// decodes it. A record that does not open (damaged, or moved from another
/// row) is `Corrupt`: the key itself was checked when the purse opened.
pub(crate) fn open_record<T: DeserializeOwned>(
    key: &PurseKey,
    table: &str,
    row: &[u8],
    what: &'static str,
    sealed: &[u8],
    max_bytes: usize,
) -> Result<T, PurseError> {
    if sealed.len() > max_bytes + SEAL_OVERHEAD_BYTES {
        return Err(PurseError::Corrupt(format!(
            "sealed {what} record of {} bytes exceeds {}",
            sealed.len(),
            max_bytes + SEAL_OVERHEAD_BYTES
        )));
    }
    let plain = key.open(&slot(table, row), sealed)?.ok_or_else(|| {
        PurseError::Corrupt(format!(
            "{what} record does not open: damaged, or moved from another row"
        ))
    })?;
    decode(what, &plain, max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let bytes = encode("test", &(7u32, "x".to_string()), 64).expect("fits");
        assert_eq!(
            decode::<(u32, String)>("test", &bytes, 64).ok(),
            Some((7, "x".to_string()))
        );
        assert!(decode::<(u32, String)>("test", &bytes[..bytes.len() - 1], 64).is_err());
        assert!(decode::<(u32, String)>("test", &[], 64).is_err());
        assert!(decode::<(u32, String)>("test", &[9, 1, 1, b'x'], 64).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<(u32, String)>("test", &long, 64).is_err());
        assert!(decode::<(u32, String)>("test", &bytes, 2).is_err());
        assert!(encode("test", &vec![0u8; 100], 64).is_err());
    }
}
