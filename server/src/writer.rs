//! The one writer: a thread that owns the write-side [`Platform`] and turns every
//! append request waiting in its queue into **one** transaction (group commit).
//!
//! Requests arrive already parsed and validated, so a bad request never reaches
//! the log. Each request still gets its own receipt — the seqs of its events and
//! the global chain head *at its last event*, so `verify --expect last_seq:global_head`
//! works exactly as for a CLI receipt — and is answered only after the commit
//! returned, i.e. once its events are durable. If one request fails inside the
//! transaction (e.g. its tenant was deleted meanwhile), the whole transaction is
//! rolled back and every request of the group is retried on its own, so one
//! request's failure never takes another's events with it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use custos_eventlog::{LogError, Prepared, Receipt};
use custos_platform::Platform;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// A write operation other than an append (checkpoint, and later capability
/// commands), run on the writer between group commits in its own transaction.
pub type WriteOp = Box<dyn FnOnce(&mut Platform) + Send>;

/// One append request: its events, in order, and where to send its receipt.
pub struct AppendReq {
    /// Parsed, validated events with their actor, already committed to (canonical body,
    /// salt, commitment: [`custos_eventlog::prepare`]) by the request's own task, so the
    /// single writer only seals, chains and inserts.
    pub events: Vec<Prepared>,
    /// Answered after the commit.
    pub reply: oneshot::Sender<Result<Receipt, LogError>>,
}

/// What the writer's queue carries.
pub enum Msg {
    /// Events to append.
    Append(AppendReq),
    /// Another write.
    Op(WriteOp),
    /// Finish everything queued before this, then stop.
    Stop,
}

/// Starts the writer thread. `max_batch` bounds the events gathered into one
/// transaction (a single larger request is still committed whole).
pub fn spawn(mut p: Platform, mut rx: mpsc::Receiver<Msg>, max_batch: usize, metrics: Arc<Metrics>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("custos-writer".into()).spawn(move || {
        // Lives as long as this thread: stopped and joined when the writer returns.
        let _checkpoints = Checkpoints::start(&mut p);
        let mut appends: Vec<AppendReq> = vec![];
        let mut ops: Vec<WriteOp> = vec![];
        loop {
            let Some(first) = rx.blocking_recv() else { return };
            let mut stop = false;
            let mut n = 0usize;
            let mut take = |m: Msg, n: &mut usize, stop: &mut bool| match m {
                Msg::Append(r) => {
                    *n += r.events.len();
                    appends.push(r);
                }
                Msg::Op(op) => ops.push(op),
                Msg::Stop => *stop = true,
            };
            take(first, &mut n, &mut stop);
            // Gather whatever else is already waiting: this is the group of the group commit.
            while n < max_batch && !stop {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut n, &mut stop),
                    Err(_) => break,
                }
            }
            if !appends.is_empty() {
                commit_group(&mut p, std::mem::take(&mut appends), &metrics);
            }
            for op in ops.drain(..) {
                op(&mut p);
            }
            if stop {
                // Requests that slipped in beside Stop are still committed and answered.
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Append(r) => commit_group(&mut p, vec![r], &metrics),
                        Msg::Op(op) => op(&mut p),
                        Msg::Stop => {}
                    }
                }
                return;
            }
        }
    })
}

/// The background checkpointer of the writer's store (SQLite): a commit then waits for
/// its own WAL fsync only, never for copying the WAL into the database, which otherwise
/// lands on whichever commit crosses SQLite's 1000-page mark and shows in tail latency.
struct Checkpoints {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// How long the checkpointer sleeps once the WAL is fully copied.
    const IDLE: Duration = Duration::from_millis(50);

    fn start(p: &mut Platform) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cp = match p.log_mut().detach_checkpoints() {
            Ok(cp) => cp,
            Err(e) => {
                // Not fatal: SQLite keeps checkpointing inside commits as before.
                tracing::warn!("background WAL checkpoints unavailable ({e}); commits checkpoint inline");
                None
            }
        };
        let thread = cp.and_then(|mut cp| {
            let stop = stop.clone();
            let spawned = std::thread::Builder::new().name("custos-checkpoint".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match cp.step() {
                        Ok(true) => std::thread::park_timeout(Self::IDLE),
                        // Behind the writer: go again after a short breath.
                        Ok(false) => std::thread::sleep(Duration::from_millis(2)),
                        Err(e) => {
                            tracing::warn!("WAL checkpoint failed: {e}");
                            std::thread::park_timeout(Duration::from_secs(1));
                        }
                    }
                }
            });
            spawned.map_err(|e| tracing::warn!("cannot start the checkpoint thread ({e})")).ok()
        });
        Self { stop, thread }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn commit_group(p: &mut Platform, reqs: Vec<AppendReq>, metrics: &Metrics) {
    let t0 = Instant::now();
    let events: u64 = reqs.iter().map(|r| r.events.len() as u64).sum();
    match try_group(p, &reqs) {
        Ok(receipts) => {
            metrics.group_commit(reqs.len() as u64, events, t0.elapsed().as_secs_f64());
            for (r, rc) in reqs.into_iter().zip(receipts) {
                let _ = r.reply.send(Ok(rc));
            }
        }
        Err(e) if reqs.len() == 1 => {
            if let Some(r) = reqs.into_iter().next() {
                let _ = r.reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::info!("group of {} requests rolled back ({e}); retrying each on its own", reqs.len());
            for r in reqs {
                let t0 = Instant::now();
                let n = r.events.len() as u64;
                let res = try_group(p, std::slice::from_ref(&r)).map(|mut v| v.remove(0));
                if res.is_ok() {
                    metrics.group_commit(1, n, t0.elapsed().as_secs_f64());
                }
                let _ = r.reply.send(res);
            }
        }
    }
}

/// Appends every request in one transaction; on any error nothing is committed.
fn try_group(p: &mut Platform, reqs: &[AppendReq]) -> Result<Vec<Receipt>, LogError> {
    let mut a = p.log_mut().appender()?;
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        let seqs = a.push_prepared(&r.events)?;
        let h = a.head();
        let tenants: HashSet<&str> = r.events.iter().map(|e| e.tenant().as_str()).collect();
        out.push(Receipt {
            appended: seqs.len() as u64,
            first_seq: seqs.first().copied().unwrap_or(0),
            last_seq: h.size,
            tenants: tenants.len() as u64,
            global_head: hex::encode(h.chain),
        });
    }
    a.commit()?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use custos_domain::{Category, NewEvent, TenantId};
    use custos_eventlog::{Pending, VerifyOptions};

    fn pending(tenant: &str, occurred_at: Option<i64>) -> Pending {
        let event = NewEvent {
            tenant: TenantId::parse(tenant).unwrap(),
            category: Category::Queue,
            kind: "job".into(),
            occurred_at,
            label: None,
            data: serde_json::json!({"x": 1}),
        };
        Pending { event, actor: "t".into() }
    }

    /// Queues `reqs` before the writer starts, so they are all in one group.
    fn run_group(reqs: Vec<Vec<Pending>>) -> (tempfile::TempDir, Vec<Result<Receipt, LogError>>, Arc<Metrics>) {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db").display().to_string();
        let (p, _) = Platform::init(&store, &dir.path().join("k"), "admin").unwrap();
        let (tx, rx) = mpsc::channel(64);
        let mut replies = vec![];
        for events in reqs {
            let (reply, r) = oneshot::channel();
            let events = custos_eventlog::prepare(events).unwrap();
            tx.try_send(Msg::Append(AppendReq { events, reply })).ok().unwrap();
            replies.push(r);
        }
        tx.try_send(Msg::Stop).ok().unwrap();
        let metrics = Arc::new(Metrics::default());
        spawn(p, rx, 10_000, metrics.clone()).unwrap().join().unwrap();
        let out = replies.into_iter().map(|r| r.blocking_recv().unwrap()).collect();
        (dir, out, metrics)
    }

    #[test]
    fn a_group_is_one_transaction_with_a_receipt_per_request() {
        let (dir, out, metrics) =
            run_group(vec![vec![pending("a", None); 3], vec![pending("b", None)], vec![], vec![pending("a", None); 2]]);
        let r: Vec<Receipt> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(r.iter().map(|r| r.appended).collect::<Vec<_>>(), [3, 1, 0, 2]);
        assert_eq!(r[0].last_seq + 1, r[1].first_seq);
        assert_eq!(r[3].first_seq, r[1].last_seq + 1);
        assert_eq!((r[2].first_seq, r[2].last_seq), (0, r[1].last_seq));
        assert!(metrics.render().contains("custos_group_commits_total 1\n"));
        // Each receipt is a checkpoint of the chain the log still proves.
        let p = Platform::open(&dir.path().join("s.db").display().to_string(), &dir.path().join("k")).unwrap();
        let expect = r.iter().map(|r| custos_platform::parse_expect(&format!("{}:{}", r.last_seq, r.global_head)).unwrap()).collect();
        let rep = p.verify(&VerifyOptions { with_keys: true, expect }, &mut |_| {}).unwrap();
        assert!(rep.ok, "{rep:?}");
        assert_eq!(rep.events, r[3].last_seq);
    }

    #[test]
    fn one_failing_request_does_not_sink_the_others() {
        // A time far in the future passes no parser here, so the push itself fails mid-group.
        let future = custos_domain::now_micros() + 86_400_000_000 * 365;
        let (dir, out, _) =
            run_group(vec![vec![pending("a", None); 2], vec![pending("a", None), pending("b", Some(future))], vec![pending("c", None)]]);
        assert!(out[0].is_ok() && out[2].is_ok());
        assert!(matches!(out[1], Err(LogError::Conflict(_))), "{:?}", out[1]);
        let (a, c) = (out[0].as_ref().unwrap(), out[2].as_ref().unwrap());
        assert_eq!(c.first_seq, a.last_seq + 1, "the failed request left no gap and no event");
        let p = Platform::open(&dir.path().join("s.db").display().to_string(), &dir.path().join("k")).unwrap();
        assert_eq!(p.log().head().unwrap().size, c.last_seq);
    }
}
