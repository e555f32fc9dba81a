//! What `/readyz` and the reload metrics report about the daemon itself: whether its
//! components are running and how the last configuration (re)load went. The daemon owns one
//! [`Health`] behind an `Arc` and updates it; the HTTP handlers only read it.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// The daemon's own state, shared between the daemon (writer) and the HTTP server (reader).
#[derive(Debug)]
pub struct Health {
    state: Mutex<HealthState>,
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
    /// Looping components that have not come round for a long time (stuck).
    pub stuck: Vec<String>,
}

impl Health {
    /// Components not started yet; the configuration the daemon started with counts as the
    /// last successful load, now.
    pub fn new() -> Health {
        Health {
            state: Mutex::new(HealthState {
                components_running: false,
                last_reload_ok: true,
                last_reload_errors: Vec::new(),
                last_reload_at: SystemTime::now(),
                stuck: Vec::new(),
            }),
        }
    }

    // A panic while holding the lock cannot leave these plain fields half-written, so a
    // poisoned lock is still good to use.
    fn lock(&self) -> MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the daemon's components as started (`true`) or stopping (`false`).
    pub fn set_components_running(&self, running: bool) {
        self.lock().components_running = running;
    }

    /// Records the looping components that are stuck (empty when all come round).
    pub fn set_stuck(&self, stuck: Vec<String>) {
        self.lock().stuck = stuck;
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

    /// The state now.
    pub fn snapshot(&self) -> HealthState {
        self.lock().clone()
    }
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}
