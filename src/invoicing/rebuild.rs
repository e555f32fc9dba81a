//! Safe provider and NOA switching (docs/design.md §4): an invoice goes to a factor only with that
//! factor's NOA on it. Each packet records what it was built for (`loads.packet_noa`, the
//! subsidiary's [`packet_mark`](crate::config::Subsidiary::packet_mark): provider and NOA digest).
//! When a subsidiary's provider or NOA changes (at start or on reload), every Queued packet whose
//! mark differs is rebuilt here with the current NOA, under the same invoice number and invoice
//! date, before any batch can take it: the submission pre-flight holds back a load whose mark is
//! not current. Loads already sent stay with the factor that holds them.
//!
//! Each rebuild claims its load (the invoice job's lease), writes the new packet under a temp
//! name `.<invoice>.<token>.rebuild`, renames it over the old packet, and only then records the
//! new mark. A crash before the record leaves the old mark, so the packet is rebuilt again.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::job::{InvoiceError, claim_token, invoice_content, make_packet, prepare};
use crate::config::{InvoicingMethod, Settings, Subsidiary, packet_mark_provider};
use crate::files::{sync_dir, write_synced};
use crate::store::{ClaimError, LoadRecord, Store};

/// Loads claimed at a time; the pass goes on until none is left.
const CHUNK: i64 = 16;

/// What a rebuild pass did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RebuildReport {
    pub rebuilt: Vec<Rebuilt>,
    /// Loads whose packet could not be rebuilt (a document went missing): they wait, with why.
    pub failed: Vec<super::job::Waiting>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rebuilt {
    pub load_number: String,
    pub invoice_number: String,
    /// The provider the old packet was built for, when known.
    pub from: Option<String>,
    pub to: String,
}

/// Rebuilds the stale Queued packets of one subsidiary, or of all.
pub async fn rebuild_stale_packets(
    store: &Store,
    settings: &Settings,
    only: Option<&str>,
    shutdown: &CancellationToken,
) -> Result<RebuildReport, InvoiceError> {
    let mut report = RebuildReport::default();
    for subsidiary in settings.subsidiaries.iter().filter(|s| only.is_none_or(|id| id == s.id)) {
        // An inactive provider takes no batch; its packets are rebuilt once it is active.
        let Some(mark) = subsidiary.packet_mark().filter(|_| subsidiary.factoring.as_ref().is_some_and(|f| f.active))
        else {
            continue;
        };
        // Loads that could not be rebuilt keep their claim until the pass ends, so that the
        // next claim of this pass does not take them again. Each claim has its own token: a
        // claim's query returns the loads marked with it.
        let mut failed: Vec<(i64, String, String)> = Vec::new();
        while !shutdown.is_cancelled() {
            let token = claim_token();
            let loads =
                store.claim_stale_packets(&subsidiary.id, &mark, &token, settings.invoicing.lease, CHUNK).await?;
            if loads.is_empty() {
                break;
            }
            for load in &loads {
                if let Some(reason) = rebuild_one(store, settings, subsidiary, load, &token, &mark, &mut report).await?
                {
                    let waiting = super::job::Waiting { load_number: load.load_number.clone(), reason: reason.clone() };
                    report.failed.push(waiting);
                    failed.push((load.id, token.clone(), reason));
                }
            }
        }
        for (load_id, token, reason) in failed {
            store.release_claim(load_id, &token, Some(&reason)).await?;
        }
    }
    Ok(report)
}

async fn rebuild_one(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    load: &LoadRecord,
    token: &str,
    mark: &str,
    report: &mut RebuildReport,
) -> Result<Option<String>, InvoiceError> {
    let to = packet_mark_provider(mark).to_string();
    let from = load.packet_noa.as_deref().map(|m| packet_mark_provider(m).to_string());
    let Some(invoice_number) = load.invoice_number.clone() else {
        // A Queued load always has its number; this would be a corrupt row: leave it to ops.
        return Ok(Some(format!("packet must be rebuilt for {to}'s NOA, but the load has no invoice number")));
    };
    let plan = match prepare(store, settings, load).await {
        Ok(plan) if plan.method == InvoicingMethod::Factoring => plan,
        Ok(_) => {
            let customer = &load.fields.customer_id;
            return Ok(Some(format!("queued for factoring but customer {customer} is now invoiced directly")));
        }
        Err(reasons) => {
            let reason = format!("packet must be rebuilt for {to}'s NOA: {}", reasons.join("; "));
            tracing::warn!(load = %load.load_number, %reason, "packet not rebuilt");
            return Ok(Some(reason));
        }
    };
    let invoice_date = load
        .invoice_date
        .as_deref()
        .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
        .unwrap_or_else(|| chrono::Utc::now().with_timezone(&subsidiary.timezone).date_naive());
    let content =
        invoice_content(subsidiary, load, &plan.lines, &invoice_number, invoice_date, InvoicingMethod::Factoring);
    let dir = settings.paths.data.join("packets").join(&subsidiary.id);
    let final_path = dir.join(format!("{invoice_number}.pdf"));
    let temp_path = dir.join(format!(".{invoice_number}.{token}.rebuild"));
    remove_leftovers(&dir, &invoice_number);
    let documents = plan.documents;
    let temp = temp_path.clone();
    let target = final_path.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let (bytes, _pages) = make_packet(&content, &documents)?;
        write_synced(&temp, &bytes).map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
        std::fs::rename(&temp, &target).map_err(|e| format!("cannot rename to {}: {e}", target.display()))?;
        sync_dir(target.parent().unwrap_or(Path::new("."))).map_err(|e| format!("cannot sync: {e}"))
    })
    .await
    .unwrap_or_else(|join_error| Err(join_error.to_string()));
    if let Err(message) = made {
        let _ = std::fs::remove_file(&temp_path);
        let reason = format!("packet for {to}'s NOA could not be made: {message}");
        tracing::error!(load = %load.load_number, %reason, "packet not rebuilt; tried again at the next pass");
        return Ok(Some(reason));
    }
    let path = final_path.display().to_string();
    match store.record_rebuilt_packet(load, token, mark, &path).await {
        Ok(()) => {}
        Err(ClaimError::Lost(_)) => {
            tracing::warn!(load = %load.load_number, "claim lost while rebuilding; the next pass checks it again");
            return Ok(None);
        }
        Err(ClaimError::Store(error)) => return Err(error.into()),
    }
    match from.as_deref() {
        Some(from) => tracing::info!(
            load = %load.load_number,
            invoice = %invoice_number,
            from,
            to = %to,
            "packet rebuilt with the current factor's NOA"
        ),
        // No mark: `loads docs` or `loads retry` asked for the rebuild.
        None => tracing::info!(load = %load.load_number, invoice = %invoice_number, to = %to, "packet rebuilt"),
    }
    report.rebuilt.push(Rebuilt { load_number: load.load_number.clone(), invoice_number, from, to });
    Ok(None)
}

/// Temp files of earlier rebuilds of this invoice that a crash left (the claim is ours now, so
/// nobody else is writing them).
fn remove_leftovers(dir: &Path, invoice_number: &str) {
    let prefix = format!(".{invoice_number}.");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let leftovers: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".rebuild"))
        })
        .collect();
    for path in leftovers {
        let _ = std::fs::remove_file(path);
    }
}
