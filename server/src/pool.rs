//! A small pool of read-side [`Platform`]s. SQLite in WAL mode lets readers on
//! other connections run beside the one writer, so authentication, listing and
//! verification never wait for a group commit.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custos_platform::{Platform, PlatformError};

/// Pooled connections older than this are reopened, so key changes made by the
/// CLI beside a running server (a new KEK, a deleted tenant's cached DEKs) are
/// picked up without a restart.
const MAX_AGE: Duration = Duration::from_secs(30);

/// Open read-side platforms waiting for work.
#[derive(Debug)]
pub struct Pool {
    store: String,
    root_key: PathBuf,
    defaults: custos_platform::Defaults,
    idle: Mutex<Vec<(Platform, Instant)>>,
    max_idle: usize,
}

impl Pool {
    /// A pool for `store` that keeps at most `max_idle` connections open when idle.
    pub fn new(store: &str, root_key: PathBuf, defaults: custos_platform::Defaults, max_idle: usize) -> Self {
        Self { store: store.to_string(), root_key, defaults, idle: Mutex::new(vec![]), max_idle }
    }

    /// Runs `f` on a pooled platform (opening one if none is idle). Blocking: call
    /// from `spawn_blocking`.
    pub fn with<T>(&self, f: impl FnOnce(&mut Platform) -> T) -> Result<T, PlatformError> {
        let got = self.idle.lock().ok().and_then(|mut v| v.pop());
        let (mut p, born) = match got {
            Some((p, born)) if born.elapsed() < MAX_AGE => (p, born),
            _ => (Platform::open(&self.store, &self.root_key)?.with_defaults(self.defaults.clone()), Instant::now()),
        };
        let r = f(&mut p);
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < self.max_idle {
                v.push((p, born));
            }
        }
        Ok(r)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        if idle.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        // The last reference usually goes away on an async worker at shutdown, where the
        // PostgreSQL backend's synchronous client cannot close (it blocks on its own
        // runtime). Close the connections on a plain thread and wait for it.
        let _ = std::thread::spawn(move || drop(idle)).join();
    }
}
