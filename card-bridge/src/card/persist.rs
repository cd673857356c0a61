//! The card's memory layout and its tear-safe commit: a write journal with a
//! commit flag, recovered at power-up ("everything or nothing", like a Java
//! Card commit buffer).
//!
//! The image holds fixed segments, each `[len u8][postcard bytes]` padded to
//! its capacity. A commit of `k` segments takes `2k + 2` writes:
//! 1. the new contents of each segment into journal slot `i` (k writes);
//! 2. the journal header `{flag = 1, count = k}`: the commit point;
//! 3. each segment in place (k writes);
//! 4. the header `{flag = 0}`.
//!
//! A power cut before step 2 leaves the old state (the half-written journal
//! is ignored); after it, power-up replays the journal, which is idempotent.

use serde::{Serialize, de::DeserializeOwned};

use super::eeprom::{Eeprom, EepromError};
use crate::constants::{CARD_LOG_SLOTS, CARD_SEGMENT_BYTES_MAX};

/// One independently written part of the card's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Written once at issue: id, suite, expiry, maximum balance, keys.
    Personalisation,
    Status,
    Counter,
    Balance,
    Pending,
    LastRecord,
    LogHead,
    Log(u8),
}

/// Most segments one commit may touch.
pub const JOURNAL_SLOTS: usize = 8;
const PERSO_BYTES: usize = 160;
const HEADER_BYTES: usize = 4;
const SLOT_BYTES: usize = 1 + CARD_SEGMENT_BYTES_MAX;
const MAGIC: &[u8; 4] = b"VCSM";

impl Segment {
    fn index(self) -> u8 {
        match self {
            Segment::Personalisation => 0,
            Segment::Status => 1,
            Segment::Counter => 2,
            Segment::Balance => 3,
            Segment::Pending => 4,
            Segment::LastRecord => 5,
            Segment::LogHead => 6,
            Segment::Log(i) => 7 + i,
        }
    }

    fn from_index(i: u8) -> Option<Segment> {
        Some(match i {
            0 => Segment::Personalisation,
            1 => Segment::Status,
            2 => Segment::Counter,
            3 => Segment::Balance,
            4 => Segment::Pending,
            5 => Segment::LastRecord,
            6 => Segment::LogHead,
            i if usize::from(i - 7) < CARD_LOG_SLOTS => Segment::Log(i - 7),
            _ => return None,
        })
    }

    fn capacity(self) -> usize {
        match self {
            Segment::Personalisation => PERSO_BYTES,
            _ => CARD_SEGMENT_BYTES_MAX,
        }
    }

    fn offset(self) -> usize {
        let i = usize::from(self.index());
        if i == 0 {
            MAGIC.len()
        } else {
            MAGIC.len() + PERSO_BYTES + (i - 1) * CARD_SEGMENT_BYTES_MAX
        }
    }
}

const SEGMENTS_END: usize =
    MAGIC.len() + PERSO_BYTES + (6 + CARD_LOG_SLOTS) * CARD_SEGMENT_BYTES_MAX;
const JOURNAL_OFFSET: usize = SEGMENTS_END;
/// Size of a card image, in bytes.
pub const IMAGE_BYTES: usize = JOURNAL_OFFSET + HEADER_BYTES + JOURNAL_SLOTS * SLOT_BYTES;

/// Why the card's memory could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    #[error(transparent)]
    Eeprom(#[from] EepromError),
    #[error("card memory is not a personalised card image")]
    NotACard,
    #[error("segment {0:?} is corrupt")]
    Corrupt(Segment),
    #[error("segment {0:?} would take {1} bytes, more than its capacity")]
    TooLarge(Segment, usize),
    #[error("a commit of {0} segments exceeds the journal")]
    JournalFull(usize),
}

/// Encodes a value for `seg`, refusing what does not fit.
pub fn encode<T: Serialize>(seg: Segment, value: &T) -> Result<Vec<u8>, PersistError> {
    let body = postcard::to_allocvec(value).map_err(|_| PersistError::Corrupt(seg))?;
    if body.len() + 1 > seg.capacity() || body.len() > usize::from(u8::MAX) {
        return Err(PersistError::TooLarge(seg, body.len()));
    }
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads and decodes a segment; the length byte bounds the decode.
pub fn read<T: DeserializeOwned>(eeprom: &Eeprom, seg: Segment) -> Result<T, PersistError> {
    let raw = eeprom.read(seg.offset(), seg.capacity())?;
    let len = usize::from(raw[0]);
    if len + 1 > raw.len() {
        return Err(PersistError::Corrupt(seg));
    }
    postcard::from_bytes(&raw[1..=len]).map_err(|_| PersistError::Corrupt(seg))
}

/// Writes a fresh image: the magic and every segment, without the journal.
/// Used only at personalisation, before the card leaves the issuer.
pub fn format(eeprom: &mut Eeprom, segments: &[(Segment, Vec<u8>)]) -> Result<(), PersistError> {
    for (seg, bytes) in segments {
        eeprom.write(seg.offset(), bytes)?;
    }
    eeprom.write(JOURNAL_OFFSET, &[0; HEADER_BYTES])?;
    eeprom.write(0, MAGIC)?;
    Ok(())
}

/// Whether the image carries a card at all.
pub fn is_formatted(eeprom: &Eeprom) -> bool {
    eeprom
        .read(0, MAGIC.len())
        .map(|m| m == MAGIC)
        .unwrap_or(false)
}

/// Commits `updates` all together or not at all (see the module docs).
pub fn commit(eeprom: &mut Eeprom, updates: &[(Segment, Vec<u8>)]) -> Result<(), PersistError> {
    if updates.len() > JOURNAL_SLOTS {
        return Err(PersistError::JournalFull(updates.len()));
    }
    for (i, (seg, bytes)) in updates.iter().enumerate() {
        if bytes.len() > seg.capacity() || bytes.len() + 1 > SLOT_BYTES {
            return Err(PersistError::TooLarge(*seg, bytes.len()));
        }
        let mut slot = Vec::with_capacity(1 + bytes.len());
        slot.push(seg.index());
        slot.extend_from_slice(bytes);
        eeprom.write(JOURNAL_OFFSET + HEADER_BYTES + i * SLOT_BYTES, &slot)?;
    }
    eeprom.write(JOURNAL_OFFSET, &[1, updates.len() as u8, 0, 0])?;
    for (seg, bytes) in updates {
        eeprom.write(seg.offset(), bytes)?;
    }
    eeprom.write(JOURNAL_OFFSET, &[0, 0, 0, 0])?;
    Ok(())
}

/// Power-up recovery: replays a committed journal, ignores an uncommitted one.
/// Returns whether a journal was replayed.
pub fn recover(eeprom: &mut Eeprom) -> Result<bool, PersistError> {
    if !is_formatted(eeprom) {
        return Err(PersistError::NotACard);
    }
    let header = eeprom.read(JOURNAL_OFFSET, HEADER_BYTES)?.to_vec();
    if header[0] != 1 {
        return Ok(false);
    }
    let count = usize::from(header[1]);
    if count > JOURNAL_SLOTS {
        return Err(PersistError::JournalFull(count));
    }
    for i in 0..count {
        let slot = eeprom
            .read(JOURNAL_OFFSET + HEADER_BYTES + i * SLOT_BYTES, SLOT_BYTES)?
            .to_vec();
        let seg = Segment::from_index(slot[0]).ok_or(PersistError::Corrupt(Segment::LogHead))?;
        let len = usize::from(slot[1]);
        // A slot holds its segment id, the length byte and the body.
        if len + 1 > seg.capacity() || len + 2 > SLOT_BYTES {
            return Err(PersistError::Corrupt(seg));
        }
        eeprom.write(seg.offset(), &slot[1..len + 2])?;
    }
    eeprom.write(JOURNAL_OFFSET, &[0, 0, 0, 0])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::eeprom::TearAfter;

    fn fresh() -> Eeprom {
        let mut e = Eeprom::blank(IMAGE_BYTES);
        format(
            &mut e,
            &[
                (
                    Segment::Counter,
                    encode(Segment::Counter, &0u32).expect("fits"),
                ),
                (
                    Segment::Balance,
                    encode(Segment::Balance, &0u64).expect("fits"),
                ),
            ],
        )
        .expect("format");
        e
    }

    fn state(e: &Eeprom) -> (u32, u64) {
        (
            read(e, Segment::Counter).expect("counter"),
            read(e, Segment::Balance).expect("balance"),
        )
    }

    #[test]
    fn segments_do_not_overlap_the_journal() {
        assert!(
            Segment::Log((CARD_LOG_SLOTS - 1) as u8).offset() + CARD_SEGMENT_BYTES_MAX
                <= JOURNAL_OFFSET
        );
        assert_eq!(Segment::from_index(7 + CARD_LOG_SLOTS as u8), None);
    }

    #[test]
    fn a_tear_after_any_write_leaves_all_or_nothing() {
        let updates = vec![
            (
                Segment::Counter,
                encode(Segment::Counter, &1u32).expect("fits"),
            ),
            (
                Segment::Balance,
                encode(Segment::Balance, &500u64).expect("fits"),
            ),
        ];
        let writes = 2 * updates.len() as u64 + 2;
        for n in 1..=writes {
            let mut e = fresh();
            e.arm(Some(TearAfter(n)));
            let result = commit(&mut e, &updates);
            assert!(
                result.is_err(),
                "tear after write {n} must interrupt the commit"
            );
            e.power_on();
            recover(&mut e).expect("recover");
            let after = state(&e);
            // Write k+1 (the header) is the commit point.
            let expected = if n > updates.len() as u64 {
                (1, 500)
            } else {
                (0, 0)
            };
            assert_eq!(after, expected, "tear after write {n}");
        }
        let mut e = fresh();
        commit(&mut e, &updates).expect("no tear");
        assert_eq!(state(&e), (1, 500));
    }

    #[test]
    fn a_tear_during_recovery_is_recovered_again() {
        let updates = vec![
            (
                Segment::Counter,
                encode(Segment::Counter, &9u32).expect("fits"),
            ),
            (
                Segment::Balance,
                encode(Segment::Balance, &7u64).expect("fits"),
            ),
        ];
        let mut e = fresh();
        e.arm(Some(TearAfter(3)));
        assert!(commit(&mut e, &updates).is_err());
        e.power_on();
        e.arm(Some(TearAfter(1)));
        assert!(recover(&mut e).is_err());
        e.power_on();
        assert_eq!(recover(&mut e), Ok(true));
        assert_eq!(state(&e), (9, 7));
        assert_eq!(recover(&mut e), Ok(false));
    }

    #[test]
    fn a_corrupt_journal_is_an_error_not_a_panic() {
        let mut e = fresh();
        // Commit flag set, one slot naming the personalisation segment with
        // a length longer than a slot can hold.
        e.write(JOURNAL_OFFSET + HEADER_BYTES, &[0, 200])
            .expect("write");
        e.write(JOURNAL_OFFSET, &[1, 1, 0, 0]).expect("write");
        assert!(matches!(recover(&mut e), Err(PersistError::Corrupt(_))));
        e.write(JOURNAL_OFFSET, &[1, 99, 0, 0]).expect("write");
        assert_eq!(recover(&mut e), Err(PersistError::JournalFull(99)));
        e.write(JOURNAL_OFFSET + HEADER_BYTES, &[250, 1])
            .expect("write");
        e.write(JOURNAL_OFFSET, &[1, 1, 0, 0]).expect("write");
        assert!(matches!(recover(&mut e), Err(PersistError::Corrupt(_))));
    }

    #[test]
    fn oversized_values_and_blank_images_are_refused() {
        let big = vec![0u8; CARD_SEGMENT_BYTES_MAX];
        assert!(matches!(
            encode(Segment::Balance, &big),
            Err(PersistError::TooLarge(..))
        ));
        let mut blank = Eeprom::blank(IMAGE_BYTES);
        assert_eq!(recover(&mut blank), Err(PersistError::NotACard));
    }
}
