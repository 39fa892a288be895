use custos_domain::{Category, Timestamp};
use custos_eventlog::{Event, Query, RawEvent, VerifyOptions, VerifyReport};

use custos_domain::{Role, SYSTEM_TENANT};

use crate::{Platform, PlatformError, Principal};

/// Filters of `events list`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only this kind.
    pub kind: Option<String>,
    /// occurred_at ≥.
    pub since: Option<Timestamp>,
    /// occurred_at <.
    pub until: Option<Timestamp>,
    /// At most this many.
    pub limit: Option<u64>,
}

impl Platform {
    /// Streams decrypted events to `out` (stop by returning false), each with its data
    /// kept as canonical JSON text: readers here print events, they do not look inside.
    pub fn events(&self, f: &EventFilter, out: &mut dyn FnMut(RawEvent) -> Result<bool, PlatformError>) -> Result<(), PlatformError> {
        if let Some(t) = &f.tenant {
            custos_domain::TenantId::parse_any(t)?;
        }
        let q = Query {
            tenant: f.tenant.clone(),
            category: f.category,
            kind: f.kind.clone(),
            since: f.since,
            until: f.until,
            limit: f.limit,
            ..Default::default()
        };
        let mut err = None;
        self.log.read_raw(&q, &mut |e| match out(e) {
            Ok(more) => Ok(more),
            Err(x) => {
                err = Some(x);
                Ok(false)
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Streams events as `p` may see them: `_system` governance history only from
    /// Auditor up, and the actor and data of an event labelled above `p`'s clearance
    /// withheld (the header stays, so gaps are visible, not hidden).
    pub fn events_visible(
        &self,
        p: &Principal,
        f: &EventFilter,
        out: &mut dyn FnMut(RawEvent) -> Result<bool, PlatformError>,
    ) -> Result<(), PlatformError> {
        if f.tenant.as_deref() == Some(SYSTEM_TENANT) && p.role < Role::Auditor {
            return Err(PlatformError::role(&p.name, p.role, Role::Auditor, "events list --tenant _system"));
        }
        self.events(f, &mut |mut e| {
            if e.header.tenant.is_system() && p.role < Role::Auditor {
                return Ok(true);
            }
            if e.header.label.is_some_and(|l| l > p.clearance) {
                e.withhold();
            }
            out(e)
        })
    }

    /// One event as `p` may see it (see [`Platform::events_visible`]).
    pub fn event_visible(&self, p: &Principal, seq: u64) -> Result<Event, PlatformError> {
        let mut e = self.event(seq)?;
        if e.header.tenant.is_system() && p.role < Role::Auditor {
            return Err(PlatformError::role(&p.name, p.role, Role::Auditor, "events show (a _system event)"));
        }
        if e.header.label.is_some_and(|l| l > p.clearance) {
            e.actor = None;
            e.data = None;
        }
        Ok(e)
    }

    /// One event by global seq.
    pub fn event(&self, seq: u64) -> Result<Event, PlatformError> {
        self.log.event(seq)?.ok_or_else(|| {
            PlatformError::NotFound(format!("no event with seq {seq}; the log has {} events", self.log.head().map(|h| h.size).unwrap_or(0)))
        })
    }

    /// Full verification (DESIGN §3).
    pub fn verify(&self, opts: &VerifyOptions, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, PlatformError> {
        Ok(self.log.verify(opts, progress)?)
    }
}

/// Parses a receipt `SEQ:HASH` for `verify --expect`.
pub fn parse_expect(s: &str) -> Result<(u64, [u8; 32]), PlatformError> {
    let bad = || PlatformError::Input(format!("invalid --expect {s:?}: use SEQ:HASH as printed by ingest (last_seq:global_head)"));
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let seq = a.parse().map_err(|_| bad())?;
    let mut h = [0u8; 32];
    hex::decode_to_slice(b, &mut h).map_err(|_| bad())?;
    Ok((seq, h))
}
