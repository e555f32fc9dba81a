//! Store methods of broker credit checks: every answer a factor gave is appended to
//! `credit_checks` (history kept, never changed); the latest per customer and provider is the
//! one the invoice job, the refresh job and the submission pre-flight act on.
//!
//! An approved answer clears, in the same transaction, the `credit_declined` flags it resolves.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BeginWrite, Store, StoreError};
use crate::domain::{CreditResult, Customer, ExceptionKind};

/// A factor's answer, to record.
#[derive(Clone, Debug)]
pub struct NewCreditCheck<'a> {
    pub customer_id: &'a str,
    pub provider: &'a str,
    /// The subsidiary whose credentials asked.
    pub subsidiary: &'a str,
    pub result: CreditResult,
    /// The factor's own words.
    pub factor_text: &'a str,
    pub checked_at: DateTime<Utc>,
    /// What asked (`refresh`, `invoice L-1`, `submit`, `command`).
    pub cause: &'a str,
}

/// One recorded credit check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditCheckRecord {
    pub id: i64,
    pub customer_id: String,
    pub provider: String,
    pub subsidiary: String,
    pub result: CreditResult,
    pub factor_text: String,
    pub checked_at: DateTime<Utc>,
    pub cause: String,
}

/// A customer with loads waiting to be invoiced or submitted (Released or Queued) in one
/// subsidiary: who the refresh job may need to check, and with whose credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditCandidate {
    pub customer: Customer,
    pub subsidiary: String,
}

/// The columns `check_from_row!` reads, as a literal so queries stay `&'static str`.
macro_rules! check_columns {
    () => {
        "id, customer_id, provider, subsidiary, result, factor_text, checked_at, cause"
    };
}

/// Reads a [`CreditCheckRecord`] from a row selected with `check_columns!()` (either backend).
macro_rules! check_from_row {
    ($row:expr) => {{
        let row = $row;
        let result: String = row.try_get("result")?;
        CreditCheckRecord {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            provider: row.try_get("provider")?,
            subsidiary: row.try_get("subsidiary")?,
            result: CreditResult::from_str(&result).map_err(StoreError::Corrupt)?,
            factor_text: row.try_get("factor_text")?,
            checked_at: row.try_get("checked_at")?,
            cause: row.try_get("cause")?,
        }
    }};
}

impl Store {
    /// Appends a check. When it is an approval, the open `credit_declined` flags of the
    /// customer's Queued loads in `clears_in` (the subsidiaries factoring with this provider)
    /// are cleared with their waiting reason, in the same transaction: the next batch takes
    /// them.
    pub async fn record_credit_check(
        &self,
        check: &NewCreditCheck<'_>,
        clears_in: &[&str],
    ) -> Result<CreditCheckRecord, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO credit_checks (customer_id, provider, subsidiary, result, factor_text, checked_at, cause) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(check.customer_id)
            .bind(check.provider)
            .bind(check.subsidiary)
            .bind(check.result.as_str())
            .bind(check.factor_text)
            .bind(check.checked_at)
            .bind(check.cause)
            .fetch_one(&mut *tx)
            .await?;
            if check.result == CreditResult::Approved {
                for subsidiary in clears_in {
                    sqlx::query(
                        "UPDATE loads SET waiting_reason = NULL WHERE customer_id = $1 AND subsidiary = $2 \
                         AND status = 'Queued' AND id IN (SELECT load_id FROM load_exceptions \
                         WHERE kind = $3 AND cleared_at IS NULL)",
                    )
                    .bind(check.customer_id)
                    .bind(subsidiary)
                    .bind(ExceptionKind::CreditDeclined.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE load_exceptions SET cleared_at = $1 WHERE kind = $2 AND cleared_at IS NULL \
                         AND load_id IN (SELECT id FROM loads WHERE customer_id = $3 AND subsidiary = $4 \
                         AND status = 'Queued')",
                    )
                    .bind(check.checked_at)
                    .bind(ExceptionKind::CreditDeclined.as_str())
                    .bind(check.customer_id)
                    .bind(subsidiary)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(CreditCheckRecord {
                id,
                customer_id: check.customer_id.to_string(),
                provider: check.provider.to_string(),
                subsidiary: check.subsidiary.to_string(),
                result: check.result,
                factor_text: check.factor_text.to_string(),
                checked_at: check.checked_at,
                cause: check.cause.to_string(),
            })
        })
    }

    /// The latest check of a customer with a provider, if any.
    pub async fn latest_credit_check(
        &self,
        customer_id: &str,
        provider: &str,
    ) -> Result<Option<CreditCheckRecord>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", check_columns!(), " FROM credit_checks WHERE customer_id = $1 AND provider = $2 \
                 ORDER BY id DESC LIMIT 1"
            ))
            .bind(customer_id)
            .bind(provider)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(check_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The latest check of every customer with every provider, by customer then provider.
    pub async fn latest_credit_checks(&self) -> Result<Vec<CreditCheckRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", check_columns!(), " FROM credit_checks c WHERE id = (SELECT MAX(id) FROM credit_checks l \
                 WHERE l.customer_id = c.customer_id AND l.provider = c.provider) ORDER BY customer_id, provider"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(check_from_row!(row))).collect()
        })
    }

    /// A customer's checks with a provider, newest first, at most `limit`.
    pub async fn credit_history(
        &self,
        customer_id: &str,
        provider: &str,
        limit: i64,
    ) -> Result<Vec<CreditCheckRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", check_columns!(), " FROM credit_checks WHERE customer_id = $1 AND provider = $2 \
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(customer_id)
            .bind(provider)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(check_from_row!(row))).collect()
        })
    }

    /// Every (customer, subsidiary) with loads in Released or Queued, by customer.
    pub async fn credit_candidates(&self) -> Result<Vec<CreditCandidate>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT DISTINCT c.id, c.name, c.mc, c.dot, l.subsidiary FROM loads l \
                 JOIN customers c ON c.id = l.customer_id WHERE l.status IN ('Released', 'Queued') \
                 ORDER BY c.id, l.subsidiary",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(CreditCandidate {
                        customer: Customer {
                            id: r.try_get("id")?,
                            name: r.try_get("name")?,
                            mc: r.try_get("mc")?,
                            dot: r.try_get("dot")?,
                        },
                        subsidiary: r.try_get("subsidiary")?,
                    })
                })
                .collect()
        })
    }

    /// A customer and the subsidiaries it has loads in (those with loads in Released or
    /// Queued first), or `None` for a customer never imported.
    pub async fn credit_customer(&self, customer_id: &str) -> Result<Option<(Customer, Vec<String>)>, StoreError> {
        on_pool!(self, pool => {
            let row = sqlx::query("SELECT id, name, mc, dot FROM customers WHERE id = $1")
                .bind(customer_id)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let customer = Customer {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                mc: row.try_get("mc")?,
                dot: row.try_get("dot")?,
            };
            let subsidiaries: Vec<String> = sqlx::query_scalar(
                "SELECT subsidiary FROM loads WHERE customer_id = $1 GROUP BY subsidiary \
                 ORDER BY MAX(CASE WHEN status IN ('Released', 'Queued') THEN 1 ELSE 0 END) DESC, subsidiary",
            )
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
            Ok(Some((customer, subsidiaries)))
        })
    }

    /// Raises a load's `credit_declined` flag with `detail`, or brings the detail of the open
    /// one up to date (a later check has a later date).
    pub async fn flag_credit_declined(&self, load_id: i64, detail: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE load_exceptions SET detail = $1 WHERE load_id = $2 AND kind = $3 AND cleared_at IS NULL",
            )
            .bind(detail)
            .bind(load_id)
            .bind(ExceptionKind::CreditDeclined.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                sqlx::query("INSERT INTO load_exceptions (load_id, kind, detail, raised_at) VALUES ($1, $2, $3, $4)")
                    .bind(load_id)
                    .bind(ExceptionKind::CreditDeclined.as_str())
                    .bind(detail)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
