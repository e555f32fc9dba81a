//! Capped exponential backoff with full jitter (docs/reliability.md rule 9; docs/style.md: atuin's sync loop,
//! not sqlxmq's uncapped one), shared by the daemon's loops and the API transports.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A random wait in `[0, min(cap, base × 2^attempt)]` (AWS "Exponential Backoff and Jitter").
pub fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random() % nanos.saturating_add(1))
}

/// A random number for jitter: std's per-process random SipHash keys are randomness enough; no
/// rand crate.
pub fn random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(Instant::now())
}

/// The delays of one retry loop.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { attempt: 0, base, cap }
    }

    /// The next delay, growing with each call until [`Backoff::reset`].
    pub fn next_delay(&mut self) -> Duration {
        let delay = full_jitter(self.base, self.cap, self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps the next delay; `false` if shutdown came first.
    pub async fn sleep(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tracing::debug!(retry_in = ?delay, "backing off");
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_and_jittered() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for _ in 0..40 {
            assert!(backoff.next_delay() <= Duration::from_secs(8));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
        let draws: Vec<Duration> =
            (0..20).map(|_| full_jitter(Duration::from_secs(1), Duration::from_secs(60), 3)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]), "jitter varies: {draws:?}");
    }
}
