//! The fault suite (docs/reliability.md, "The fault tests that prove it"): the real `factord run` as a
//! child process on PostgreSQL, submitting to an FTP server (libunftp), an HTTP server playing
//! Apex and the outbox, ingesting purchase and payment reports, while the test
//!
//! - kills it with SIGKILL at random moments and starts it again, many times;
//! - restarts PostgreSQL under it (a cluster the test made with `initdb`);
//! - runs two daemons at once on one database, and three of which one is killed at random
//!   moments and replaced;
//!
//! and then checks the invariants: every load in exactly one status, history forward only, at
//! most one effective submission per invoice at the fakes (and one for every submitted load),
//! every dropped file in exactly one of archive/ and failed/, no secret in any log or file.
//!
//! The random moments come from one seed, printed first: `FAULTS_SEED=<seed>` replays them.
//! Each test prints its figures (`faults[<test>]: seed=…, kill points=…, lost=0, doubled=0`).
//! Tests skip (with a note) when `TEST_DATABASE_URL` is not set, like the other PostgreSQL tests,
//! except in CI (`CI` set), where they fail.

#[allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]
#[path = "../it/fakes.rs"]
mod fakes;
// harness.rs allows its own dead code.
#[path = "../it/harness.rs"]
mod harness;
#[allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]
#[path = "../common/pdfs.rs"]
mod pdfs;

mod apex;
mod cluster;
mod world;

use std::time::Duration;

use harness::{PgDatabase, wait_for};
use world::{Rng, World, seed};

/// Kill points per run of the kill test: at least 20, so that kills land on every step of a batch
/// submission and of an ingest (docs/reliability.md, "The fault tests that prove it").
const KILL_POINTS: u32 = 30;
/// Loads fed through the kill test, in twelve exports.
const LOADS: usize = 300;
/// How long an aimed kill waits for a file in hand before it falls back to a random moment.
const AIM_DEADLINE: Duration = Duration::from_secs(8);
/// How long a run may take to settle once the faults stop.
const SETTLE: Duration = Duration::from_secs(120);

/// A seed of its own for each test, from the printed one.
fn rng(seed: u64, test: &str) -> Rng {
    let salt = test.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    Rng::new(seed ^ salt)
}

/// Waits until at least `count` loads have reached `status` or a later one.
async fn wait_for_progress(world: &World, count: i64, status: &str) {
    let later: &[&str] = match status {
        "Queued" => &["Queued", "Invoiced", "Financed", "Completed"],
        "Invoiced" => &["Invoiced", "Financed", "Completed"],
        _ => &["Financed", "Completed"],
    };
    wait_for(Duration::from_secs(60), &format!("{count} loads {status} or later"), || async {
        let counts = world.counts().await?;
        let reached: i64 = later.iter().map(|s| counts.get(*s).copied().unwrap_or(0)).sum();
        (reached >= count).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_doubles_nothing() {
    let Some(pg) = PgDatabase::create().await else { return };
    let seed = seed();
    eprintln!("faults[sigkill]: seed={seed} (replay: FAULTS_SEED={seed})");
    let mut rng = rng(seed, "sigkill");
    // A load file for most of the kill points (12 loads each, 25 files): a faster pipeline
    // otherwise finishes every report before the rounds run out, and nothing is left in hand.
    let mut world = World::new(&pg.url, LOADS, LOADS / 25).await;
    fakes::api::lock(&world.apex).flaky = true;

    let mut daemon = world.start();
    let (mut kills, mut mid_batch, mut mid_file, mut aimed) = (0, 0, 0, 0);
    while kills < KILL_POINTS {
        world.drop_next_loads();
        world.drop_reports().await;
        // The fault: SIGKILL. In three rounds of four it is aimed at the moment the daemon holds
        // a load file or report (taken into `processing/`, not yet finished), the step crash-safe
        // ingest exists for; otherwise, and when no file is taken in time, after a random while,
        // whatever the daemon is doing then (starting, rendering, sending a batch).
        if kills % 4 != 3 && world.file_in_hand(AIM_DEADLINE).await {
            aimed += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(rng.between(200, 4000))).await;
        }
        daemon.kill();
        kills += 1;
        let (sending, processing) = world.in_flight().await;
        mid_batch += usize::from(sending > 0);
        mid_file += usize::from(processing > 0);
        daemon = world.start();
    }
    while world.drop_next_loads() {}
    world.settle(&mut [&mut daemon], SETTLE).await;
    daemon.kill();
    assert!(
        mid_file * 2 > kills as usize,
        "only {mid_file} of {kills} kills found a file in hand ({aimed} aimed): the suite must kill mid-file in most rounds"
    );

    let figures = world.check().await;
    let reconciled = world.log_lines("reconciling a batch left sending");
    let retried = world.log_lines("transient failure; retrying");
    let (refused, dropped) = {
        let apex = fakes::api::lock(&world.apex);
        (apex.refused, apex.dropped)
    };
    figures.assert_clean(
        "sigkill",
        &format!(
            "seed={seed}, kill points={kills} ({mid_batch} with a batch in flight, {mid_file} with a file in hand, \
             {aimed} aimed at a file in hand), \
             restarts={}, batches reconciled={reconciled}, fires={}, apex 503s={refused}, apex answers dropped={dropped}, \
             retries={retried}, secs={}",
            world.starts - 1,
            world.fires(),
            world.elapsed().as_secs()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_the_daemon_reconnects_and_carries_on() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "TEST_DATABASE_URL is not set, and CI must test PostgreSQL (scripts/test starts it)"
        );
        eprintln!("SKIPPED on PostgreSQL: TEST_DATABASE_URL is not set");
        return;
    }
    let seed = seed();
    eprintln!("faults[postgres restart]: seed={seed} (replay: FAULTS_SEED={seed})");
    let mut rng = rng(seed, "postgres restart");
    let cluster = cluster::Cluster::start();
    let mut world = World::new(&cluster.url(), 60, 20).await;

    let mut daemon = world.start();
    let mut restarts = 0;
    let mut done = 0;
    while world.drop_next_loads() {
        done += 20;
        // Mid-run: some of this export is invoiced, the rest is in flight.
        wait_for_progress(&world, done - 15, "Queued").await;
        world.drop_reports().await;
        tokio::time::sleep(Duration::from_millis(rng.between(0, 1500))).await;
        cluster.restart();
        restarts += 1;
        assert!(daemon.alive(), "the daemon exited when PostgreSQL restarted");
    }
    world.settle(&mut [&mut daemon], SETTLE).await;
    assert!(daemon.alive(), "the daemon carried on after {restarts} PostgreSQL restarts");
    daemon.kill();

    let figures = world.check().await;
    // The outages were felt (database errors logged) and ridden out by the same process.
    let errors = world.log_lines("\"level\":\"ERROR\"") + world.log_lines("\"level\":\"WARN\"");
    figures.assert_clean(
        "postgres restart",
        &format!(
            "seed={seed}, postgres restarts={restarts}, daemon starts={}, errors and warnings logged={errors}, secs={}",
            world.starts,
            world.elapsed().as_secs()
        ),
    );
}

/// `count` daemons with the same config on one PostgreSQL database, loads dropped at random
/// moments while they compete for every fire, file and batch. With `kill_one`, after each
/// export one daemon picked at random is SIGKILLed and a new one started in its place, so the
/// others take over what it left (a batch in flight, a file in hand, the schedule).
async fn several_daemons(count: usize, kill_one: bool, test: &str) {
    let Some(pg) = PgDatabase::create().await else { return };
    let seed = seed();
    eprintln!("faults[{test}]: seed={seed} (replay: FAULTS_SEED={seed})");
    let mut rng = rng(seed, test);
    let mut world = World::new(&pg.url, 90, 15).await;

    let mut daemons: Vec<_> = (0..count).map(|_| world.start()).collect();
    let mut kills = 0;
    while world.drop_next_loads() {
        world.drop_reports().await;
        tokio::time::sleep(Duration::from_millis(rng.between(300, 2000))).await;
        if kill_one {
            let victim = usize::try_from(rng.between(0, count as u64)).expect("below count");
            daemons[victim].kill();
            kills += 1;
            daemons[victim] = world.start();
        }
    }
    let mut running: Vec<&mut world::Daemon> = daemons.iter_mut().collect();
    world.settle(&mut running, SETTLE).await;
    for daemon in &mut daemons {
        assert!(daemon.alive(), "{} exited", daemon.name);
        daemon.kill();
    }

    let figures = world.check().await;
    let taken = world.log_lines("fire already taken");
    figures.assert_clean(
        test,
        &format!(
            "seed={seed}, daemons={count}, kill points={kills}, fires taken by another={taken}, fires={}, secs={}",
            world.fires(),
            world.elapsed().as_secs()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_postgres_fire_and_process_everything_once() {
    several_daemons(2, false, "two daemons").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_one_postgres_one_killed_at_random_fire_and_process_everything_once() {
    several_daemons(3, true, "three daemons").await;
}
