//! What `/readyz` and the metrics report about the daemon itself: whether its components are
//! running, how each supervised component is doing (up, restarting, its last heartbeat) and how
//! the last configuration (re)load went. The daemon owns one [`Health`] behind an `Arc` and
//! updates it (through [`crate::supervise`] for the components); the HTTP handlers only read it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The daemon's own state, shared between the daemon (writer) and the HTTP server (reader).
#[derive(Debug)]
pub struct Health {
    state: Mutex<Inner>,
    /// Hands out the owner numbers of component registrations.
    next_owner: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    components_running: bool,
    last_reload_ok: bool,
    last_reload_errors: Vec<String>,
    last_reload_at: SystemTime,
    components: BTreeMap<String, Entry>,
    /// Restarts per component name since the daemon started: kept apart from the entries, which
    /// go when a component stops for good (a reload retires a generation, the scheduler lease
    /// moves), so the counter never goes back.
    restarts: BTreeMap<String, u64>,
}

/// One supervised component as the registry keeps it.
#[derive(Debug)]
struct Entry {
    /// The registration that owns the name now. A reload starts a new generation of components
    /// under the same names while the old one finishes its work: only the owner's reports count.
    owner: u64,
    phase: ComponentPhase,
    last_beat: Option<Instant>,
    allowed_silence: Option<Duration>,
}

/// Whether a supervised component runs or waits to be restarted.
#[derive(Clone, Debug, PartialEq)]
pub enum ComponentPhase {
    Running,
    /// It stopped (`cause`: a panic or a return before shutdown) and is started again after
    /// the backoff delay `retry_in`.
    Restarting {
        cause: String,
        retry_in: Duration,
    },
}

/// A supervised component at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentHealth {
    /// Its name in logs, `/readyz` and the `component` label: `loads inbox`, `scheduler`, …
    pub name: String,
    pub phase: ComponentPhase,
    /// How many times the supervisor has started it again after a failure.
    pub restarts: u64,
    /// Time since its last heartbeat; `None` for a component without heartbeat (the HTTP
    /// server) or before its first.
    pub heartbeat_age: Option<Duration>,
    /// How long it may go without a heartbeat before it is reported stale; `None`: no
    /// heartbeat expected.
    pub allowed_silence: Option<Duration>,
}

impl ComponentHealth {
    /// Its last heartbeat is older than it is allowed to be: it is not coming round.
    pub fn stale(&self) -> bool {
        matches!((self.heartbeat_age, self.allowed_silence), (Some(age), Some(allowed)) if age > allowed)
    }

    /// Running and not stale.
    pub fn up(&self) -> bool {
        self.phase == ComponentPhase::Running && !self.stale()
    }

    /// Why it is not ready (one line for `/readyz`), or `None` when it is up.
    pub fn problem(&self) -> Option<String> {
        match (&self.phase, self.heartbeat_age, self.allowed_silence) {
            (ComponentPhase::Restarting { cause, retry_in }, _, _) => Some(format!(
                "component {}: {cause}; restarting in {:.1} s (restarts so far: {})",
                self.name,
                retry_in.as_secs_f64(),
                self.restarts
            )),
            (ComponentPhase::Running, Some(age), Some(allowed)) if age > allowed => Some(format!(
                "component {}: stale, no heartbeat for {} s (allowed {} s)",
                self.name,
                age.as_secs(),
                allowed.as_secs()
            )),
            _ => None,
        }
    }
}

/// A copy of [`Health`] at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthState {
    /// Set once the daemon has started its components; cleared when it stops them.
    pub components_running: bool,
    /// Whether the last configuration load (the one at start, then each reload) was applied.
    pub last_reload_ok: bool,
    /// Why the last reload was refused (file and key in each line); empty when it was applied.
    pub last_reload_errors: Vec<String>,
    /// When the configuration was last loaded or a reload was last attempted.
    pub last_reload_at: SystemTime,
    /// The supervised components, by name.
    pub components: Vec<ComponentHealth>,
}

impl Health {
    /// Components not started yet; the configuration the daemon started with counts as the
    /// last successful load, now.
    pub fn new() -> Health {
        Health {
            state: Mutex::new(Inner {
                components_running: false,
                last_reload_ok: true,
                last_reload_errors: Vec::new(),
                last_reload_at: SystemTime::now(),
                components: BTreeMap::new(),
                restarts: BTreeMap::new(),
            }),
            next_owner: AtomicU64::new(1),
        }
    }

    // A panic while holding the lock cannot leave these plain fields half-written, so a
    // poisoned lock is still good to use.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the daemon's components as started (`true`) or stopping (`false`).
    pub fn set_components_running(&self, running: bool) {
        self.lock().components_running = running;
    }

    /// Records the result of a configuration reload, now: `ok` when the new configuration
    /// was applied, else `false` with every error (file and key) found in it. `/readyz`
    /// answers 503 with these errors until a later reload succeeds, and the metrics
    /// `factord_config_last_reload_success` and `factord_config_last_reload_timestamp_seconds`
    /// follow it.
    pub fn set_reload_result(&self, ok: bool, errors: Vec<String>) {
        let mut state = self.lock();
        state.last_reload_ok = ok;
        state.last_reload_errors = if ok { Vec::new() } else { errors };
        state.last_reload_at = SystemTime::now();
    }

    /// Registers a component under `name` (taking the name over from an earlier registration,
    /// whose later reports are then ignored) and returns the owner number for its reports.
    /// It counts as running, with a heartbeat now.
    pub fn register_component(&self, name: &str, allowed_silence: Option<Duration>) -> u64 {
        let owner = self.next_owner.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        state.components.insert(
            name.to_string(),
            Entry { owner, phase: ComponentPhase::Running, last_beat: Some(Instant::now()), allowed_silence },
        );
        owner
    }

    /// Runs `change` on `name`'s entry if `owner` still owns it.
    fn with_owned(&self, name: &str, owner: u64, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.lock().components.get_mut(name).filter(|e| e.owner == owner) {
            change(entry);
        }
    }

    /// A heartbeat of the component: it came round its loop.
    pub fn beat(&self, name: &str, owner: u64) {
        self.with_owned(name, owner, |e| e.last_beat = Some(Instant::now()));
    }

    /// The component stopped and waits `retry_in` before it is started again.
    pub fn component_failed(&self, name: &str, owner: u64, cause: String, retry_in: Duration) {
        self.with_owned(name, owner, |e| e.phase = ComponentPhase::Restarting { cause, retry_in });
    }

    /// The component was started again after a failure.
    pub fn component_restarted(&self, name: &str, owner: u64) {
        let mut state = self.lock();
        if let Some(e) = state.components.get_mut(name).filter(|e| e.owner == owner) {
            e.phase = ComponentPhase::Running;
            e.last_beat = Some(Instant::now());
            *state.restarts.entry(name.to_string()).or_default() += 1;
        }
    }

    /// The component stopped for good (shutdown, a reload retired it): it is no longer listed.
    pub fn deregister_component(&self, name: &str, owner: u64) {
        let mut state = self.lock();
        if state.components.get(name).is_some_and(|e| e.owner == owner) {
            state.components.remove(name);
        }
    }

    /// The components with a heartbeat that have not beaten for longer than `limit` nor for
    /// longer than their own allowed silence, by name.
    pub fn silent_longer_than(&self, limit: Duration) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .components
            .iter()
            .filter(|(_, e)| {
                e.allowed_silence.is_some_and(|allowed| {
                    e.last_beat.is_some_and(|at| now.saturating_duration_since(at) > limit.max(allowed))
                })
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The state now.
    pub fn snapshot(&self) -> HealthState {
        let now = Instant::now();
        let state = self.lock();
        HealthState {
            components_running: state.components_running,
            last_reload_ok: state.last_reload_ok,
            last_reload_errors: state.last_reload_errors.clone(),
            last_reload_at: state.last_reload_at,
            components: state
                .components
                .iter()
                .map(|(name, e)| ComponentHealth {
                    name: name.clone(),
                    phase: e.phase.clone(),
                    restarts: state.restarts.get(name).copied().unwrap_or(0),
                    heartbeat_age: e.allowed_silence.and(e.last_beat).map(|at| now.saturating_duration_since(at)),
                    allowed_silence: e.allowed_silence,
                })
                .collect(),
        }
    }
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_component_that_stops_beating_is_stale_and_only_the_owner_reports() {
        let health = Health::new();
        let old = health.register_component("loads inbox", Some(Duration::from_secs(30)));
        let owner = health.register_component("loads inbox", Some(Duration::from_secs(30)));
        health.register_component("http", None);
        tokio::time::advance(Duration::from_secs(20)).await;
        health.beat("loads inbox", owner);
        tokio::time::advance(Duration::from_secs(20)).await;
        let state = health.snapshot();
        assert!(state.components.iter().all(ComponentHealth::up), "{state:?}");
        assert_eq!(health.silent_longer_than(Duration::from_secs(30)), Vec::<String>::new());

        // The old generation's reports are ignored; its end does not remove the new one.
        health.deregister_component("loads inbox", old);
        health.component_failed("loads inbox", old, "panicked".into(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(11)).await;
        let state = health.snapshot();
        let inbox = &state.components[1];
        assert_eq!((inbox.name.as_str(), inbox.heartbeat_age), ("loads inbox", Some(Duration::from_secs(31))));
        assert!(inbox.stale() && !inbox.up(), "{inbox:?}");
        assert!(inbox.problem().is_some_and(|p| p.contains("stale, no heartbeat for 31 s")), "{inbox:?}");
        assert!(state.components[0].up(), "no heartbeat expected from http: {state:?}");
        assert_eq!(health.silent_longer_than(Duration::from_secs(30)), vec!["loads inbox".to_string()]);

        health.component_failed("loads inbox", owner, "panicked: boom".into(), Duration::from_millis(1500));
        let inbox = health.snapshot().components[1].clone();
        assert_eq!(
            inbox.problem().as_deref(),
            Some("component loads inbox: panicked: boom; restarting in 1.5 s (restarts so far: 0)")
        );
        health.component_restarted("loads inbox", owner);
        let inbox = health.snapshot().components[1].clone();
        assert!(inbox.up() && inbox.restarts == 1, "{inbox:?}");
        health.deregister_component("loads inbox", owner);
        assert_eq!(health.snapshot().components.len(), 1);

        // A reload registers the name again: the restarts counted before are kept.
        let again = health.register_component("loads inbox", Some(Duration::from_secs(30)));
        let inbox = health.snapshot().components[1].clone();
        assert_eq!((inbox.name.as_str(), inbox.restarts), ("loads inbox", 1));
        // A component allowed more silence than the watchdog's limit is judged by its own.
        health.register_component("submission acme-east", Some(Duration::from_secs(3600)));
        tokio::time::advance(Duration::from_secs(700)).await;
        health.beat("loads inbox", again);
        assert_eq!(health.silent_longer_than(Duration::from_secs(600)), Vec::<String>::new());
        tokio::time::advance(Duration::from_secs(3000)).await;
        health.beat("loads inbox", again);
        assert_eq!(health.silent_longer_than(Duration::from_secs(600)), vec!["submission acme-east".to_string()]);
    }
}
