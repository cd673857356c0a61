//! How records are stored: one version byte, then postcard. Decoding checks
//! the length against the record's limit first and returns a typed error on
//! anything malformed, so a damaged purse file never panics the purse.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::PurseError;

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
