//! What a server counts, rendered in the Prometheus text format at
//! `GET /metrics`: requests by route and status, a latency histogram by
//! route, requests refused for overload, requests in flight; and whatever
//! the server's owner adds through a [`MetricsSource`] (the issuer's stocks
//! of money and coins, the merchant's orders and purse).
//!
//! Routes are the matched patterns (`/order/{id}/pay`), never raw paths, so
//! the number of series is bounded by the number of routes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Something that appends its own metrics to the exposition.
pub trait MetricsSource: Send + Sync {
    /// Appends complete metric families (`# HELP`, `# TYPE`, samples).
    fn render(&self, out: &mut String);
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_SECS.len()],
    count: u64,
    sum_secs: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, bound) in LATENCY_BUCKETS_SECS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum_secs += secs;
    }
}

/// The counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Answers per second, for the issuer's dashboard.
    timeline: Mutex<Timeline>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    overloaded: AtomicU64,
    in_flight: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a counter lock leaves counts, not broken state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Escapes a label value (backslash, quote, newline).
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds of answers a [`Timeline`] keeps.
pub const TIMELINE_SECS: u64 = 600;

/// Answers of one second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondCounts {
    /// Seconds since the Unix epoch.
    pub second: u64,
    pub requests: u64,
    /// Payments validated (`/v1/validate` answered 2xx).
    pub validations: u64,
    /// Answers 4xx or 5xx.
    pub refusals: u64,
}

/// Counts per second over the last [`TIMELINE_SECS`].
#[derive(Debug, Default)]
pub struct Timeline {
    seconds: std::collections::VecDeque<SecondCounts>,
}

impl Timeline {
    fn count(&mut self, now_secs: u64, route: &str, status: u16) {
        if self
            .seconds
            .back()
            .is_none_or(|last| last.second < now_secs)
        {
            self.seconds.push_back(SecondCounts {
                second: now_secs,
                ..SecondCounts::default()
            });
        }
        while self
            .seconds
            .front()
            .is_some_and(|first| first.second + TIMELINE_SECS <= now_secs)
        {
            self.seconds.pop_front();
        }
        if let Some(last) = self.seconds.back_mut() {
            last.requests += 1;
            if status >= 400 {
                last.refusals += 1;
            } else if route == "/v1/validate" {
                last.validations += 1;
            }
        }
    }

    /// The seconds with answers, oldest first.
    pub fn seconds(&self) -> Vec<SecondCounts> {
        self.seconds.iter().copied().collect()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Metrics {
    /// The answers of the last [`TIMELINE_SECS`], per second.
    pub fn timeline(&self) -> Vec<SecondCounts> {
        lock(&self.timeline).seconds()
    }

    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_insert(0) += 1;
        lock(&self.timeline).count(now_secs(), route, status);
        lock(&self.latency)
            .entry(route.to_owned())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn count_overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes a place among the requests in flight, if fewer than `max` are.
    pub fn try_enter(&self, max: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Requests answered so far on `route` with `status`.
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        lock(&self.requests)
            .get(&(route.to_owned(), status))
            .copied()
            .unwrap_or(0)
    }

    /// The exposition of this server's counters, `prefix` naming the server.
    pub fn render(&self, prefix: &str, out: &mut String) {
        let requests = lock(&self.requests).clone();
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_requests_total Requests answered, by route pattern and status."
        );
        let _ = writeln!(out, "# TYPE {prefix}_http_requests_total counter");
        for ((route, status), n) in &requests {
            let _ = writeln!(
                out,
                "{prefix}_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape_label(route)
            );
        }
        let latency = lock(&self.latency).clone();
        let _ = writeln!(
            out,
            "# HELP {prefix}_http_request_duration_seconds Time from request head to response, by route pattern."
        );
        let _ = writeln!(
            out,
            "# TYPE {prefix}_http_request_duration_seconds histogram"
        );
        for (route, h) in &latency {
            let route = escape_label(route);
            for (bound, n) in LATENCY_BUCKETS_SECS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "{prefix}_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "{prefix}_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "{prefix}_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_secs
            );
            let _ = writeln!(
                out,
                "{prefix}_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        gauge(
            out,
            &format!("{prefix}_http_requests_in_flight"),
            "Requests being handled now.",
            self.in_flight() as f64,
        );
        counter(
            out,
            &format!("{prefix}_http_requests_overloaded_total"),
            "Requests refused with 503 because too many were in flight.",
            self.overloaded.load(Ordering::Relaxed) as f64,
        );
    }
}

/// Appends one unlabelled gauge.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Appends one unlabelled counter.
pub fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_counts_per_second_and_forgets_old_seconds() {
        let mut t = Timeline::default();
        t.count(100, "/v1/validate", 200);
        t.count(100, "/v1/validate", 422);
        t.count(101, "/", 200);
        t.count(100 + TIMELINE_SECS, "/", 503);
        let seconds = t.seconds();
        assert_eq!(seconds.len(), 2, "{seconds:?}");
        assert_eq!(seconds[0].second, 101);
        assert_eq!(seconds[1].refusals, 1);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_every_observation() {
        let m = Metrics::default();
        m.observe("/v1/validate", 200, Duration::from_millis(3));
        m.observe("/v1/validate", 200, Duration::from_millis(300));
        m.observe("/v1/validate", 422, Duration::from_secs(60));
        let mut out = String::new();
        m.render("vc_test", &mut out);
        assert!(
            out.contains("vc_test_http_requests_total{route=\"/v1/validate\",status=\"200\"} 2")
        );
        assert!(out.contains(
            "vc_test_http_request_duration_seconds_bucket{route=\"/v1/validate\",le=\"0.005\"} 1"
        ));
        assert!(out.contains(
            "vc_test_http_request_duration_seconds_bucket{route=\"/v1/validate\",le=\"0.5\"} 2"
        ));
        assert!(out.contains(
            "vc_test_http_request_duration_seconds_bucket{route=\"/v1/validate\",le=\"30\"} 2"
        ));
        assert!(out.contains(
            "vc_test_http_request_duration_seconds_bucket{route=\"/v1/validate\",le=\"+Inf\"} 3"
        ));
    }

    #[test]
    fn in_flight_places_are_bounded() {
        let m = Metrics::default();
        assert!(m.try_enter(2));
        assert!(m.try_enter(2));
        assert!(!m.try_enter(2));
        m.leave();
        assert!(m.try_enter(2));
        assert_eq!(m.in_flight(), 2);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
