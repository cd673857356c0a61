//! The smartcard model: what a stored-value card holds and does, over a
//! tear-safe memory. [`SmartCard`] is the card; [`eeprom`] the raw memory
//! with injectable power cuts; [`persist`] the layout and the journal.

pub mod eeprom;
pub mod persist;
mod smartcard;

pub use eeprom::{Eeprom, EepromError, TearAfter};
pub use smartcard::{
    CardError, CardInfo, CardStatus, PendingTx, RecordDetail, SmartCard, TxKind, TxRecord,
};
