//! Supervision of the daemon's long-running components (the inbox watchers, the invoice job,
//! the scheduler and its schedules, the HTTP server, …). Each runs under a [`Supervisor`]: a
//! component that panics, or returns while no shutdown was asked, is logged once with its name
//! and cause, shown not ready in [`Health`] (so `/readyz` and the metrics say so), and started
//! again after a capped exponential backoff with jitter ([`restart_delay`]); a run that lasted
//! [`RestartPolicy::healthy_after`] starts the backoff afresh. Shutdown stops restarts at once,
//! also in the middle of a backoff.
//!
//! A component beats its [`Heartbeat`] each time it comes round its loop; one whose last beat
//! is older than its allowed silence is reported stale. The registry is the daemon's
//! [`Health`], passed in: no global state. [`FaultPlan`] lets tests make a component panic on
//! purpose and see the restarts the supervisor decided.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::Health;

/// When a failed component is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The first delay is between half of it and all of it.
    pub base: Duration,
    /// No delay is longer.
    pub cap: Duration,
    /// A run that lasted this long before it failed counts as healthy: the next delay starts
    /// from `base` again.
    pub healthy_after: Duration,
}

impl Default for RestartPolicy {
    /// 1 s doubling up to 60 s; reset after a minute of healthy running.
    fn default() -> RestartPolicy {
        RestartPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// The delay before restart number `attempt` (0 for the first failure since a healthy run):
/// "equal jitter", a random point in the upper half of `min(cap, base × 2^attempt)`, drawn
/// from `random`. Unlike full jitter it never comes out near zero, so a component failing at
/// once on every start cannot spin, and the delays grow with each attempt until the cap.
pub fn restart_delay(policy: &RestartPolicy, attempt: u32, random: u64) -> Duration {
    let ceiling = policy.base.saturating_mul(1u32 << attempt.min(16)).min(policy.cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let half = nanos / 2;
    Duration::from_nanos(nanos - half + random % half.saturating_add(1))
}

/// One failure of a component as the supervisor handled it, reported to a [`FaultPlan`]'s
/// receiver.
#[derive(Clone, Debug)]
pub struct Failure {
    pub component: String,
    /// `panicked: …` or `returned before shutdown`.
    pub cause: String,
    /// The backoff delay before it is started again.
    pub restart_in: Duration,
    /// When it failed.
    pub at: Instant,
}

/// Faults to inject into components, for tests: armed by the test, passed in the daemon's
/// start options (no global), inert by default. An armed component panics at its next
/// heartbeats; the supervisor reports each failure it handles to the receiver given by
/// [`FaultPlan::new`].
#[derive(Clone, Debug, Default)]
pub struct FaultPlan(Option<Arc<Faults>>);

#[derive(Debug)]
struct Faults {
    /// Component name → panics still to come.
    panics: Mutex<HashMap<String, u32>>,
    failures: mpsc::UnboundedSender<Failure>,
}

impl FaultPlan {
    /// An active plan with nothing armed, and the receiver of the failures the supervisor
    /// handles.
    pub fn new() -> (FaultPlan, mpsc::UnboundedReceiver<Failure>) {
        let (failures, receiver) = mpsc::unbounded_channel();
        (FaultPlan(Some(Arc::new(Faults { panics: Mutex::new(HashMap::new()), failures }))), receiver)
    }

    /// Makes `component` panic at each of its next `times` heartbeats.
    pub fn panic(&self, component: &str, times: u32) {
        if let Some(faults) = &self.0 {
            *faults.panics.lock().unwrap_or_else(PoisonError::into_inner).entry(component.to_string()).or_default() +=
                times;
        }
    }

    /// Panics if a panic is armed for `component`.
    fn at_heartbeat(&self, component: &str) {
        let Some(faults) = &self.0 else { return };
        let armed = {
            let mut panics = faults.panics.lock().unwrap_or_else(PoisonError::into_inner);
            match panics.get_mut(component) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        if armed {
            panic!("fault injected into {component}");
        }
    }

    fn report(&self, failure: Failure) {
        if let Some(faults) = &self.0 {
            let _ = faults.failures.send(failure);
        }
    }
}

/// A component's heartbeat, handed to it at each start.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    health: Arc<Health>,
    name: Arc<str>,
    owner: u64,
    faults: FaultPlan,
}

impl Heartbeat {
    /// The component came round its loop. (A test's [`FaultPlan`] may make it panic here.)
    pub fn beat(&self) {
        self.faults.at_heartbeat(&self.name);
        self.health.beat(&self.name, self.owner);
    }
}

/// Starts components and restarts them when they fail. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Supervisor {
    health: Arc<Health>,
    policy: RestartPolicy,
    faults: FaultPlan,
    /// Told of every failure handled (the daemon records a component stop as an alert).
    listener: Option<mpsc::UnboundedSender<Failure>>,
}

/// Removes the component from the registry when its supervision ends, also when the task is
/// aborted (a stopped scheduler drops its schedules, the grace period runs out).
struct Registration {
    health: Arc<Health>,
    name: Arc<str>,
    owner: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.health.deregister_component(&self.name, self.owner);
    }
}

impl Supervisor {
    pub fn new(health: Arc<Health>, policy: RestartPolicy, faults: FaultPlan) -> Supervisor {
        Supervisor { health, policy, faults, listener: None }
    }

    /// Reports every failure this supervisor handles to `listener` too.
    pub fn with_listener(mut self, listener: mpsc::UnboundedSender<Failure>) -> Supervisor {
        self.listener = Some(listener);
        self
    }

    /// Spawns `name` on `tasks` under supervision until `token` is cancelled. `run` starts one
    /// run of the component, which must return only once `token` is cancelled. `allowed_silence`
    /// is how long it may go without a heartbeat; `None` for a component without a loop to beat
    /// in.
    pub fn spawn<F, Fut>(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        name: impl Into<String>,
        allowed_silence: Option<Duration>,
        token: CancellationToken,
        run: F,
    ) where
        F: FnMut(Heartbeat, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tasks.spawn(self.clone().supervise(name.into(), allowed_silence, token, run));
    }

    /// Runs `name` until `token` is cancelled, starting it again after each failure.
    pub async fn supervise<F, Fut>(
        self,
        name: String,
        allowed_silence: Option<Duration>,
        token: CancellationToken,
        mut run: F,
    ) where
        F: FnMut(Heartbeat, CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        let name: Arc<str> = name.into();
        let owner = self.health.register_component(&name, allowed_silence);
        let _registration = Registration { health: self.health.clone(), name: name.clone(), owner };
        let mut attempt = 0u32;
        loop {
            let heartbeat =
                Heartbeat { health: self.health.clone(), name: name.clone(), owner, faults: self.faults.clone() };
            let started = Instant::now();
            let outcome = AssertUnwindSafe(run(heartbeat, token.clone())).catch_unwind().await;
            let cause = match outcome {
                Ok(()) if token.is_cancelled() => return,
                Ok(()) => "returned before shutdown".to_string(),
                Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
            };
            if token.is_cancelled() {
                tracing::error!(component = %name, cause, "component failed while stopping");
                return;
            }
            if started.elapsed() >= self.policy.healthy_after {
                attempt = 0;
            }
            let delay = restart_delay(&self.policy, attempt, crate::backoff::random());
            attempt = attempt.saturating_add(1);
            tracing::error!(
                component = %name, cause, restart_in = ?delay, attempt,
                "component stopped; it is restarted after the delay"
            );
            self.health.component_failed(&name, owner, cause.clone(), delay);
            let failure = Failure { component: name.to_string(), cause, restart_in: delay, at: Instant::now() };
            if let Some(listener) = &self.listener {
                let _ = listener.send(failure.clone());
            }
            self.faults.report(failure);
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            self.health.component_restarted(&name, owner);
            tracing::info!(component = %name, attempt, "component restarted");
        }
    }
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_within_equal_jitter_up_to_the_cap() {
        let policy = RestartPolicy::default();
        let secs = |attempt, random| restart_delay(&policy, attempt, random).as_secs_f64();
        // Lowest and highest draws: attempt n waits between 2^(n-1) and 2^n seconds.
        let lowest: Vec<f64> = (0..8).map(|n| secs(n, 0)).collect();
        let highest: Vec<f64> = (0..8).map(|n| secs(n, u64::MAX - 1)).collect();
        assert_eq!(lowest, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        assert!(highest.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]).all(|(h, top)| *h <= top));
        // Whatever the draws, each attempt waits at least as long as the one before until the
        // cap comes near, and never more than 60 s.
        for attempt in 0..5_usize {
            assert!(highest[attempt] <= lowest[attempt + 1], "{attempt}");
        }
        for attempt in 0..40 {
            let delay = secs(attempt, crate::backoff::random());
            assert!((lowest[attempt.min(7) as usize]..=60.0).contains(&delay), "{attempt}: {delay}");
        }
    }

    fn supervisor(faults: FaultPlan) -> (Supervisor, Arc<Health>) {
        let health = Arc::new(Health::new());
        (Supervisor::new(health.clone(), RestartPolicy::default(), faults), health)
    }

    /// A component that beats every second until shutdown.
    async fn ticking(heartbeat: Heartbeat, token: CancellationToken) {
        loop {
            heartbeat.beat();
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_component_is_restarted_with_growing_delays_until_it_runs() {
        let (faults, mut failures) = FaultPlan::new();
        let (supervisor, health) = supervisor(faults.clone());
        let token = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        supervisor.spawn(&mut tasks, "job", Some(Duration::from_secs(3)), token.clone(), ticking);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(health.snapshot().components[0].up());

        faults.panic("job", 4);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let failure = failures.recv().await.expect("a failure");
            assert_eq!(
                (failure.component.as_str(), failure.cause.as_str()),
                ("job", "panicked: fault injected into job")
            );
            let state = health.snapshot().components[0].clone();
            assert!(!state.up() && matches!(state.phase, crate::http::ComponentPhase::Restarting { .. }), "{state:?}");
            seen.push(failure);
        }
        let delays: Vec<Duration> = seen.iter().map(|f| f.restart_in).collect();
        for (n, delay) in delays.iter().enumerate() {
            let ceiling = Duration::from_secs(1 << n);
            assert!(*delay >= ceiling / 2 && *delay <= ceiling, "attempt {n}: {delay:?}");
        }
        // The supervisor waited each delay before starting the component again.
        for pair in seen.windows(2) {
            assert!(pair[1].at - pair[0].at >= pair[0].restart_in, "{pair:?}");
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        let state = health.snapshot().components[0].clone();
        assert!(state.up() && state.restarts == 4, "{state:?}");

        // After a healthy minute, the next failure starts from the first delay again.
        tokio::time::sleep(Duration::from_secs(61)).await;
        faults.panic("job", 1);
        assert!(failures.recv().await.expect("a failure").restart_in <= Duration::from_secs(1));
        token.cancel();
        while tasks.join_next().await.is_some() {}
        assert!(health.snapshot().components.is_empty(), "deregistered on shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_that_returns_is_restarted_and_shutdown_ends_a_backoff_at_once() {
        let (faults, mut failures) = FaultPlan::new();
        let (supervisor, health) = supervisor(faults);
        let token = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        supervisor.spawn(&mut tasks, "quitter", None, token.clone(), |_, _| async {});
        let mut last = None;
        for _ in 0..8 {
            last = Some(failures.recv().await.expect("a failure"));
        }
        let last = last.expect("failures");
        assert_eq!(last.cause, "returned before shutdown");
        assert_eq!(health.snapshot().components[0].restarts, 7);
        assert!(last.restart_in >= Duration::from_secs(30), "{last:?}");

        // Shutdown in the middle of the 30 s or more backoff: supervision ends without waiting.
        let asked = Instant::now();
        token.cancel();
        while tasks.join_next().await.is_some() {}
        assert!(asked.elapsed() < Duration::from_millis(10), "{:?}", asked.elapsed());
        assert!(health.snapshot().components.is_empty());
    }
}
