//! When a subsidiary's cron schedule fires, in its own time zone, right across daylight-saving
//! changes. Schedulers that turn a named zone into a fixed offset drift an hour after a change
//! (tokio-cron-scheduler's issue #87); this computes every next fire from the zone's rules.
//!
//! The cron expression is matched against the *wall clock* of the zone, then mapped to an
//! instant:
//! - a wall time skipped by the spring change (02:30 on the night clocks jump 02:00 → 03:00)
//!   fires once, at the change (03:00 local);
//! - a wall time repeated by the autumn change (01:30 happens twice) fires once, the first time.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::Schedule;

/// Where the scheduler reads the time: the system clock in the daemon, a clock driven by
/// tokio's (pausable) time in tests.
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Calls `fire` at every fire of the schedule after `after`, in order, until `shutdown` (or
/// the expression never matches again). Sleeps until each fire, waking at least every
/// `beat_every` to call `beat` (the component's heartbeat); if it wakes before the fire by
/// `clock` (the clock was stepped back), it sleeps again, and a fire already made is never made
/// again: each next fire is computed from the last one, not from the clock.
#[expect(
    clippy::too_many_arguments,
    reason = "the schedule, its zone, the clock, the heartbeat and the fire: each a different caller's part"
)]
pub async fn run_fires<C, B, F, Fut>(
    schedule: &Schedule,
    zone: Tz,
    mut after: DateTime<Utc>,
    clock: &C,
    shutdown: &tokio_util::sync::CancellationToken,
    beat_every: std::time::Duration,
    beat: B,
    mut fire: F,
) where
    C: Clock,
    B: Fn(),
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = ()>,
{
    while let Some(next) = next_fire(schedule, zone, after) {
        loop {
            beat();
            let wait = (next - clock.now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait.min(beat_every)) => {}
            }
            if clock.now() >= next {
                break;
            }
        }
        after = next;
        fire(next).await;
    }
}

/// A fire that fell while no daemon was running the schedule (restart, upgrade, reboot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    /// Nothing was missed (or nothing was ever recorded: a first start misses nothing).
    Nothing,
    /// The latest missed fire, young enough to run now, once, in place of all missed ones.
    CatchUp(DateTime<Utc>),
    /// The latest missed fire is older than the grace: logged and skipped.
    TooOld(DateTime<Utc>),
}

/// Most fires looked at between the last recorded one and now (a schedule firing every second,
/// down for more than a day); past it, nothing is caught up.
const MAX_MISSED_SCAN: usize = 200_000;

/// Which missed fire, if any, to catch up at start: the latest fire after `last` (the last one
/// recorded) and not after `now`, if it is at most `grace` old. Several missed fires make one.
pub fn missed_fire(
    schedule: &Schedule,
    zone: Tz,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: std::time::Duration,
) -> Missed {
    let Some(mut after) = last else { return Missed::Nothing };
    let mut latest = None;
    for _ in 0..MAX_MISSED_SCAN {
        match next_fire(schedule, zone, after) {
            Some(next) if next <= now => {
                latest = Some(next);
                after = next;
            }
            _ => break,
        }
    }
    match latest {
        None => Missed::Nothing,
        Some(fire) if (now - fire).to_std().unwrap_or_default() <= grace => Missed::CatchUp(fire),
        Some(fire) => Missed::TooOld(fire),
    }
}

/// Longest a spring-forward gap can be; time zones use one hour, a few used 30 minutes.
const MAX_GAP_MINUTES: i64 = 3 * 60;

/// The first fire strictly after `after`, or `None` if the expression never matches again.
pub fn next_fire(schedule: &Schedule, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Fire times are whole seconds, so every daemon computes the very same instant (the
    // database keeps each (subsidiary, fire time) once).
    let after = after.with_nanosecond(0)?;
    let mut wall = after.with_timezone(&zone).naive_local();
    // Bounded: each round moves the wall clock forward; a few rounds cover a repeated hour.
    for _ in 0..1_000 {
        let candidate = next_wall_match(schedule, wall)?;
        if let Some(instant) = wall_to_instant(zone, candidate).filter(|instant| *instant > after) {
            return Some(instant);
        }
        wall = candidate;
    }
    None
}

/// The first wall-clock time strictly after `wall` that the expression matches, with the
/// wall clock treated as a zone without changes.
fn next_wall_match(schedule: &Schedule, wall: NaiveDateTime) -> Option<NaiveDateTime> {
    let as_utc = Utc.from_utc_datetime(&wall);
    schedule.cron.find_next_occurrence(&as_utc, false).ok().map(|t| t.naive_utc())
}

/// The instant a wall-clock time means in `zone`: the first of two in a repeated hour, and the
/// end of the gap for a time the spring change skipped.
fn wall_to_instant(zone: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // Changes happen on whole minutes: the first valid minute after the skipped wall
            // time is the change itself (e.g. 03:00).
            let floor = wall.date().and_hms_opt(wall.hour(), wall.minute(), 0)?;
            (1..=MAX_GAP_MINUTES).find_map(|minutes| {
                match zone.from_local_datetime(&(floor + Duration::minutes(minutes))) {
                    LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                    LocalResult::None => None,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago() -> Tz {
        "America/Chicago".parse().expect("zone")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    /// Every fire from `from` for `count` fires.
    fn fires(expression: &str, from: &str, count: usize) -> Vec<String> {
        let schedule = Schedule::parse(expression).expect("cron");
        let mut after = utc(from);
        let mut out = Vec::new();
        for _ in 0..count {
            let next = next_fire(&schedule, chicago(), after).expect("next");
            out.push(next.with_timezone(&chicago()).to_rfc3339());
            after = next;
        }
        out
    }

    #[test]
    fn missed_fires_make_one_catch_up_within_the_grace() {
        let hourly = Schedule::parse("0 0 * * * *").expect("cron");
        let six_hours = std::time::Duration::from_secs(6 * 3600);
        let now = utc("2026-12-06T10:20:00Z");
        // Down from 06:30 to 10:20: 07:00, 08:00, 09:00 and 10:00 were missed; 10:00 runs once.
        let last = Some(utc("2026-12-06T06:00:00Z"));
        assert_eq!(missed_fire(&hourly, chicago(), last, now, six_hours), Missed::CatchUp(utc("2026-12-06T10:00:00Z")));
        // Nothing missed: the last recorded fire is the latest one.
        let last = Some(utc("2026-12-06T10:00:00Z"));
        assert_eq!(missed_fire(&hourly, chicago(), last, now, six_hours), Missed::Nothing);
        // A first start has nothing recorded and catches nothing up.
        assert_eq!(missed_fire(&hourly, chicago(), None, now, six_hours), Missed::Nothing);
        // Older than the grace: skipped.
        let daily = Schedule::parse("0 0 16 * * Mon-Fri").expect("cron");
        let last = Some(utc("2026-12-01T22:00:00Z"));
        let monday = utc("2026-12-07T06:00:00Z");
        assert_eq!(
            missed_fire(&daily, chicago(), last, monday, six_hours),
            Missed::TooOld(utc("2026-12-04T22:00:00Z")),
            "Friday 16:00 Chicago, missed over the weekend"
        );
    }

    #[test]
    fn weekday_afternoons_keep_local_time_across_both_changes() {
        // 2026: DST starts Sunday March 8, ends Sunday November 1 (America/Chicago).
        assert_eq!(
            fires("0 0 16 * * Mon-Fri", "2026-03-05T00:00:00Z", 4),
            [
                "2026-03-05T16:00:00-06:00",
                "2026-03-06T16:00:00-06:00",
                "2026-03-09T16:00:00-05:00",
                "2026-03-10T16:00:00-05:00"
            ]
        );
        assert_eq!(
            fires("0 0 16 * * Mon-Fri", "2026-10-29T00:00:00Z", 3),
            ["2026-10-29T16:00:00-05:00", "2026-10-30T16:00:00-05:00", "2026-11-02T16:00:00-06:00"]
        );
    }

    #[test]
    fn fire_times_are_whole_seconds_whatever_the_clock_says() {
        let schedule = Schedule::parse("* * * * * *").expect("cron");
        let a = next_fire(&schedule, chicago(), utc("2026-11-30T12:00:00.123456789Z")).expect("next");
        let b = next_fire(&schedule, chicago(), utc("2026-11-30T12:00:00.987Z")).expect("next");
        assert_eq!(a, b);
        assert_eq!(a, utc("2026-11-30T12:00:01Z"));
    }

    #[test]
    fn a_skipped_local_time_fires_once_at_the_change() {
        assert_eq!(
            fires("0 30 2 * * *", "2026-03-07T12:00:00Z", 3),
            ["2026-03-08T03:00:00-05:00", "2026-03-09T02:30:00-05:00", "2026-03-10T02:30:00-05:00"]
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once() {
        assert_eq!(
            fires("0 30 1 * * *", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-06:00"]
        );
        // Every 20 minutes through the repeated hour: 01:00, 01:20, 01:40 once each.
        assert_eq!(
            fires("0 */20 1-2 1 11 *", "2026-11-01T05:30:00Z", 6),
            [
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:20:00-05:00",
                "2026-11-01T01:40:00-05:00",
                "2026-11-01T02:00:00-06:00",
                "2026-11-01T02:20:00-06:00",
                "2026-11-01T02:40:00-06:00"
            ]
        );
    }

    /// A clock that follows tokio's time from a chosen start, and can be stepped like a wall clock.
    struct TokioClock {
        start: DateTime<Utc>,
        origin: tokio::time::Instant,
        step_seconds: std::sync::atomic::AtomicI64,
    }

    impl TokioClock {
        fn at(start: &str) -> TokioClock {
            TokioClock { start: utc(start), origin: tokio::time::Instant::now(), step_seconds: Default::default() }
        }
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            let step = Duration::seconds(self.step_seconds.load(std::sync::atomic::Ordering::SeqCst));
            self.start + Duration::from_std(self.origin.elapsed()).unwrap_or_default() + step
        }
    }

    /// The first `count` fires the scheduler makes from `start`, on tokio's paused clock.
    async fn run_paused(expression: &str, start: &str, count: usize) -> Vec<String> {
        let schedule = Schedule::parse(expression).expect("cron");
        let clock = TokioClock::at(start);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut fired = Vec::new();
        // While it waits for a fire hours away, it beats its heartbeat every 30 s.
        let (beats, every) = (std::cell::Cell::new(0u64), std::time::Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        run_fires(
            &schedule,
            chicago(),
            clock.now(),
            &clock,
            &shutdown,
            every,
            || beats.set(beats.get() + 1),
            |at| {
                fired.push((at, clock.now()));
                if fired.len() == count {
                    shutdown.cancel();
                }
                async {}
            },
        )
        .await;
        let waited = started.elapsed().as_secs();
        assert!(beats.get() >= waited / 30 && beats.get() <= waited / 30 + 2 * count as u64, "{} beats", beats.get());
        fired
            .into_iter()
            .map(|(at, woke)| {
                assert!(woke >= at, "fired at {at} before its time ({woke})");
                at.with_timezone(&chicago()).to_rfc3339()
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_scheduler_fires_across_the_2026_changes_on_a_paused_clock() {
        assert_eq!(
            run_paused("0 30 2 * * *", "2026-03-07T12:00:00Z", 3).await,
            ["2026-03-08T03:00:00-05:00", "2026-03-09T02:30:00-05:00", "2026-03-10T02:30:00-05:00"]
        );
        assert_eq!(
            run_paused("0 30 1 * * *", "2026-10-31T12:00:00Z", 2).await,
            ["2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-06:00"]
        );
        assert_eq!(
            run_paused("0 0 16 * * Mon-Fri", "2026-10-30T12:00:00Z", 2).await,
            ["2026-10-30T16:00:00-05:00", "2026-11-02T16:00:00-06:00"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_stepped_back_never_fires_a_time_twice() {
        let schedule = Schedule::parse("0 0 * * * *").expect("cron");
        let clock = TokioClock::at("2026-11-30T10:30:00Z");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut fired = Vec::new();
        run_fires(
            &schedule,
            chicago(),
            clock.now(),
            &clock,
            &shutdown,
            std::time::Duration::from_secs(30),
            || {},
            |at| {
                fired.push(at);
                if fired.len() == 1 {
                    // Right after the 11:00 fire, the wall clock is stepped back 90 minutes.
                    clock.step_seconds.store(-90 * 60, std::sync::atomic::Ordering::SeqCst);
                }
                if fired.len() == 3 {
                    shutdown.cancel();
                }
                async {}
            },
        )
        .await;
        assert_eq!(fired, [utc("2026-11-30T11:00:00Z"), utc("2026-11-30T12:00:00Z"), utc("2026-11-30T13:00:00Z")]);
    }

    #[test]
    fn a_fire_in_the_repeated_hour_is_not_repeated_when_asked_from_its_second_pass() {
        let schedule = Schedule::parse("0 30 1 * * *").expect("cron");
        // 01:15 CST (the second 01:15): 01:30 CDT already happened at 06:30Z.
        let next = next_fire(&schedule, chicago(), utc("2026-11-01T07:15:00Z")).expect("next");
        assert_eq!(next.with_timezone(&chicago()).to_rfc3339(), "2026-11-02T01:30:00-06:00");
    }
}
