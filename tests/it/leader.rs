//! Leader leases: one holder at a time, renewed by its holder, taken over once it runs out.

use std::time::Duration;

use crate::both_backends;
use crate::harness::wait_for;

both_backends!(a_lease_has_one_holder_and_passes_on_when_it_runs_out, |env| {
    let store = &env.store;
    let long = Duration::from_secs(60);
    assert!(store.take_lease("scheduler", "daemon-a", long).await.expect("take"));
    assert!(!store.take_lease("scheduler", "daemon-b", long).await.expect("take"), "a live lease is not taken");
    assert!(store.take_lease("scheduler", "daemon-a", long).await.expect("renew"), "its holder renews it");
    assert!(store.take_lease("other-role", "daemon-b", long).await.expect("take"), "roles are separate");
    let holder = store.lease_holder("scheduler").await.expect("holder").expect("held");
    assert_eq!((holder.holder.as_str(), holder.live), ("daemon-a", true));

    // daemon-a stops renewing (it died): its short lease runs out and daemon-b takes the role.
    assert!(store.take_lease("scheduler", "daemon-a", Duration::from_millis(300)).await.expect("renew short"));
    wait_for(Duration::from_secs(10), "the lease to pass to daemon-b", || async {
        store.take_lease("scheduler", "daemon-b", long).await.expect("take").then_some(())
    })
    .await;
    assert!(!store.take_lease("scheduler", "daemon-a", long).await.expect("take"), "the old holder lost it");

    // Released on shutdown: the next daemon takes it at once.
    store.release_lease("scheduler", "daemon-b").await.expect("release");
    assert_eq!(store.lease_holder("scheduler").await.expect("holder"), None);
    assert!(store.take_lease("scheduler", "daemon-c", long).await.expect("take"));
});
