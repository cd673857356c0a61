//! The million-coin figures of README.md: issues 1,000,000 coins that get
//! spent across three epochs plus 1,000,000 in a fourth that stay unspent,
//! erases the spent ones after their grace periods, compacts the file, then
//! boots 8 shards from it. Run in release:
//! `cargo run --release -p vc-projections --example million_coins [n_spent] [n_unspent]`.

#[path = "../tests/it/util/mod.rs"]
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: u64| {
        args.next()
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let n_spent = arg(1_000_000);
    let n_unspent = arg(1_000_000);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: no temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    let f = util::erasure_scenario(dir.path(), n_spent, n_unspent, 4, 10);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("coins issued            {}", f.n_issued);
    println!("coins spent then erased {}", f.n_spent);
    println!("coins unspent           {}", f.n_unspent);
    println!("log records             {}", f.n_records);
    println!("catch-up (apply all)    {:.2} s", f.catch_up_secs);
    println!("erasure of 3 epochs     {:.2} s", f.erase_secs);
    println!(
        "file before erasure     {:.1} MiB ({} bytes)",
        mib(f.bytes_before),
        f.bytes_before
    );
    println!(
        "file after erasure      {:.1} MiB ({} bytes)",
        mib(f.bytes_after_erasure),
        f.bytes_after_erasure
    );
    println!(
        "file after compaction   {:.1} MiB ({} bytes)",
        mib(f.bytes_after_compaction),
        f.bytes_after_compaction
    );
    println!(
        "boot 8 shards           {:.3} s for {} unspent coins (open + one scan)",
        f.boot_secs, f.boot_n_coins
    );
    for (pass, per_commit) in [(0, 1), (1, 32)] {
        let secs = f.tail_secs[pass];
        println!(
            "tail: {} payments, {per_commit:>2} per commit   {secs:.2} s, {:.0} payments/s",
            f.n_tail_commits,
            f.n_tail_commits as f64 / secs.max(1e-9)
        );
    }
    ExitCode::SUCCESS
}
