//! The card's non-volatile memory, modelled as a byte image written one
//! write at a time, with an injectable power cut ([`TearAfter`]).
//!
//! A single write (one segment or one journal slot, at most a page) is
//! atomic, as an EEPROM page write is; everything larger is made atomic by
//! the journal in [`super::persist`]. The image can be saved to and loaded
//! from a file, so a card outlives a process; opened with
//! [`Eeprom::open_write_through`], every write reaches the file before the
//! next one starts, so a process killed mid-commit leaves the file exactly
//! as a power cut leaves the card (the journal recovers it at power-up).

use std::path::{Path, PathBuf};

/// Cut the power right after the `n`-th write from now (1 = after the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TearAfter(pub u64);

/// Why a write did not happen or the card went dark.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EepromError {
    #[error("power was cut after write {writes_done}")]
    PowerCut { writes_done: u64 },
    #[error("the card has no power: power it up again")]
    NoPower,
    #[error("write of {len} bytes at {offset} falls outside the {size}-byte image")]
    OutOfBounds {
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("card image file: {0}")]
    Io(String),
    #[error("card image is {got} bytes, expected {expected}")]
    ImageSize { got: usize, expected: usize },
}

/// A byte image of EEPROM with a write counter and an optional tear fault.
#[derive(Debug, Clone)]
pub struct Eeprom {
    image: Vec<u8>,
    writes_done: u64,
    tear_at: Option<u64>,
    powered: bool,
    /// The file every write is saved to, if the image is write-through.
    backing: Option<PathBuf>,
}

impl Eeprom {
    /// A blank (all zero) image of `size_bytes`.
    pub fn blank(size_bytes: usize) -> Eeprom {
        Eeprom {
            image: vec![0; size_bytes],
            writes_done: 0,
            tear_at: None,
            powered: true,
            backing: None,
        }
    }

    pub fn from_image(image: Vec<u8>, expected_bytes: usize) -> Result<Eeprom, EepromError> {
        if image.len() != expected_bytes {
            return Err(EepromError::ImageSize {
                got: image.len(),
                expected: expected_bytes,
            });
        }
        Ok(Eeprom {
            image,
            writes_done: 0,
            tear_at: None,
            powered: true,
            backing: None,
        })
    }

    /// Arms a power cut after `tear.0` more writes; `None` disarms.
    pub fn arm(&mut self, tear: Option<TearAfter>) {
        self.tear_at = tear.map(|t| self.writes_done.saturating_add(t.0.max(1)));
    }

    /// Writes counted since the image was made or loaded.
    pub fn writes_done(&self) -> u64 {
        self.writes_done
    }

    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Restores power (the reader re-inserts the card). Disarms any fault.
    pub fn power_on(&mut self) {
        self.powered = true;
        self.tear_at = None;
    }

    pub fn read(&self, offset: usize, len: usize) -> Result<&[u8], EepromError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.image.len());
        match end {
            Some(end) => Ok(&self.image[offset..end]),
            None => Err(EepromError::OutOfBounds {
                offset,
                len,
                size: self.image.len(),
            }),
        }
    }

    /// One atomic write. If a tear is armed for this write, the write lands
    /// and the power goes: the caller sees [`EepromError::PowerCut`].
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), EepromError> {
        if !self.powered {
            return Err(EepromError::NoPower);
        }
        let size = self.image.len();
        let end = offset
            .checked_add(bytes.len())
            .filter(|&e| e <= size)
            .ok_or(EepromError::OutOfBounds {
                offset,
                len: bytes.len(),
                size,
            })?;
        self.image[offset..end].copy_from_slice(bytes);
        self.writes_done += 1;
        if let Some(Err(e)) = self.backing.as_ref().map(|path| self.save(path)) {
            // The file is what the card holds: a write that did not reach
            // it did not happen, so the card goes dark.
            self.powered = false;
            return Err(e);
        }
        if self.tear_at == Some(self.writes_done) {
            self.powered = false;
            return Err(EepromError::PowerCut {
                writes_done: self.writes_done,
            });
        }
        Ok(())
    }

    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Saves the image durably: write a temporary file, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), EepromError> {
        let io = |e: std::io::Error| EepromError::Io(e.to_string());
        // The image holds the card's keys and balance: mode 0600.
        ledger::private_file::write_private(path, &self.image).map_err(io)
    }

    /// Loads the image at `path` and saves every later write to it.
    pub fn open_write_through(path: &Path, expected_bytes: usize) -> Result<Eeprom, EepromError> {
        let mut e = Eeprom::load(path, expected_bytes)?;
        e.backing = Some(path.to_path_buf());
        Ok(e)
    }

    /// The same image, in memory only: what a copy of the card's file holds.
    pub fn detached(&self) -> Eeprom {
        Eeprom {
            backing: None,
            ..self.clone()
        }
    }

    pub fn load(path: &Path, expected_bytes: usize) -> Result<Eeprom, EepromError> {
        let meta = std::fs::metadata(path).map_err(|e| EepromError::Io(e.to_string()))?;
        if meta.len() != expected_bytes as u64 {
            return Err(EepromError::ImageSize {
                got: usize::try_from(meta.len()).unwrap_or(usize::MAX),
                expected: expected_bytes,
            });
        }
        let image = std::fs::read(path).map_err(|e| EepromError::Io(e.to_string()))?;
        Eeprom::from_image(image, expected_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tear_lands_the_nth_write_then_refuses_the_rest() {
        let mut e = Eeprom::blank(16);
        e.arm(Some(TearAfter(2)));
        assert_eq!(e.write(0, &[1]), Ok(()));
        assert_eq!(
            e.write(1, &[2]),
            Err(EepromError::PowerCut { writes_done: 2 })
        );
        assert_eq!(e.write(2, &[3]), Err(EepromError::NoPower));
        assert_eq!(e.image()[..3], [1, 2, 0]);
        e.power_on();
        assert_eq!(e.write(2, &[3]), Ok(()));
    }

    #[test]
    fn out_of_bounds_writes_and_reads_are_errors() {
        let mut e = Eeprom::blank(4);
        assert!(matches!(
            e.write(3, &[0, 0]),
            Err(EepromError::OutOfBounds { .. })
        ));
        assert!(e.read(usize::MAX, 2).is_err());
    }

    #[test]
    fn a_write_through_image_is_on_file_after_every_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("card.img");
        Eeprom::blank(8).save(&path).expect("save");
        let mut e = Eeprom::open_write_through(&path, 8).expect("open");
        e.write(0, b"ab").expect("write");
        assert_eq!(&std::fs::read(&path).expect("read")[..3], b"ab\0");
        e.arm(Some(TearAfter(1)));
        assert!(e.write(2, b"c").is_err());
        // The torn write landed, on file too; nothing after it does.
        assert_eq!(&std::fs::read(&path).expect("read")[..3], b"abc");
        let mut copy = e.detached();
        copy.power_on();
        copy.write(0, b"z").expect("write");
        assert_eq!(&std::fs::read(&path).expect("read")[..1], b"a");
    }

    #[test]
    fn image_round_trips_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("card.img");
        let mut e = Eeprom::blank(8);
        e.write(0, b"abc").expect("write");
        e.save(&path).expect("save");
        let back = Eeprom::load(&path, 8).expect("load");
        assert_eq!(back.image(), e.image());
        assert!(Eeprom::load(&path, 9).is_err());
    }
}
