//! Leader leases (docs/design.md §9, docs/reliability.md rule 4): several daemons may share one PostgreSQL;
//! one of them holds a role (the scheduler) through a lease row it renews. A holder that dies
//! stops renewing and another daemon takes the role once the lease has run out. Expiry is
//! measured on the database clock. The lease only saves duplicate work: a fire, a batch and
//! a report file stay single through their unique constraints even if two daemons both
//! believe they lead for a moment.

use std::time::Duration;

use super::{Store, StoreError};

// DIALECT: lease arithmetic on the database clock.
const TAKE_POSTGRES: &str = "INSERT INTO leader_leases (role, holder, acquired_at, until) \
    VALUES ($1, $2, now(), now() + make_interval(secs => $3)) \
    ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until, \
    acquired_at = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.acquired_at ELSE excluded.acquired_at END \
    WHERE leader_leases.holder = excluded.holder OR leader_leases.until <= now() \
    RETURNING holder";
const TAKE_SQLITE: &str = "INSERT INTO leader_leases (role, holder, acquired_at, until) \
    VALUES ($1, $2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || $3 || ' seconds')) \
    ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until, \
    acquired_at = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.acquired_at ELSE excluded.acquired_at END \
    WHERE leader_leases.holder = excluded.holder OR leader_leases.until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
    RETURNING holder";

/// The lease role of the daemon that runs the schedules.
pub const SCHEDULER_ROLE: &str = "scheduler";

/// Who holds a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    /// Whether the lease is still running (on the database clock).
    pub live: bool,
}

impl Store {
    /// Takes or renews the lease on `role` for `holder` for `ttl`. `true` when `holder` now
    /// holds it; `false` while another daemon's lease runs.
    pub async fn take_lease(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let secs = ttl.as_secs_f64();
        let row: Option<(String,)> = match self {
            Store::Postgres(pool) => {
                sqlx::query_as(TAKE_POSTGRES).bind(role).bind(holder).bind(secs).fetch_optional(pool).await?
            }
            Store::Sqlite(pool) => {
                sqlx::query_as(TAKE_SQLITE).bind(role).bind(holder).bind(secs).fetch_optional(pool).await?
            }
        };
        Ok(row.is_some_and(|(h,)| h == holder))
    }

    /// Gives a role up (on shutdown), so another daemon takes it at once.
    pub async fn release_lease(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM leader_leases WHERE role = $1 AND holder = $2")
                .bind(role)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The daemon holding `role`, if any has held it.
    pub async fn lease_holder(&self, role: &str) -> Result<Option<LeaseHolder>, StoreError> {
        // DIALECT: "still running" on the database clock.
        let row: Option<(String, bool)> =
            match self {
                Store::Postgres(pool) => {
                    sqlx::query_as("SELECT holder, until > now() FROM leader_leases WHERE role = $1")
                        .bind(role)
                        .fetch_optional(pool)
                        .await?
                }
                Store::Sqlite(pool) => sqlx::query_as(
                    "SELECT holder, until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM leader_leases WHERE role = $1",
                )
                .bind(role)
                .fetch_optional(pool)
                .await?,
            };
        Ok(row.map(|(holder, live)| LeaseHolder { holder, live }))
    }
}
