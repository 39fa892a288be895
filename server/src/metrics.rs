//! Prometheus text-format metrics, kept by hand with atomics: a handful of
//! counters and two fixed-bucket histograms do not justify a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Upper bounds of the batch-size histogram (events per group commit).
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 10240.0];
/// Upper bounds of the commit-latency histogram, seconds.
const LATENCY_BOUNDS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A cumulative histogram with fixed bounds.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in millionths of the unit, so it stays an integer atomic.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(), sum_micro: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_micro.fetch_add((v * 1e6).max(0.0) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut acc = 0u64;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            acc += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {acc}");
        }
        let n = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micro.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// Everything `/metrics` reports.
#[derive(Debug)]
pub struct Metrics {
    appends: AtomicU64,
    events: AtomicU64,
    commits: AtomicU64,
    denials: AtomicU64,
    batch: Histogram,
    commit_latency: Histogram,
    /// (status, count) of error responses; few distinct statuses, so a small vec.
    errors: Mutex<Vec<(u16, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            appends: AtomicU64::new(0),
            events: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            denials: AtomicU64::new(0),
            batch: Histogram::new(BATCH_BOUNDS),
            commit_latency: Histogram::new(LATENCY_BOUNDS),
            errors: Mutex::new(vec![]),
        }
    }
}

impl Metrics {
    /// One group commit of `requests` append requests holding `events` events, taking `secs`.
    pub fn group_commit(&self, requests: u64, events: u64, secs: f64) {
        self.appends.fetch_add(requests, Relaxed);
        self.events.fetch_add(events, Relaxed);
        self.commits.fetch_add(1, Relaxed);
        self.batch.observe(events as f64);
        self.commit_latency.observe(secs);
    }

    /// A 401 or 403.
    pub fn denial(&self) {
        self.denials.fetch_add(1, Relaxed);
    }

    /// An error response with `status`.
    pub fn error(&self, status: u16) {
        let Ok(mut e) = self.errors.lock() else { return };
        match e.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => e.push((status, 1)),
        }
    }

    /// Events appended so far (acknowledged).
    pub fn events_appended(&self) -> u64 {
        self.events.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter("custos_appends_total", "Append requests committed.", self.appends.load(Relaxed));
        counter("custos_events_appended_total", "Events appended and committed.", self.events.load(Relaxed));
        counter("custos_group_commits_total", "Group-commit transactions.", self.commits.load(Relaxed));
        counter("custos_access_denied_total", "Requests refused with 401 or 403.", self.denials.load(Relaxed));
        self.batch.render(&mut s, "custos_batch_events", "Events per group commit.");
        self.commit_latency.render(&mut s, "custos_commit_seconds", "Duration of one group-commit transaction.");
        let _ = writeln!(s, "# HELP custos_http_errors_total Error responses by status.\n# TYPE custos_http_errors_total counter");
        let mut errs = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        errs.sort_unstable();
        for (status, n) in errs {
            let _ = writeln!(s, "custos_http_errors_total{{status=\"{status}\"}} {n}");
        }
        s
    }
}

/// The alert gauges of a `custos alerts` evaluation: `custos_alert_firing{alert}` (0/1)
/// and `custos_alert_value{alert}` (the observed value, in the alert's unit; absent when
/// there was nothing to observe, e.g. no runs in the window).
pub fn render_alerts(r: &custos_platform::AlertReport) -> String {
    let mut s = String::with_capacity(1024);
    let _ = writeln!(s, "# HELP custos_alert_firing Whether the alert fires (custos alerts, window 7d).\n# TYPE custos_alert_firing gauge");
    for a in &r.alerts {
        let _ = writeln!(s, "custos_alert_firing{{alert=\"{}\"}} {}", a.name, u8::from(a.firing));
    }
    let _ = writeln!(s, "# HELP custos_alert_value Observed value of the alert, in its unit.\n# TYPE custos_alert_value gauge");
    for a in &r.alerts {
        if let Some(v) = a.value {
            let _ = writeln!(s, "custos_alert_value{{alert=\"{}\"}} {v}", a.name);
        }
    }
    let _ = writeln!(s, "# HELP custos_alert_threshold Threshold of the alert, in its unit.\n# TYPE custos_alert_threshold gauge");
    for a in &r.alerts {
        let _ = writeln!(s, "custos_alert_threshold{{alert=\"{}\"}} {}", a.name, a.threshold);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = Metrics::default();
        m.group_commit(2, 3, 0.0015);
        m.group_commit(1, 300, 0.02);
        m.error(422);
        m.error(422);
        m.error(401);
        m.denial();
        let t = m.render();
        assert!(t.contains("custos_appends_total 3\n"), "{t}");
        assert!(t.contains("custos_events_appended_total 303\n"));
        assert!(t.contains("custos_batch_events_bucket{le=\"4\"} 1\n"));
        assert!(t.contains("custos_batch_events_bucket{le=\"512\"} 2\n"));
        assert!(t.contains("custos_batch_events_bucket{le=\"+Inf\"} 2\n"));
        assert!(t.contains("custos_commit_seconds_bucket{le=\"0.002\"} 1\n"));
        assert!(t.contains("custos_http_errors_total{status=\"401\"} 1\ncustos_http_errors_total{status=\"422\"} 2\n"));
        assert!(t.contains("custos_access_denied_total 1\n"));
    }

    #[test]
    fn alert_gauges_name_every_alert_and_skip_absent_values() {
        use custos_domain::alerts::{evaluate, Figures, Thresholds};
        let f = Figures { at: 100, ..Default::default() };
        let alerts = evaluate(&f, &Thresholds::default());
        let r = custos_platform::AlertReport { at: "t".into(), since: "s".into(), tenant: None, firing: 1, alerts };
        let t = render_alerts(&r);
        assert!(t.contains("custos_alert_firing{alert=\"retention_overdue\"} 1\n"), "{t}");
        assert!(t.contains("custos_alert_firing{alert=\"failure_rate\"} 0\n"), "{t}");
        assert!(!t.contains("custos_alert_value{alert=\"retention_overdue\"}"), "never ran: no value, {t}");
        assert!(t.contains("custos_alert_value{alert=\"hold_review_overdue\"} 0\n"), "{t}");
        assert!(t.contains("custos_alert_threshold{alert=\"retention_overdue\"} 26\n"), "{t}");
    }
}
