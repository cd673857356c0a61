//! What the benchmark reads about the machine and itself: cores, CPU model,
//! load average, the process's and a thread's CPU time (from /proc), and
//! latency percentiles.

use std::time::Duration;

/// Cores this process may run on.
pub fn n_cores() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// One line naming the machine: CPU model, cores, memory, kernel.
pub fn machine_line() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: {model}, {} cores, {:.1} GiB, Linux {}, load average {}",
        n_cores(),
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim(),
        load_average()
    )
}

/// Clock ticks per second of /proc's CPU times. Linux reports them in
/// USER_HZ, which is 100 on every architecture the kernel exports to user
/// space; `getconf` confirms it where available.
fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a /proc `stat` file, in seconds.
fn cpu_secs_of(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3) here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec())
}

/// CPU seconds this process has used so far (every thread).
pub fn process_cpu_secs() -> f64 {
    cpu_secs_of("/proc/self/stat").unwrap_or(0.0)
}

/// CPU seconds the process `pid` has used so far (0 once it is gone).
pub fn pid_cpu_secs(pid: u32) -> f64 {
    cpu_secs_of(&format!("/proc/{pid}/stat")).unwrap_or(0.0)
}

/// CPU seconds the calling thread has used so far.
pub fn thread_cpu_secs() -> f64 {
    cpu_secs_of("/proc/thread-self/stat").unwrap_or(0.0)
}

/// Latencies of one phase, in microseconds.
#[derive(Debug, Default)]
pub struct Latencies {
    micros: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The mean, in milliseconds; `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        if self.micros.is_empty() {
            return None;
        }
        let sum: u64 = self.micros.iter().sum();
        Some(sum as f64 / self.micros.len() as f64 / 1000.0)
    }

    /// Sorts once; then [`Latencies::percentile`] is exact.
    pub fn finish(&mut self) {
        self.micros.sort_unstable();
    }

    /// The smallest latency at or above `p` (0..=1) of the samples (nearest
    /// rank), in milliseconds; `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.micros.is_empty() {
            return None;
        }
        let rank = (p * self.micros.len() as f64).ceil() as usize;
        let idx = rank.clamp(1, self.micros.len()) - 1;
        Some(self.micros[idx] as f64 / 1000.0)
    }
}

/// A percentile for printing: milliseconds with two decimals, or "-".
pub fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    // Paths in full: the bench target compiles this module without its tests.
    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut l = super::Latencies::default();
        for ms in 1..=1000u64 {
            l.record(std::time::Duration::from_millis(ms));
        }
        l.finish();
        assert_eq!(l.percentile(0.5), Some(500.0));
        assert_eq!(l.percentile(0.99), Some(990.0));
        assert_eq!(l.percentile(0.999), Some(999.0));
        assert_eq!(l.percentile(1.0), Some(1000.0));
        assert_eq!(super::Latencies::default().percentile(0.5), None);
    }

    #[test]
    fn the_mean_is_of_every_sample() {
        let mut l = super::Latencies::default();
        assert_eq!(l.mean_ms(), None);
        l.record(std::time::Duration::from_micros(1_000));
        l.record(std::time::Duration::from_micros(4_000));
        assert_eq!(l.mean_ms(), Some(2.5));
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        // /proc counts CPU in clock ticks (10 ms): on a busy machine a short
        // spin may not have earned one yet, so spin until it has (or a
        // generous deadline passes).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            if super::thread_cpu_secs() > 0.0 || std::time::Instant::now() >= deadline {
                break;
            }
        }
        assert!(x > 0);
        assert!(super::process_cpu_secs() > 0.0);
        assert!(super::thread_cpu_secs() > 0.0);
    }
}
