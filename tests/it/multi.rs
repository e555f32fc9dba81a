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
    assert!(
        logs.iter().any(|l| l.contains("fire already taken")),
        "the daemons competed for the same fires (one saw the other's)"
    );
}
