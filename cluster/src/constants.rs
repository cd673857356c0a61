//! Every limit of the cluster protocol in one place, unit last in each
//! name; relations between them are asserted at compile time.

use ledger::constants::COINS_PER_TX_MAX;

/// The version byte every frame and handshake message starts with.
pub const CLUSTER_WIRE_VERSION: u8 = 3;
/// Longest frame body accepted, in bytes (a batch of events plus the frame
/// header and MAC). Checked before anything is allocated or decoded.
pub const FRAME_BYTES_MAX: usize = 1024 * 1024;
/// Longest handshake message (Hello, Welcome), in bytes: a stranger's
/// first bytes are bounded far below a frame.
pub const HANDSHAKE_BYTES_MAX: usize = 1024;
/// How long a connection may take to deliver its whole Hello, however it
/// trickles in: a stranger holds a connection slot this long at most.
pub const HANDSHAKE_MS_MAX: u64 = 2_000;
/// Most connections a sequencer holds open at once (each a thread); more
/// are closed at once. Validators hold one each.
pub const CONNECTIONS_MAX: usize = 2 * NODES_MAX;
/// Most events in one commit request.
pub const EVENTS_PER_COMMIT_MAX: usize = 64;
/// Most inputs one commit request may reserve.
pub const INPUTS_PER_COMMIT_MAX: usize = COINS_PER_TX_MAX;
/// Bytes of an HMAC-SHA256 tag.
pub const MAC_BYTES: usize = 32;
/// Bytes of each side's handshake nonce.
pub const NONCE_BYTES: usize = 32;
/// Shortest node key accepted, in bytes.
pub const NODE_KEY_BYTES_MIN: usize = 32;
/// Longest node name, in bytes.
pub const NODE_NAME_BYTES_MAX: usize = 64;
/// Most nodes a sequencer's key file may list.
pub const NODES_MAX: usize = 256;
/// How often a validator sends a heartbeat on an idle connection.
pub const HEARTBEAT_EVERY_MS: u64 = 500;
/// How long either side waits for a frame before it drops the connection
/// (a few heartbeats missed).
pub const PEER_SILENT_MS_MAX: u64 = 3_000;
/// How long a validator waits for the sequencer's answer to one commit
/// before it answers its client 503 (the commit may still land: the
/// client's retry gets the logged outcome).
pub const COMMIT_WAIT_MS_MAX: u64 = 5_000;
/// The Retry-After a validator cut off from the sequencer sends, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;
/// How far before the log's latest time a commit may be dated: the
/// auditor's `LOG_TIME_SKEW_MAX_SECS` (the binary asserts they agree), so
/// validators' clocks that drift apart are refused here, not found later
/// by the audit.
pub const BATCH_BEHIND_LOG_SECS_MAX: u64 = 60;
/// How far after the sequencer's own clock a commit may be dated, within
/// the auditor's `LOG_TIME_FUTURE_SKEW_MAX_SECS`.
pub const BATCH_AHEAD_OF_CLOCK_SECS_MAX: u64 = 60;
/// Most payees' keys a validator node keeps (each checked by the issuer
/// at every payment, so a stale one costs a second round, never a wrong
/// answer); a full cache is emptied.
pub const PAYEE_KEYS_CACHED_MAX: usize = 65_536;
/// How often a standby tries to take the lease.
pub const STANDBY_POLL_MS: u64 = 200;

const _: () = assert!(HEARTBEAT_EVERY_MS * 3 <= PEER_SILENT_MS_MAX);
const _: () = assert!(HANDSHAKE_MS_MAX <= PEER_SILENT_MS_MAX);
const _: () = assert!(MAC_BYTES + 16 < FRAME_BYTES_MAX);
const _: () = assert!(NODE_KEY_BYTES_MIN >= 32);
const _: () = assert!(HANDSHAKE_BYTES_MAX >= 1 + NODE_NAME_BYTES_MAX + 2 * 32 + 32 + 16);
// One event of the longest kind fits a frame with room for the rest.
const _: () = assert!(ledger::constants::EVENT_BYTES_MAX + 64 * 1024 <= FRAME_BYTES_MAX);
