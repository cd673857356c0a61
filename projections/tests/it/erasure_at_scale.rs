//! Erasure at scale, in the debug test profile: 100,000 coins spent across
//! three epochs and erased after their grace periods; the store then holds
//! only the unspent ones, and the file shrinks once compacted. The full
//! million runs in release as `cargo run --release -p vc-projections
//! --example million_coins` (figures in README.md).

use crate::util;

#[test]
fn erasing_spent_coins_leaves_only_the_unspent_ones_and_shrinks_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = util::erasure_scenario(dir.path(), 100_000, 20_000, 4, 10);
    eprintln!("{f:#?}");
    assert_eq!(f.n_spent, 100_000);
    assert!(f.n_unspent >= 20_000);
    assert_eq!(f.boot_n_coins, f.n_unspent);
    assert!(
        f.bytes_after_compaction < f.bytes_before / 2,
        "compacted file {} bytes, before erasure {} bytes",
        f.bytes_after_compaction,
        f.bytes_before
    );
}
