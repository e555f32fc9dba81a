//! Loads already submitted to a factor, written straight into the database for report tests
//! and the report benchmark: one customer, one `sent` batch of `provider`, and `count` loads in
//! `status` with invoice numbers `<prefix>INV<nnnnnn>` and load numbers `<prefix><nnnnnn>` (at least six digits),
//! each with its history row. Generated in SQL (`generate_series` / a recursive CTE) so 100k
//! loads take a second, not minutes.

use chrono::Utc;
use factord::store::Store;

pub struct Seed<'a> {
    pub subsidiary: &'a str,
    pub provider: &'a str,
    pub prefix: &'a str,
    pub count: i64,
    pub amount_cents: i64,
    pub status: &'a str,
}

impl Seed<'_> {
    pub fn load_number(&self, i: i64) -> String {
        format!("{}{i:06}", self.prefix)
    }

    pub fn invoice_number(&self, i: i64) -> String {
        format!("{}INV{i:06}", self.prefix)
    }
}

/// Writes the seed's loads. Each call needs its own `prefix`.
pub async fn seed(store: &Store, seed: &Seed<'_>) {
    let now = Utc::now();
    let batch = format!("seed-{}-{}", seed.provider, seed.prefix);
    let with_batch = seed.status != "Released" && seed.status != "Queued";
    macro_rules! run {
        ($pool:expr, $series:literal, $pad:literal) => {{
            let pool = $pool;
            sqlx::query(
                "INSERT INTO customers (id, name, mc, created_at, updated_at) VALUES ('BRK-1', 'Blue Brokerage', '123456', $1, $1) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(now)
            .execute(pool)
            .await
            .expect("customer");
            if with_batch {
                sqlx::query(
                    "INSERT INTO batches (id, subsidiary, provider, number, batch_date, status, invoice_count, total_cents, cause, created_at) \
                     VALUES ($1, $2, $3, (SELECT COALESCE(MAX(number), 0) + 1 FROM batches WHERE subsidiary = $2), '2026-11-30', 'sent', $4, $5, 'seed', $6)",
                )
                .bind(&batch)
                .bind(seed.subsidiary)
                .bind(seed.provider)
                .bind(seed.count)
                .bind(seed.count * seed.amount_cents)
                .bind(now)
                .execute(pool)
                .await
                .expect("batch");
            }
            sqlx::query(concat!(
                $series,
                " INSERT INTO loads (load_number, subsidiary, customer_id, amount_cents, status, invoice_number, batch_id, created_at, updated_at) \
                 SELECT $1 || ", $pad, ", $2, 'BRK-1', $3, $4, $1 || 'INV' || ", $pad, ", $5, $6, $6 FROM seq"
            ))
            .bind(seed.prefix)
            .bind(seed.subsidiary)
            .bind(seed.amount_cents)
            .bind(seed.status)
            .bind(if with_batch { Some(batch.clone()) } else { None })
            .bind(now)
            .bind(seed.count)
            .execute(pool)
            .await
            .expect("loads");
            sqlx::query(
                "INSERT INTO load_history (load_id, from_status, to_status, at, cause) \
                 SELECT id, NULL, status, $2, 'seed' FROM loads WHERE load_number LIKE $1 || '%' ORDER BY id",
            )
            .bind(seed.prefix)
            .bind(now)
            .execute(pool)
            .await
            .expect("history");
        }};
    }
    match store {
        Store::Postgres(pool) => {
            run!(
                pool,
                "WITH seq(g) AS (SELECT generate_series(1, $7::bigint))",
                "lpad(g::text, greatest(6, length(g::text)), '0')"
            )
        }
        Store::Sqlite(pool) => run!(
            pool,
            "WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < $7)",
            "(CASE WHEN g < 1000000 THEN substr('000000' || g, -6) ELSE g END)"
        ),
    }
}
