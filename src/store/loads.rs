//! Load import: the rows of a load file (or of `factord loads import`) applied in one
//! transaction by the rule of [`decide_import`].
//!
//! The steps are macros rather than functions because each runs inside [`on_pool!`], on a
//! transaction of either backend; each is named for what it does and read in the order
//! [`Store::import_loads`] calls them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{
    BeginWrite, COMMAND_LOADS_CHANNEL, ImportCounts, ImportRequest, ImportResult, RowOutcome, RowResult, Store,
    StoreError,
};
use crate::domain::{Customer, ImportDecision, LoadFields, LoadStatus, Money, StoredLoad, decide_import};

/// Writes the file's record first, so that a concurrent pickup of the same content waits here
/// and then finds it taken; evaluates to whether this import holds it. A channel that does not
/// dedupe (`loads import`) only renews its record.
macro_rules! claim_file_record {
    ($tx:expr, $file:expr, $now:expr) => {{
        // DIALECT: none; both backends take ON CONFLICT.
        let sql = if $file.channel == COMMAND_LOADS_CHANNEL {
            "INSERT INTO inbox_files (channel, sha256, file_name, processed_at, summary) VALUES ($1, $2, $3, $4, '') \
             ON CONFLICT (channel, sha256) DO UPDATE SET file_name = excluded.file_name, \
             processed_at = excluded.processed_at, summary = ''"
        } else {
            "INSERT INTO inbox_files (channel, sha256, file_name, processed_at, summary) VALUES ($1, $2, $3, $4, '') \
             ON CONFLICT (channel, sha256) DO NOTHING"
        };
        sqlx::query(sql)
            .bind($file.channel)
            .bind($file.sha256)
            .bind($file.file_name)
            .bind($now)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            > 0
    }};
}

/// The stored load with this number and its id, if there is one.
macro_rules! stored_load {
    ($tx:expr, $load_number:expr) => {{
        let row = sqlx::query(
            "SELECT id, status, invoice_number, subsidiary, customer_id, amount_cents, delivered_at, pod, \
             rate_confirmation, po_number, factor_reference, truck, pickup_city, pickup_state, delivery_city, \
             delivery_state FROM loads WHERE load_number = $1",
        )
        .bind($load_number)
        .fetch_optional(&mut *$tx)
        .await?;
        match row {
            Some(r) => {
                let status: String = r.try_get("status")?;
                let id: i64 = r.try_get("id")?;
                Some((
                    id,
                    StoredLoad {
                        status: LoadStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        invoice_number: r.try_get("invoice_number")?,
                        fields: LoadFields {
                            subsidiary: r.try_get("subsidiary")?,
                            customer_id: r.try_get("customer_id")?,
                            amount: Money::from_cents(r.try_get("amount_cents")?),
                            delivered_at: r.try_get("delivered_at")?,
                            pod: r.try_get("pod")?,
                            rate_confirmation: r.try_get("rate_confirmation")?,
                            po_number: r.try_get("po_number")?,
                            factor_reference: r.try_get("factor_reference")?,
                            truck: r.try_get("truck")?,
                            pickup_city: r.try_get("pickup_city")?,
                            pickup_state: r.try_get("pickup_state")?,
                            delivery_city: r.try_get("delivery_city")?,
                            delivery_state: r.try_get("delivery_state")?,
                        },
                    },
                ))
            }
            None => None,
        }
    }};
}

/// The customer: created, or updated where the row says something new (a row without an MC or
/// DOT keeps the numbers already known). Evaluates to whether anything was written.
macro_rules! upsert_customer {
    ($tx:expr, $customer:expr, $now:expr) => {{
        let customer: &Customer = $customer;
        let known = sqlx::query("SELECT name, mc, dot FROM customers WHERE id = $1")
            .bind(&customer.id)
            .fetch_optional(&mut *$tx)
            .await?;
        let changed = match &known {
            None => true,
            Some(c) => {
                let name: String = c.try_get("name")?;
                let mc: Option<String> = c.try_get("mc")?;
                let dot: Option<String> = c.try_get("dot")?;
                name != customer.name
                    || (customer.mc.is_some() && mc != customer.mc)
                    || (customer.dot.is_some() && dot != customer.dot)
            }
        };
        if changed {
            sqlx::query(
                "INSERT INTO customers (id, name, mc, dot, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, mc = COALESCE(excluded.mc, customers.mc), \
                 dot = COALESCE(excluded.dot, customers.dot), updated_at = excluded.updated_at",
            )
            .bind(&customer.id)
            .bind(&customer.name)
            .bind(&customer.mc)
            .bind(&customer.dot)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        changed
    }};
}

/// Binds a load's fields, in the order the insert and the update list their columns: one list
/// to extend when loads gain a field.
macro_rules! bind_load_fields {
    ($query:expr, $f:expr) => {
        $query
            .bind(&$f.subsidiary)
            .bind(&$f.customer_id)
            .bind($f.amount.cents())
            .bind(&$f.delivered_at)
            .bind(&$f.pod)
            .bind(&$f.rate_confirmation)
            .bind(&$f.po_number)
            .bind(&$f.factor_reference)
            .bind(&$f.truck)
            .bind(&$f.pickup_city)
            .bind(&$f.pickup_state)
            .bind(&$f.delivery_city)
            .bind(&$f.delivery_state)
    };
}

/// A new load with its first history row.
macro_rules! insert_load {
    ($tx:expr, $input:expr, $now:expr, $cause:expr) => {{
        let input = $input;
        let f = &input.fields;
        let query = sqlx::query(
            "INSERT INTO loads (load_number, subsidiary, customer_id, amount_cents, delivered_at, pod, \
             rate_confirmation, po_number, factor_reference, truck, pickup_city, pickup_state, delivery_city, \
             delivery_state, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id",
        )
        .bind(&input.load_number);
        let id: i64 = bind_load_fields!(query, f)
            .bind(input.status.as_str())
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?
            .try_get("id")?;
        insert_history!($tx, id, None::<&str>, input.status.as_str(), $now, $cause);
    }};
}

/// A stored load's fields replaced by the row's (columns the row does not carry keep their
/// values), released if the rule says so: a compare-and-set on the status read before, so a
/// concurrent move makes the whole import fail with [`StoreError::Conflict`] and its caller
/// retries it.
macro_rules! update_load {
    ($tx:expr, $input:expr, $id:expr, $stored:expr, $release:expr, $now:expr, $cause:expr) => {{
        let (input, stored): (&crate::domain::LoadInput, &StoredLoad) = ($input, $stored);
        let new_status = if $release { LoadStatus::Released } else { stored.status };
        let f = &input.fields_over(&stored.fields);
        let query = sqlx::query(
            // A Released load an invoice pass is rendering loses that pass's claim, so the
            // packet is made again from the new fields; a number taken under another
            // subsidiary's prefix is dropped (it was never sent anywhere).
            "UPDATE loads SET subsidiary = $1, customer_id = $2, amount_cents = $3, delivered_at = $4, pod = $5, \
             rate_confirmation = $6, po_number = $7, factor_reference = $8, truck = $9, pickup_city = $10, \
             pickup_state = $11, delivery_city = $12, delivery_state = $13, status = $14, updated_at = $15, \
             claim_token = CASE WHEN status = 'Released' THEN NULL ELSE claim_token END, \
             claimed_until = CASE WHEN status = 'Released' THEN NULL ELSE claimed_until END, \
             invoice_number = CASE WHEN status IN ('Delivered', 'Released') AND subsidiary <> $1 THEN NULL \
             ELSE invoice_number END \
             WHERE id = $16 AND status = $17",
        );
        let updated = bind_load_fields!(query, f)
            .bind(new_status.as_str())
            .bind($now)
            .bind($id)
            .bind(stored.status.as_str())
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::Conflict {
                load: input.load_number.clone(),
                expected: stored.status,
                actual: new_status,
            });
        }
        if $release {
            insert_history!(
                $tx,
                $id,
                Some(LoadStatus::Delivered.as_str()),
                LoadStatus::Released.as_str(),
                $now,
                $cause
            );
        }
    }};
}

/// One row: read what is stored, decide, write the customer and the load. Evaluates to the
/// row's [`RowOutcome`]; a refused row writes nothing.
macro_rules! import_row {
    ($tx:expr, $input:expr, $cause:expr, $now:expr) => {{
        let input: &crate::domain::LoadInput = $input;
        let existing = stored_load!($tx, &input.load_number);
        match decide_import(existing.as_ref().map(|(_, s)| s), input) {
            ImportDecision::Refuse(reason) => RowOutcome::Rejected(reason),
            decision => {
                let customer_changed = upsert_customer!($tx, &input.customer, $now);
                match (decision, existing) {
                    (ImportDecision::Insert, _) => {
                        insert_load!($tx, input, $now, $cause);
                        RowOutcome::Imported
                    }
                    (ImportDecision::Update { changes, release }, Some((id, stored))) => {
                        update_load!($tx, input, id, &stored, release, $now, $cause);
                        let mut described: Vec<String> = changes.iter().map(ToString::to_string).collect();
                        if release {
                            described.push("status Delivered → Released".to_string());
                        }
                        if customer_changed {
                            described.push("customer details".to_string());
                        }
                        RowOutcome::Updated(described.join(", "))
                    }
                    (ImportDecision::Unchanged, _) if customer_changed => {
                        RowOutcome::Updated("customer details".to_string())
                    }
                    _ => RowOutcome::Unchanged,
                }
            }
        }
    }};
}

impl Store {
    /// Imports load rows in one transaction: customers created or updated, loads inserted or
    /// updated by the rule of [`decide_import`], a history row for every status set, and, for
    /// an inbox file, the file's record. Rows the rule refuses are reported and change nothing.
    /// If the file's content was already processed, nothing is applied and `duplicate_of` says
    /// when.
    pub async fn import_loads(&self, request: ImportRequest<'_>) -> Result<ImportResult, StoreError> {
        let now: DateTime<Utc> = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(file) = &request.file
                && !claim_file_record!(tx, file, now)
            {
                tx.rollback().await?;
                let previous = self.find_inbox_file(file.channel, file.sha256).await?;
                return Ok(ImportResult { rows: Vec::new(), duplicate_of: previous });
            }
            let mut results = Vec::with_capacity(request.rows.len());
            for row in request.rows {
                let cause = format!("{} row {}", request.cause, row.row);
                let outcome = import_row!(tx, &row.input, &cause, now);
                results.push(RowResult { row: row.row, load_number: row.input.load_number.clone(), outcome });
                if let Some(progress) = request.progress {
                    progress(results.len());
                }
            }
            if let Some(file) = &request.file {
                let summary = serde_json::to_string(&ImportCounts::of(&results, request.file_errors))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query("UPDATE inbox_files SET summary = $1 WHERE channel = $2 AND sha256 = $3")
                    .bind(summary)
                    .bind(file.channel)
                    .bind(file.sha256)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(ImportResult { rows: results, duplicate_of: None })
        })
    }
}
