//! Deterministic sample workloads: the quickstart tour and the benchmarks ingest these.

use custos_domain::{format_ts, Timestamp};
use serde_json::json;

/// Tenants of the quickstart workload.
pub const SAMPLE_TENANTS: [&str; 3] = ["acme-corp", "globex", "initech"];

/// A small deterministic PRNG (xorshift64*) so samples are the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A realistic multi-tenant workload ending at `now`: for each tenant and day, a
/// few runs with their costs, queue traffic, an approval request and the odd DLQ entry.
pub fn quickstart_workload(now: Timestamp, days: i64) -> Vec<String> {
    let mut rng = Rng::new(42);
    let mut out = vec![];
    let providers = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet"), ("openai", "gpt-4o-mini")];
    for d in (0..days).rev() {
        for (ti, tenant) in SAMPLE_TENANTS.iter().enumerate() {
            let runs = 2 + rng.below(3);
            for r in 0..runs {
                let at = now - d * 86_400_000_000 - (r as i64 + 1) * 3_600_000_000 - ti as i64 * 60_000_000;
                let ts = format_ts(at);
                let run_id = format!("run-{tenant}-{d}-{r}");
                let (provider, model) = providers[rng.below(3) as usize];
                let tin = 500 + rng.below(4000);
                let tout = 100 + rng.below(1500);
                let usd = (tin * 3 + tout * 12) as i64; // micro-USD, integer arithmetic only
                let failed = rng.below(10) == 0;
                out.push(
                    json!({"tenant": tenant, "category": "queue", "kind": "job_enqueued", "occurred_at": ts,
                    "data": {"job_id": format!("job-{run_id}"), "workflow": "research-brief", "priority": rng.below(3)}})
                    .to_string(),
                );
                out.push(
                    json!({"tenant": tenant, "category": "runs", "kind": "run_completed", "occurred_at": ts,
                    "data": {"run_id": run_id, "workflow": "research-brief", "status": if failed {"failed"} else {"ok"},
                    "provider": provider, "model": model, "tokens_in": tin, "tokens_out": tout,
                    "duration_ms": 800 + rng.below(9000), "citations": rng.below(6)}})
                    .to_string(),
                );
                out.push(json!({"tenant": tenant, "category": "costs", "kind": "cost_recorded", "occurred_at": ts,
                    "data": {"run_id": run_id, "provider": provider, "model": model, "tokens_in": tin, "tokens_out": tout, "usd_micros": usd}}).to_string());
                if failed {
                    out.push(
                        json!({"tenant": tenant, "category": "dlq", "kind": "job_dead_lettered", "occurred_at": ts,
                        "data": {"job_id": format!("job-{run_id}"), "reason": "provider_timeout"}})
                        .to_string(),
                    );
                }
            }
            if d % 3 == 0 {
                let at = now - d * 86_400_000_000 - 30 * 60_000_000;
                out.push(
                    json!({"tenant": tenant, "category": "approvals", "kind": "approval_requested", "occurred_at": format_ts(at),
                    "data": {"dag_run_id": format!("dag-{tenant}-{d}"), "prompt": "Publish the weekly research brief?"}})
                    .to_string(),
                );
            }
        }
    }
    out
}

/// One benchmark event: tenant `t{i % tenants}`, data padded to about `payload` bytes.
pub fn bench_line(i: u64, tenants: u64, payload: usize, now: Timestamp) -> String {
    let tenant = format!("t{:03}", i % tenants.max(1));
    let pad_len = payload.saturating_sub(160);
    let pad: String = std::iter::repeat_n('x', pad_len).collect();
    json!({"tenant": tenant, "category": "queue", "kind": "job_enqueued", "occurred_at": format_ts(now - 1_000_000),
        "data": {"job_id": format!("job-{i}"), "workflow": "bench", "attempt": i % 7, "note": pad}})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_valid_and_deterministic() {
        let now = custos_domain::now_micros();
        let a = quickstart_workload(now, 10);
        assert_eq!(a, quickstart_workload(now, 10));
        assert!(a.len() > 60);
        for l in &a {
            assert!(custos_domain::parse_event_line(l, now).is_ok(), "{l}");
        }
        let b = bench_line(5, 100, 512, now);
        assert!((480..560).contains(&b.len()), "{}", b.len());
        assert!(custos_domain::parse_event_line(&b, now).is_ok());
    }
}
