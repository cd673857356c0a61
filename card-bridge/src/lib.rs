//! Card cash for VarietyCash (paper §4; `docs/protocol.md`, "Card cash"):
//! stored-value cards, the load/unload server, purchase SAMs, collection,
//! clearing, and transfers to and from soft cash.
//!
//! Main types and how value flows between them:
//!
//! ```text
//!   MasterKeys ──diversify(ID)──▶ CardKeys (in SmartCard)
//!
//!   SmartCard ──L1──▶ CardTerminal ──guarantee──▶ impl Agency (issuer / DurableAgency)
//!       ▲                 │  L1
//!       │ L2              ▼
//!       └──────── LoadUnloadServer (redb log: PENDING/IN-DOUBT/COMMITTED/REJECTED)
//!   SmartCard ──L3 / RejectProof──▶ LoadUnloadServer ──CardTxRecord──▶ Agency
//!
//!   Psam ──PurchaseRequest──▶ SmartCard ──PurchaseProof──▶ Psam ──Batch──▶ CollectionServer
//!   clearing::clear(LUS, Agency) ──▶ Settlement (ledger Event::Cleared)
//!   transfer::Transfers over impl SoftCash (the issuer) + TransferJournal
//! ```
//!
//! - [`crypto`]: TDES (default) / AES-256 keys, diversification, CMAC.
//! - [`card`]: the card and its tear-safe memory ([`card::TearAfter`] cuts power).
//! - [`wire`]: the messages and the exact bytes every MAC covers.
//! - [`lus`], [`agency`], [`flows`]: Load and Unload, in-doubt resolution.
//! - [`psam`], [`collection`]: off-line purchases.
//! - [`clearing`], [`transfer`], [`records`]: the issuer-facing side.
//! - [`store`]: the redb layer the servers share; [`constants`]: every limit.
//! - [`audit`]: the auditor's reading of a card system's records (no keys).

pub mod agency;
pub mod audit;
pub mod card;
pub mod clearing;
pub mod collection;
pub mod constants;
pub mod crypto;
pub mod flows;
pub mod lus;
pub mod psam;
pub mod records;
pub mod store;
pub mod system;
pub mod transfer;
pub mod wire;
