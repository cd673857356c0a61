//! Every limit of the auditor in one place, with the unit last in each
//! name; relations between them are asserted at compile time.

/// Records read from the store per call, and handed from the reading
/// thread to the replay at once. Small, so that the records one thread
/// wrote are still in cache when the other reads them: with 4096 the
/// replay's first read of each event's bytes was a cache miss (86% of the
/// decoder's own time) and an audit of the 10 M-event bench log cost 17 s
/// of CPU; with 256, 13 to 14 s (64 and 128 measured slower again, per-chunk
/// overhead).
pub const READ_CHUNK_RECORDS_DEFAULT: usize = 256;

/// Most transaction ids the reading thread reserves room for before it
/// reads (about 150 MB): growing the set while it reads rehashes every id
/// again at each doubling. Estimated from the log's length (two records a
/// transaction), never more than this, whatever a hostile head claims.
pub const TX_IDS_RESERVE_MAX: usize = 1 << 23;

/// Chunks the reader thread may read ahead of the checks (bounds memory).
pub const READ_AHEAD_CHUNKS: usize = 4;

/// Largest checkpoint file read (about 40 million coins).
pub const SNAPSHOT_BYTES_MAX: u64 = 4 << 30;

/// How many of the largest transactions a report lists.
pub const LARGEST_TRANSACTIONS_MAX: usize = 10;

/// Most points of the chart series; past it, neighbours are merged.
pub const SERIES_POINTS_MAX: usize = 1024;

/// How far a transaction's time may lie behind the latest time already in
/// the log. Log time is not strictly ordered: shards validate payments
/// concurrently, each stamping its batch with the clock reading it decided
/// with, and the batches then queue for one group commit, so a batch
/// validated a moment earlier can land after one validated later. The wait
/// in the commit queue is bounded by its size and the fsync latency (well
/// under a second in every measurement in ledger/README.md); a minute also
/// absorbs a small step of the issuer's clock. Anything further back is a
/// history reordered or re-dated, not a queue.
pub const LOG_TIME_SKEW_MAX_SECS: u64 = 60;

/// How far a transaction's time may lie ahead of the auditor's own clock.
/// The issuer stamps each batch with its clock and the auditor reads the
/// log later on another machine, so an honest log is never dated after the
/// auditor's "now" except by the two clocks' disagreement: NTP keeps
/// servers within a second, and five minutes also covers an auditor's
/// laptop that has drifted. Further ahead, the log claims times that have
/// not come yet, so the expiry and grace judged at them cannot be trusted.
pub const LOG_TIME_FUTURE_SKEW_MAX_SECS: u64 = 300;

/// Most calendar days the daily-volume chart keeps (the latest ones; older
/// days are dropped and the report says so): ten years.
pub const DAILY_VOLUME_DAYS_MAX: usize = 3660;

const _: () = assert!(READ_CHUNK_RECORDS_DEFAULT > 0 && READ_AHEAD_CHUNKS > 0);
const _: () = assert!(SERIES_POINTS_MAX >= 2 && LARGEST_TRANSACTIONS_MAX > 0);
const _: () = assert!(DAILY_VOLUME_DAYS_MAX > 0);

/// The reading thread decodes a chunk's events itself only while at least
/// this many chunks wait for the replay (the replay is then the slower
/// stage, and the reader would only wait); otherwise it leaves them to the
/// replay. Decoding is the work either side can do, so the two threads
/// balance whatever their speeds.
pub const DECODE_ON_READER_WHEN_QUEUED: usize = 2;
