//! The issuer's stage timings (`actors::TimingsSnapshot`) as Prometheus
//! histograms, for the gateway's `/metrics` (`vc_issuer_stage_seconds`).

use std::fmt::Write as _;

/// Appends one histogram family with a `stage` label per [`actors::Stage`],
/// in seconds; the buckets are the timings' own (four per octave), so
/// only buckets up to the largest observation are written, then `+Inf`.
pub fn stage_histograms(
    out: &mut String,
    name: &str,
    help: &str,
    timings: &actors::TimingsSnapshot,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for stage in actors::Stage::ALL {
        let h = timings.stage(stage);
        let label = stage.name();
        let last_used = h.buckets.iter().rposition(|n| *n > 0).unwrap_or(0);
        let mut cumulative = 0;
        for (i, n) in h.buckets.iter().enumerate().take(actors::BUCKETS_N) {
            cumulative += n;
            if i > last_used {
                break;
            }
            let le = actors::bucket_bound_micros(i) / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{label}\",le=\"{le:.9}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{stage=\"{label}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{stage=\"{label}\"}} {}",
            h.sum_micros as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{stage=\"{label}\"}} {}", h.count);
    }
}
