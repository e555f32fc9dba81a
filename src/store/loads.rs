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
use crate::domain::{
    Customer, ImportDecision, LoadExtras, LoadFields, LoadLine, LoadStatus, Money, StoredLoad, decide_import,
};

/// `load_documents.source` of the documents a load import records.
const IMPORT_SOURCE: &str = "import";

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

/// A stored load's line items, its current BOL and lumper receipt (whoever recorded them), and
/// the other documents an import recorded.
macro_rules! stored_extras {
    ($tx:expr, $id:expr) => {{
        let lines =
            sqlx::query("SELECT description, amount_cents FROM load_lines WHERE load_id = $1 ORDER BY position")
                .bind($id)
                .fetch_all(&mut *$tx)
                .await?
                .iter()
                .map(|r| {
                    Ok::<LoadLine, sqlx::Error>(LoadLine {
                        description: r.try_get("description")?,
                        amount: Money::from_cents(r.try_get("amount_cents")?),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
        let documents = sqlx::query(
            "SELECT kind, path, source FROM load_documents WHERE load_id = $1 AND replaced_at IS NULL ORDER BY id",
        )
        .bind($id)
        .fetch_all(&mut *$tx)
        .await?;
        let mut extras = LoadExtras { lines, ..LoadExtras::default() };
        for r in &documents {
            let (kind, path, source): (String, String, String) =
                (r.try_get("kind")?, r.try_get("path")?, r.try_get("source")?);
            match kind.as_str() {
                "bol" => extras.bol = Some(path),
                "lumper" => extras.lumper_receipt = Some(path),
                _ if source == IMPORT_SOURCE => extras.other_documents.push(path),
                _ => {}
            }
        }
        extras
    }};
}

/// Writes the parts of `new` that differ from `old` (nothing stored yet: `old` is empty):
/// the lines replaced as a whole, a BOL or lumper receipt replacing the current one (as
/// `loads docs` does), the other documents an import recorded replaced by the row's (those of
/// `loads docs` stay). Replaced documents keep their rows, with `replaced_at` set.
macro_rules! write_extras {
    ($tx:expr, $id:expr, $old:expr, $new:expr, $now:expr, $cause:expr) => {{
        let (old, new): (&LoadExtras, &LoadExtras) = ($old, $new);
        if old.lines != new.lines {
            sqlx::query("DELETE FROM load_lines WHERE load_id = $1").bind($id).execute(&mut *$tx).await?;
            for (position, line) in (1_i32..).zip(&new.lines) {
                sqlx::query(
                    "INSERT INTO load_lines (load_id, position, description, amount_cents) VALUES ($1, $2, $3, $4)",
                )
                .bind($id)
                .bind(position)
                .bind(&line.description)
                .bind(line.amount.cents())
                .execute(&mut *$tx)
                .await?;
            }
        }
        let documents: [(&str, &str, Vec<&String>, Vec<&String>); 3] = [
            ("bol", "", old.bol.iter().collect(), new.bol.iter().collect()),
            ("lumper", "", old.lumper_receipt.iter().collect(), new.lumper_receipt.iter().collect()),
            ("other", IMPORT_SOURCE, old.other_documents.iter().collect(), new.other_documents.iter().collect()),
        ];
        for (kind, only_source, old_paths, new_paths) in documents {
            if old_paths == new_paths {
                continue;
            }
            // An empty `only_source` ($4) replaces the documents of every source.
            sqlx::query(
                "UPDATE load_documents SET replaced_at = $1 WHERE load_id = $2 AND kind = $3 AND replaced_at IS NULL \
                 AND ($4 = '' OR source = $4)",
            )
            .bind($now)
            .bind($id)
            .bind(kind)
            .bind(only_source)
            .execute(&mut *$tx)
            .await?;
            for path in new_paths {
                sqlx::query(
                    "INSERT INTO load_documents (load_id, kind, path, added_at, reason, source) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind($id)
                .bind(kind)
                .bind(path)
                .bind($now)
                .bind($cause)
                .bind(IMPORT_SOURCE)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

/// The stored load with this number and its id, if there is one.
macro_rules! stored_load {
    ($tx:expr, $load_number:expr) => {{
        let row = sqlx::query(
            "SELECT id, status, invoice_number, subsidiary, customer_id, amount_cents, delivered_at, pod, \
             rate_confirmation, po_number, factor_reference, truck, pickup_city, pickup_state, delivery_city, \
             delivery_state, bill_to_name, bill_to_address, pickup_date, shipper_name, consignee_name, bol_number, \
             terms_days FROM loads WHERE load_number = $1",
        )
        .bind($load_number)
        .fetch_optional(&mut *$tx)
        .await?;
        match row {
            Some(r) => {
                let status: String = r.try_get("status")?;
                let id: i64 = r.try_get("id")?;
                let extras = stored_extras!($tx, id);
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
                            bill_to_name: r.try_get("bill_to_name")?,
                            bill_to_address: r.try_get("bill_to_address")?,
                            pickup_date: r.try_get("pickup_date")?,
                            shipper_name: r.try_get("shipper_name")?,
                            consignee_name: r.try_get("consignee_name")?,
                            bol_number: r.try_get("bol_number")?,
                            terms_days: r.try_get("terms_days")?,
                        },
                        extras,
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
            .bind(&$f.bill_to_name)
            .bind(&$f.bill_to_address)
            .bind(&$f.pickup_date)
            .bind(&$f.shipper_name)
            .bind(&$f.consignee_name)
            .bind(&$f.bol_number)
            .bind($f.terms_days)
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
             delivery_state, bill_to_name, bill_to_address, pickup_date, shipper_name, consignee_name, bol_number, \
             terms_days, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
             $22, $23, $23) RETURNING id",
        )
        .bind(&input.load_number);
        let id: i64 = bind_load_fields!(query, f)
            .bind(input.status.as_str())
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?
            .try_get("id")?;
        insert_history!($tx, id, None::<&str>, input.status.as_str(), $now, $cause);
        write_extras!($tx, id, &LoadExtras::default(), &input.extras, $now, $cause);
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
             pickup_state = $11, delivery_city = $12, delivery_state = $13, bill_to_name = $14, \
             bill_to_address = $15, pickup_date = $16, shipper_name = $17, consignee_name = $18, bol_number = $19, \
             terms_days = $20, status = $21, updated_at = $22, \
             claim_token = CASE WHEN status = 'Released' THEN NULL ELSE claim_token END, \
             claimed_until = CASE WHEN status = 'Released' THEN NULL ELSE claimed_until END, \
             invoice_number = CASE WHEN status IN ('Delivered', 'Released') AND subsidiary <> $1 THEN NULL \
             ELSE invoice_number END \
             WHERE id = $23 AND status = $24",
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
        write_extras!($tx, $id, &stored.extras, &input.extras_over(&stored.extras), $now, $cause);
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
    /// A load's line items, in order (empty for a load billed as one "Freight charges" line).
    pub async fn load_lines(&self, load_id: i64) -> Result<Vec<LoadLine>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT description, amount_cents FROM load_lines WHERE load_id = $1 ORDER BY position",
            )
            .bind(load_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(LoadLine {
                        description: r.try_get("description")?,
                        amount: Money::from_cents(r.try_get("amount_cents")?),
                    })
                })
                .collect()
        })
    }

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
