//! Benchmark tooling for Memora: latency statistics shared by the load
//! generator and the data/bench binaries.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency statistics of one endpoint, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyStats {
    /// Requests measured.
    pub count: u64,
    /// Requests that failed (transport error or non-2xx, 429 excluded).
    pub errors: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// A latency recorder (microsecond resolution, up to 60 s).
#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
    errors: u64,
    rate_limited: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_hist())),
            errors: 0,
            rate_limited: 0,
        }
    }
}

fn unreachable_hist() -> Histogram<u64> {
    // Histogram::new(3) only fails for sigfig > 5; keep a last-resort value.
    Histogram::new(2).unwrap_or_else(|_| panic!("histogram construction"))
}

impl Recorder {
    /// Records one latency in microseconds.
    pub fn record_us(&mut self, us: u64) {
        let _ = self.hist.record(us.clamp(1, 60_000_000));
    }
    /// Counts an error.
    pub fn error(&mut self) {
        self.errors += 1;
    }
    /// Counts a 429.
    pub fn limited(&mut self) {
        self.rate_limited += 1;
    }
    /// Merges another recorder.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.hist.add(&other.hist);
        self.errors += other.errors;
        self.rate_limited += other.rate_limited;
    }
    /// Summary in milliseconds.
    pub fn stats(&self) -> LatencyStats {
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1000.0;
        LatencyStats {
            count: self.hist.len(),
            errors: self.errors,
            rate_limited: self.rate_limited,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: self.hist.max() as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = Recorder::default();
        for us in 1..=1000u64 {
            r.record_us(us * 1000);
        }
        r.error();
        let s = r.stats();
        assert_eq!(s.count, 1000);
        assert_eq!(s.errors, 1);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 2.0, "{s:?}");
        let mut other = Recorder::default();
        other.record_us(5);
        r.merge(&other);
        assert_eq!(r.stats().count, 1001);
    }
}
