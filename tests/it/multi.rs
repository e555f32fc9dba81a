//! Several daemons on one PostgreSQL database with the same configuration and schedule: every
//! fire is taken by one of them, every invoice is submitted once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use factord::config::{Environment, Settings};
use factord::domain::LoadStatus;
use factord::store::{LoadFilter, Store};

use crate::harness::{PgDatabase, SUBSIDIARIES, loads_csv, wait_for, write_config};

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "two daemons' configs, the run, then every invariant checked")]
async fn two_daemons_on_one_postgres_submit_every_invoice_once() {
    let Some(pg) = PgDatabase::create().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let subsidiaries = SUBSIDIARIES.replace("schedule = \"0 0 16 * * Mon-Fri\"", "schedule = \"* * * * * *\"");
    let config = write_config(root, &pg.url, "");
    let text = std::fs::read_to_string(&config).expect("config").replace(SUBSIDIARIES, &subsidiaries);
    std::fs::write(&config, text).expect("config");
    std::fs::create_dir_all(root.join("documents")).expect("mkdir");
    std::fs::write(root.join("documents/rc.pdf"), crate::pdfs::rate_confirmation("M", 1)).expect("rc");
    std::fs::write(
        root.join("documents/pod.pdf"),
        crate::pdfs::pod_with_jpeg("M", &crate::pdfs::scanned_jpeg(80, 60, 2)),
    )
    .expect("pod");

    let start = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_factord"))
            .current_dir(root)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join(format!("{name}.log"))).expect("log"))
            .spawn()
            .expect("start factord")
    };
    let _daemons = Daemons(vec![start("a"), start("b")]);

    let settings = Settings::load(&config, &Environment::new()).expect("settings");
    let store = Store::connect(&settings.database).await.expect("connect");
    wait_for(Duration::from_secs(30), "both daemons to have migrated", || async {
        store.ping().await.ok()?;
        store.list_loads(&LoadFilter::default()).await.ok()
    })
    .await;

    // Three waves of loads, a few fires apart, so both daemons compete for many fires.
    let count = 30;
    for wave in 0..3 {
        let rows: Vec<String> = (0..10)
            .map(|i| format!("M-{:02},acme-east,C-1,Broker,123456,{}.00,,,pod.pdf,rc.pdf,,,", wave * 10 + i, 100 + i))
            .collect();
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let staged = root.join(format!("wave-{wave}.csv"));
        std::fs::write(&staged, loads_csv(&refs)).expect("write");
        std::fs::create_dir_all(root.join("inbox/loads")).expect("mkdir");
        std::fs::rename(&staged, root.join(format!("inbox/loads/wave-{wave}.csv"))).expect("drop");
        let done = (wave + 1) * 10;
        wait_for(Duration::from_secs(60), "the wave to be submitted", || async {
            let invoiced = store
                .list_loads(&LoadFilter { status: Some(LoadStatus::Invoiced), ..LoadFilter::default() })
                .await
                .ok()?;
            (invoiced.len() == done).then_some(())
        })
        .await;
    }

    let loads = store.list_loads(&LoadFilter::default()).await.expect("list");
    assert_eq!(loads.len(), count);
    let mut batches = std::collections::BTreeSet::new();
    for load in &loads {
        assert_eq!(load.load.status, LoadStatus::Invoiced);
        let detail = store.load_detail(&load.load.load_number).await.expect("detail").expect("load");
        assert_eq!(
            detail.history.iter().filter(|h| h.to == LoadStatus::Invoiced).count(),
            1,
            "{}",
            load.load.load_number
        );
        batches.insert(load.load.batch_id.clone().expect("batch"));
    }
    // Every invoice went out in exactly one delivered batch folder.
    let mut delivered = Vec::new();
    for entry in std::fs::read_dir(root.join("outbox/acme-east/capital_depot")).expect("outbox") {
        let folder = entry.expect("entry").path();
        for file in std::fs::read_dir(&folder).expect("folder") {
            let name = file.expect("file").file_name().to_string_lossy().into_owned();
            if name.ends_with(".pdf") {
                delivered.push(name);
            }
        }
    }
    delivered.sort();
    let before = delivered.len();
    delivered.dedup();
    assert_eq!((before, delivered.len()), (count, count), "each invoice delivered once");
    let recent = store.recent_batches(100).await.expect("batches");
    assert_eq!(recent.iter().map(|b| b.accepted).sum::<i64>(), count as i64);
    let logs = ["a", "b"].map(|n| std::fs::read_to_string(root.join(format!("{n}.log"))).unwrap_or_default());
    assert_eq!(
        logs.iter().filter(|l| l.contains("this daemon runs the schedules")).count(),
        1,
        "one daemon holds the scheduler lease; the other invoices and ingests"
    );
}

/// Starts `factord run` on `config` with its log in `<name>.log` under `root`.
fn start_daemon(root: &std::path::Path, config: &std::path::Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_factord"))
        .current_dir(root)
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join(format!("{name}.log"))).expect("log"))
        .spawn()
        .expect("start factord")
}

fn log_of(root: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(root.join(format!("{name}.log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_moves_to_another_daemon_within_a_minute_when_its_holder_is_killed() {
    let Some(pg) = PgDatabase::create().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // The shipped default lease (30 s): the takeover time asserted is the one users get.
    let config = write_config(root, &pg.url, "");
    let settings = Settings::load(&config, &Environment::new()).expect("settings");
    let mut first = Daemons(vec![start_daemon(root, &config, "a")]);
    wait_for(Duration::from_secs(30), "the first daemon to take the schedules", || {
        let leads = log_of(root, "a").contains("this daemon runs the schedules");
        async move { leads.then_some(()) }
    })
    .await;
    let second = Daemons(vec![start_daemon(root, &config, "b")]);
    wait_for(Duration::from_secs(30), "the second daemon to see the first leads", || {
        let follows = log_of(root, "b").contains("another daemon runs the schedules");
        async move { follows.then_some(()) }
    })
    .await;
    let store = Store::connect(&settings.database).await.expect("connect");
    let holder = store.lease_holder("scheduler").await.expect("holder").expect("held");
    assert!(holder.holder.contains(&format!(":{}:", first.0[0].id())), "{holder:?}");

    // SIGKILL: no chance to release the lease. The second daemon takes over once it runs out.
    first.0[0].kill().expect("kill -9");
    first.0[0].wait().expect("reap");
    let killed = std::time::Instant::now();
    wait_for(Duration::from_secs(60), "the second daemon to take the schedules", || {
        let leads = log_of(root, "b").contains("this daemon runs the schedules");
        async move { leads.then_some(()) }
    })
    .await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(60), "took over after {took:?}");
    eprintln!("the scheduler moved {took:?} after its holder was killed");
    let holder = store.lease_holder("scheduler").await.expect("holder").expect("held");
    assert!(holder.holder.contains(&format!(":{}:", second.0[0].id())), "{holder:?}");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_make_one_batch_per_fire_over_a_hundred_fires() {
    let Some(env) = crate::harness::TestEnv::new(crate::harness::Backend::Postgres).await else { return };
    let documents = env.path("documents");
    std::fs::create_dir_all(&documents).expect("mkdir");
    std::fs::write(documents.join("rc.pdf"), crate::pdfs::rate_confirmation("F", 1)).expect("rc");
    std::fs::write(documents.join("pod.pdf"), crate::pdfs::pod_with_jpeg("F", &crate::pdfs::scanned_jpeg(40, 30, 1)))
        .expect("pod");
    // Three daemons: three connection pools to the same database, racing for every fire.
    let mut stores = vec![env.store.clone()];
    for _ in 0..2 {
        stores.push(Store::connect(&env.settings.database).await.expect("connect"));
    }
    let subsidiary = env.settings.subsidiary("acme-east").expect("acme-east");
    let start = chrono::Utc::now();
    let fires = 100;
    for i in 0..fires {
        // One Queued load with its packet per fire, written straight into the database.
        let prefix = format!("F{i:03}-");
        let seed = crate::seed::Seed {
            subsidiary: "acme-east",
            provider: "capital_depot",
            prefix: &prefix,
            count: 1,
            amount_cents: 10_000 + i,
            status: "Queued",
        };
        crate::seed::seed(&env.store, &seed).await;
        let Store::Postgres(pool) = &env.store else { unreachable!("a PostgreSQL test") };
        sqlx::query("UPDATE loads SET packet_path = $1, packet_noa = $3 WHERE load_number = $2")
            .bind(documents.join("rc.pdf").display().to_string())
            .bind(seed.load_number(1))
            .bind(subsidiary.packet_mark())
            .execute(pool)
            .await
            .expect("packet");
        let at = start + chrono::Duration::seconds(i);
        let settings = &env.settings;
        let outcomes = futures_util::future::join_all(
            stores.iter().map(|store| factord::daemon::fire_once(store, settings, subsidiary, at)),
        )
        .await;
        let submitted = outcomes.iter().filter(|o| **o == factord::daemon::Fired::Submitted).count();
        assert_eq!(submitted, 1, "fire {i}: {outcomes:?}");
    }
    let batches = env.store.recent_batches(1000).await.expect("batches");
    assert_eq!(batches.len(), usize::try_from(fires).expect("a count"), "one batch per fire, not more");
    assert!(batches.iter().all(|b| b.invoice_count == 1 && b.accepted == 1), "{batches:#?}");
    let invoiced = env
        .store
        .list_loads(&LoadFilter { status: Some(LoadStatus::Invoiced), ..LoadFilter::default() })
        .await
        .expect("list");
    assert_eq!(invoiced.len(), usize::try_from(fires).expect("a count"));
    let distinct: std::collections::BTreeSet<_> = invoiced.iter().map(|l| l.load.batch_id.clone()).collect();
    assert_eq!(distinct.len(), usize::try_from(fires).expect("a count"), "every load in its own batch, none in two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_starting_at_once_catch_a_missed_fire_up_once() {
    let Some(env) = crate::harness::TestEnv::new(crate::harness::Backend::Postgres).await else { return };
    let documents = env.path("documents");
    std::fs::create_dir_all(&documents).expect("mkdir");
    std::fs::write(documents.join("rc.pdf"), crate::pdfs::rate_confirmation("C", 1)).expect("rc");
    let seed = crate::seed::Seed {
        subsidiary: "acme-east",
        provider: "capital_depot",
        prefix: "C-",
        count: 2,
        amount_cents: 10_000,
        status: "Queued",
    };
    crate::seed::seed(&env.store, &seed).await;
    let subsidiary = env.settings.subsidiary("acme-east").expect("acme-east");
    let Store::Postgres(pool) = &env.store else { unreachable!("a PostgreSQL test") };
    sqlx::query("UPDATE loads SET packet_path = $1, packet_noa = $2")
        .bind(documents.join("rc.pdf").display().to_string())
        .bind(subsidiary.packet_mark())
        .execute(pool)
        .await
        .expect("packets");
    // Weekdays at 16:00 Chicago; the last fire recorded a week before "now", a Wednesday 18:00.
    let schedule = subsidiary.factoring.as_ref().and_then(|f| f.schedule.clone()).expect("schedule");
    let utc = |t: &str| chrono::DateTime::parse_from_rfc3339(t).expect("time").with_timezone(&chrono::Utc);
    let now = utc("2026-12-02T18:00:00-06:00");
    assert!(env.store.record_fire("acme-east", utc("2026-11-25T16:00:00-06:00")).await.expect("record"));
    let mut stores = vec![env.store.clone()];
    for _ in 0..2 {
        stores.push(Store::connect(&env.settings.database).await.expect("connect"));
    }
    // Each daemon reads the last fire at its start (all before any catches up), then fires.
    let mut missed = Vec::new();
    for store in &stores {
        let last = store.last_fire("acme-east").await.expect("last fire");
        let at = factord::daemon::missed_fire(
            &env.settings,
            &schedule,
            subsidiary.timezone,
            last,
            now,
            "submission",
            "acme-east",
        );
        assert_eq!(at, Some(utc("2026-12-02T16:00:00-06:00")), "the latest of the five missed fires");
        missed.push(at.expect("missed"));
    }
    let outcomes = futures_util::future::join_all(
        stores.iter().zip(missed).map(|(store, at)| factord::daemon::fire_once(store, &env.settings, subsidiary, at)),
    )
    .await;
    let submitted = outcomes.iter().filter(|o| **o == factord::daemon::Fired::Submitted).count();
    assert_eq!(submitted, 1, "{outcomes:?}");
    let batches = env.store.recent_batches(10).await.expect("batches");
    assert_eq!(batches.len(), 1, "one run for all missed fires: {batches:#?}");
}
