//! Broker credit checks (docs/design.md §1–§4): before a factor buys an invoice it wants to know the
//! customer (the debtor) pays. The providers the catalogue lists with `credit_checks` (OTR,
//! Saint Johns) answer approved, declined or unknown; every answer is stored with the factor's
//! own text and kept ([`Store::record_credit_check`]).
//!
//! Three places ask, each through a [`Checker`] (one transport, so one login, per run):
//! - the invoice job, as a load goes Released → Queued ([`check_before_queueing`]): a check is
//!   made when the last one is older than `credit.max_age`; a failing credit API never stops
//!   invoicing (the refresh job retries);
//! - the refresh job ([`refresh`], on `credit.refresh_schedule` in the daemon and as
//!   `factord credit refresh`): every customer with Released or Queued loads under a provider
//!   with checks whose last check is older than max age, one at a time with
//!   `credit.request_interval` between checks and a capped, jittered backoff after failures;
//! - the submission pre-flight ([`gates_for_submission`]): a check older than max age is
//!   refreshed before the batch goes, and a load whose check cannot be refreshed waits. The
//!   latest answer then decides, per the subsidiary's `block_on_declined_credit` and
//!   `block_on_unknown_credit`, whether the load stays Queued with the `credit_declined` flag.
//!   A later approval clears the flag.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{Connection, Factoring, InvoicingMethod, Settings, Subsidiary};
use crate::domain::{CreditResult, Customer};
use crate::providers::Provider;
use crate::providers::api::ApiTransport;
use crate::providers::batch::ProviderError;
use crate::store::{CreditCheckRecord, LoadRecord, NewCreditCheck, Store, StoreError};

/// Retries of one check request after a transient failure: few, because the refresh job
/// retries the customer later and the invoice job must not wait on a factor that is down.
const CHECK_RETRIES: u32 = 1;
/// The first wait of the refresh job's backoff after a failed check.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The key of the refresh schedule's fires in the store's schedule record (not a valid
/// subsidiary id, so it cannot collide with one).
pub const REFRESH_FIRE_KEY: &str = "*credit-refresh";

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

/// The provider whose checks apply to a subsidiary's factored loads: its active provider, when
/// that provider offers credit checks.
pub fn provider_with_checks(subsidiary: &Subsidiary) -> Option<&'static Provider> {
    subsidiary.factoring.as_ref().filter(|f| f.active && f.provider.credit_checks).map(|f| f.provider)
}

/// Whether a check is older than `max_age` at `now`.
pub fn is_stale(check: &CreditCheckRecord, max_age: Duration, now: DateTime<Utc>) -> bool {
    (now - check.checked_at).to_std().is_ok_and(|age| age > max_age)
}

/// The customer of a load, as the factor is asked about it.
pub fn customer_of(load: &LoadRecord) -> Customer {
    Customer {
        id: load.fields.customer_id.clone(),
        name: load.customer_name.clone(),
        mc: load.customer_mc.clone(),
        dot: load.customer_dot.clone(),
    }
}

/// Asks `subsidiary`'s provider about `customer` now (with the subsidiary's credentials) and
/// records the answer. An approval clears the customer's `credit_declined` flags in every
/// subsidiary factoring with that provider.
pub async fn check_now(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    customer: &Customer,
    cause: &str,
) -> Result<CreditCheckRecord, CreditError> {
    Checker::new(settings).check(store, subsidiary, customer, cause).await
}

/// One recorded check as JSON: an element of `credit check --json`, and `credit` in
/// `loads show --json`. Fields in alphabetical order, the order the output always had.
#[derive(Clone, Debug, Serialize)]
pub struct CheckJson {
    /// Why the check was made (`invoice L-1002`, `refresh`, `command`).
    pub cause: String,
    #[serde(serialize_with = "crate::domain::rfc3339")]
    pub checked_at: DateTime<Utc>,
    pub customer_id: String,
    pub provider: String,
    pub result: CreditResult,
    /// Older than `credit.max_age`.
    pub stale: bool,
    /// Whose credentials asked.
    pub subsidiary: String,
    /// The factor's own text.
    pub text: String,
}

impl CheckJson {
    /// `check`, stale as of `now` when older than `max_age`.
    pub fn of(check: &CreditCheckRecord, max_age: Duration, now: DateTime<Utc>) -> CheckJson {
        CheckJson {
            cause: check.cause.clone(),
            checked_at: check.checked_at,
            customer_id: check.customer_id.clone(),
            provider: check.provider.clone(),
            result: check.result,
            stale: is_stale(check, max_age, now),
            subsidiary: check.subsidiary.clone(),
            text: check.factor_text.clone(),
        }
    }
}

/// Why `factord credit check` asked nobody.
#[derive(Debug, thiserror::Error)]
pub enum CustomerCheckError {
    #[error("customer {0} not found (import a load of it first)")]
    UnknownCustomer(String),
    /// The subsidiary named, or the customer's subsidiaries, offer no check to make: a usage
    /// error.
    #[error("{0}")]
    NothingToAsk(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `factord credit check` did: one check per provider asked.
#[derive(Clone, Debug)]
pub struct CustomerChecks {
    pub customer: Customer,
    /// In the order asked; `credit check --json` prints them as an array.
    pub checks: Vec<CustomerCheck>,
}

impl CustomerChecks {
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| matches!(c, CustomerCheck::Failed(_))).count()
    }
}

/// One provider's answer about the customer, or why there was none.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum CustomerCheck {
    Checked(CheckJson),
    Failed(FailedCheck),
}

/// A check that got no answer.
#[derive(Clone, Debug, Serialize)]
pub struct FailedCheck {
    pub customer_id: String,
    pub error: String,
    pub provider: &'static str,
    pub subsidiary: String,
}

/// Checks one customer now (`factord credit check`), recorded with the cause `command`: with
/// the provider of `subsidiary` when named, else once with each provider of the subsidiaries
/// the customer has loads in (those with Released or Queued loads first). A provider that
/// fails does not stop the others.
pub async fn check_customer(
    store: &Store,
    settings: &Settings,
    customer_id: &str,
    subsidiary: Option<&str>,
) -> Result<CustomerChecks, CustomerCheckError> {
    let Some((customer, with_loads)) = store.credit_customer(customer_id).await? else {
        return Err(CustomerCheckError::UnknownCustomer(customer_id.to_string()));
    };
    let subsidiaries: Vec<&Subsidiary> = match subsidiary {
        Some(id) => {
            let subsidiary = settings
                .subsidiary(id)
                .ok_or_else(|| CustomerCheckError::NothingToAsk(format!("subsidiary `{id}` is not configured")))?;
            if !subsidiary.factoring.as_ref().is_some_and(|f| f.provider.credit_checks) {
                return Err(CustomerCheckError::NothingToAsk(format!(
                    "the provider of subsidiary `{id}` offers no credit checks"
                )));
            }
            vec![subsidiary]
        }
        None => {
            let mut providers = std::collections::BTreeSet::new();
            with_loads
                .iter()
                .filter_map(|id| settings.subsidiary(id))
                .filter(|s| provider_with_checks(s).is_some_and(|p| providers.insert(p.id)))
                .collect()
        }
    };
    if subsidiaries.is_empty() {
        return Err(CustomerCheckError::NothingToAsk(format!(
            "customer {customer_id} has no loads under an active provider with credit checks; name one with --subsidiary"
        )));
    }
    let mut checks = Vec::new();
    for subsidiary in subsidiaries {
        match check_now(store, settings, subsidiary, &customer, "command").await {
            Ok(check) => {
                checks.push(CustomerCheck::Checked(CheckJson::of(&check, settings.credit.max_age, Utc::now())))
            }
            Err(CreditError::Store(error)) => return Err(error.into()),
            Err(error) => checks.push(CustomerCheck::Failed(FailedCheck {
                customer_id: customer_id.to_string(),
                error: error.to_string(),
                provider: subsidiary.factoring.as_ref().map_or("", |f| f.provider.id),
                subsidiary: subsidiary.id.clone(),
            })),
        }
    }
    Ok(CustomerChecks { customer, checks })
}

/// The checks of one run (an invoice pass, a refresh, a submission): one API transport per
/// subsidiary, so a factor with a token login is logged in to once per run, not per customer.
pub struct Checker<'s> {
    settings: &'s Settings,
    transports: HashMap<String, ApiTransport<'s>>,
}

impl<'s> Checker<'s> {
    pub fn new(settings: &'s Settings) -> Checker<'s> {
        Checker { settings, transports: HashMap::new() }
    }

    /// As [`check_now`], reusing this run's transport for the subsidiary.
    #[tracing::instrument(skip_all, fields(subsidiary = %subsidiary.id, customer = %customer.id, cause))]
    pub async fn check(
        &mut self,
        store: &Store,
        subsidiary: &'s Subsidiary,
        customer: &Customer,
        cause: &str,
    ) -> Result<CreditCheckRecord, CreditError> {
        let Some(factoring) = subsidiary.factoring.as_ref() else {
            return Err(
                ProviderError::Rejected(format!("subsidiary {} has no factoring provider", subsidiary.id)).into()
            );
        };
        let provider = factoring.provider;
        if !provider.credit_checks {
            return Err(ProviderError::Rejected(format!("{} offers no credit checks", provider.name)).into());
        }
        let Connection::Api(api) = &factoring.connection else {
            return Err(ProviderError::Rejected(format!("{} has no API connection configured", provider.name)).into());
        };
        let transport = match self.transports.entry(subsidiary.id.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                entry.insert(ApiTransport::new(provider, api)?.with_timeout(api.timeout).with_retries(CHECK_RETRIES))
            }
        };
        let answer = transport.check_credit(customer).await?;
        let clears_in: Vec<&str> = self
            .settings
            .subsidiaries
            .iter()
            .filter(|s| s.factoring.as_ref().is_some_and(|f| f.provider.id == provider.id))
            .map(|s| s.id.as_str())
            .collect();
        let check = NewCreditCheck {
            customer_id: &customer.id,
            provider: provider.id,
            subsidiary: &subsidiary.id,
            result: answer.result,
            factor_text: &answer.text,
            checked_at: Utc::now(),
            cause,
        };
        Ok(store.record_credit_check(&check, &clears_in).await?)
    }
}

// ---- At invoice time --------------------------------------------------------------------------

/// What the credit module did for a load about to be queued. Invoicing goes on in every case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditCheck {
    /// No check is due: the provider offers none, or the last one is recent enough.
    NotNeeded,
    /// A check was made; the submission pre-flight acts on its result.
    Checked(CreditResult),
    /// The check failed (logged); the refresh job retries it.
    Failed(String),
}

/// What one invoice pass keeps: its [`Checker`], and the customers whose check failed, which
/// are not asked again in the same pass (a factor that is down costs one timeout per customer,
/// not one per load).
pub struct PassChecks<'s> {
    checker: Checker<'s>,
    failed: HashSet<(String, &'static str)>,
}

impl<'s> PassChecks<'s> {
    pub fn new(settings: &'s Settings) -> PassChecks<'s> {
        PassChecks { checker: Checker::new(settings), failed: HashSet::new() }
    }
}

/// Runs a check before `load` is queued for `subsidiary`'s factor when its customer's last
/// check with that provider is older than `credit.max_age` (or there is none).
pub async fn check_before_queueing<'s>(
    store: &Store,
    settings: &Settings,
    subsidiary: &'s Subsidiary,
    load: &LoadRecord,
    pass: &mut PassChecks<'s>,
) -> CreditCheck {
    let Some(provider) = provider_with_checks(subsidiary) else { return CreditCheck::NotNeeded };
    let key = (load.fields.customer_id.clone(), provider.id);
    if pass.failed.contains(&key) {
        return CreditCheck::Failed("the check failed earlier in this pass".to_string());
    }
    let due = match store.latest_credit_check(&load.fields.customer_id, provider.id).await {
        Ok(latest) => latest.is_none_or(|check| is_stale(&check, settings.credit.max_age, Utc::now())),
        Err(error) => {
            tracing::error!(load = %load.load_number, %error, "cannot read the last credit check; the refresh job checks it");
            return CreditCheck::Failed(error.to_string());
        }
    };
    if !due {
        return CreditCheck::NotNeeded;
    }
    let cause = format!("invoice {}", load.load_number);
    match pass.checker.check(store, subsidiary, &customer_of(load), &cause).await {
        Ok(check) => CreditCheck::Checked(check.result),
        Err(error) => {
            tracing::error!(
                load = %load.load_number, customer = %load.fields.customer_id, provider = provider.id, %error,
                "credit check failed; invoicing goes on and the refresh job retries the check"
            );
            pass.failed.insert(key);
            CreditCheck::Failed(error.to_string())
        }
    }
}

// ---- At submission ----------------------------------------------------------------------------

/// What the credit policy says about submitting one customer's loads now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// The latest check, recent enough, lets the loads go.
    Clear,
    /// The latest check blocks them under the subsidiary's policy: `credit_declined` with this
    /// detail (which names the date of the check).
    Blocked(String),
    /// No check recent enough could be had: the loads wait (never sent on a stale check).
    Waiting(String),
}

/// The gate for a subsidiary's loads given the customer's latest check.
pub fn gate(factoring: &Factoring, latest: Option<&CreditCheckRecord>, max_age: Duration, now: DateTime<Utc>) -> Gate {
    let Some(check) = latest else {
        return Gate::Waiting(format!("no credit check by {} yet", factoring.provider.name));
    };
    if is_stale(check, max_age, now) {
        return Gate::Waiting(format!(
            "the credit check of {} is older than credit.max_age",
            crate::domain::time_for_people(check.checked_at)
        ));
    }
    let blocks = match check.result {
        CreditResult::Approved => false,
        CreditResult::Declined => factoring.block_on_declined_credit,
        CreditResult::Unknown => factoring.block_on_unknown_credit,
    };
    if blocks {
        Gate::Blocked(format!(
            "credit {} by {} ({}), checked {}",
            check.result,
            factoring.provider.name,
            check.factor_text,
            crate::domain::time_for_people(check.checked_at)
        ))
    } else {
        Gate::Clear
    }
}

/// The gate of every customer among `loads` (by customer id), after refreshing the checks that
/// are missing or older than max age (not in a dry run, which only reads). `None` when the
/// subsidiary's provider offers no checks. A check that fails is logged, and the customer's
/// loads wait.
pub async fn gates_for_submission(
    store: &Store,
    settings: &Settings,
    subsidiary: &Subsidiary,
    loads: &[LoadRecord],
    dry_run: bool,
) -> Result<Option<BTreeMap<String, Gate>>, StoreError> {
    let (Some(provider), Some(factoring)) = (provider_with_checks(subsidiary), subsidiary.factoring.as_ref()) else {
        return Ok(None);
    };
    let max_age = settings.credit.max_age;
    let mut checker = Checker::new(settings);
    let mut gates = BTreeMap::new();
    for load in loads {
        let customer_id = &load.fields.customer_id;
        if gates.contains_key(customer_id) {
            continue;
        }
        let mut latest = store.latest_credit_check(customer_id, provider.id).await?;
        let fresh = latest.as_ref().is_some_and(|check| !is_stale(check, max_age, Utc::now()));
        if !fresh && !dry_run {
            match checker.check(store, subsidiary, &customer_of(load), "submit").await {
                Ok(check) => latest = Some(check),
                Err(CreditError::Store(error)) => return Err(error),
                Err(CreditError::Provider(error)) => {
                    tracing::warn!(
                        subsidiary = %subsidiary.id, customer = %customer_id, provider = provider.id, %error,
                        "credit check before submission failed; the customer's loads wait"
                    );
                    let had = match &latest {
                        Some(check) => format!("from {}", crate::domain::time_for_people(check.checked_at)),
                        None => "none yet".to_string(),
                    };
                    gates.insert(
                        customer_id.clone(),
                        Gate::Waiting(format!(
                            "credit check needed before submission (last one: {had}) and it failed: {error}"
                        )),
                    );
                    continue;
                }
            }
        }
        let gate = match gate(factoring, latest.as_ref(), max_age, Utc::now()) {
            Gate::Waiting(reason) if dry_run => Gate::Waiting(format!("{reason}; a submission checks it first")),
            other => other,
        };
        gates.insert(customer_id.clone(), gate);
    }
    Ok(Some(gates))
}

// ---- The refresh job --------------------------------------------------------------------------

/// What one refresh run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RefreshReport {
    /// Every customer asked, in order, with its answer or why there was none.
    pub checked: Vec<CheckedCustomer>,
    /// Customers whose check was recent enough and were not asked.
    pub fresh: usize,
}

impl RefreshReport {
    pub fn failed(&self) -> usize {
        self.checked.iter().filter(|c| c.error.is_some()).count()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckedCustomer {
    pub customer_id: String,
    pub customer_name: String,
    pub provider: String,
    /// Whose credentials asked.
    pub subsidiary: String,
    pub result: Option<CreditResult>,
    /// The factor's own text.
    pub text: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// One refresh run: re-checks every customer with loads in Released or Queued under a provider
/// with checks whose last check is older than `credit.max_age` (every such customer with
/// `force`). One customer at a time, at least `credit.request_interval` apart; after a failure
/// the next check waits a capped, jittered backoff. One customer's failure never stops the
/// others. Stops early, with what it did, on `shutdown`.
#[tracing::instrument(skip_all, fields(force))]
pub async fn refresh(
    store: &Store,
    settings: &Settings,
    force: bool,
    shutdown: &CancellationToken,
) -> Result<RefreshReport, StoreError> {
    let mut report = RefreshReport::default();
    let mut seen: HashSet<(String, &'static str)> = HashSet::new();
    let mut backoff = Backoff::new(BACKOFF_BASE, settings.credit.retry_cap);
    let mut pause = Duration::ZERO;
    let mut last_request: Option<Instant> = None;
    let mut checker = Checker::new(settings);
    for candidate in store.credit_candidates().await? {
        let Some(subsidiary) = settings.subsidiary(&candidate.subsidiary) else { continue };
        if subsidiary.method_for(&candidate.customer.id) == InvoicingMethod::Direct {
            continue;
        }
        let Some(provider) = provider_with_checks(subsidiary) else { continue };
        if !seen.insert((candidate.customer.id.clone(), provider.id)) {
            continue;
        }
        if !force {
            let latest = store.latest_credit_check(&candidate.customer.id, provider.id).await?;
            if latest.is_some_and(|check| !is_stale(&check, settings.credit.max_age, Utc::now())) {
                report.fresh += 1;
                continue;
            }
        }
        // The rate limit, or the backoff after a failure, whichever is longer.
        let wait = last_request
            .map_or(Duration::ZERO, |at| settings.credit.request_interval.max(pause).saturating_sub(at.elapsed()));
        if !wait.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(report),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if shutdown.is_cancelled() {
            return Ok(report);
        }
        last_request = Some(Instant::now());
        let customer = &candidate.customer;
        let mut entry = CheckedCustomer {
            customer_id: customer.id.clone(),
            customer_name: customer.name.clone(),
            provider: provider.id.to_string(),
            subsidiary: subsidiary.id.clone(),
            result: None,
            text: None,
            checked_at: None,
            error: None,
        };
        match checker.check(store, subsidiary, customer, "refresh").await {
            Ok(check) => {
                backoff.reset();
                pause = Duration::ZERO;
                entry.result = Some(check.result);
                entry.text = Some(check.factor_text);
                entry.checked_at = Some(check.checked_at);
            }
            Err(CreditError::Store(error)) => return Err(error),
            Err(CreditError::Provider(error)) => {
                pause = backoff.next_delay();
                tracing::warn!(
                    customer = %customer.id, provider = provider.id, %error, retry_in = ?pause,
                    "credit check failed; the other customers go on"
                );
                entry.error = Some(error.to_string());
            }
        }
        report.checked.push(entry);
    }
    Ok(report)
}

/// The refresh of one scheduled fire: a run, then, while checks fail, more runs after a capped,
/// jittered backoff (each run asks only what is still stale, i.e. the failed ones), until
/// none fails, the next fire is due (`until`), or shutdown. `beat` is called before each run
/// (the daemon's heartbeat: retries can go on for hours).
pub async fn refresh_with_retries(
    store: &Store,
    settings: &Settings,
    until: Option<DateTime<Utc>>,
    beat: &impl Fn(),
    shutdown: &CancellationToken,
) {
    let mut backoff = Backoff::new(BACKOFF_BASE.max(settings.credit.request_interval), settings.credit.retry_cap);
    loop {
        beat();
        match refresh(store, settings, false, shutdown).await {
            Ok(report) => {
                tracing::info!(
                    checked = report.checked.len(),
                    failed = report.failed(),
                    fresh = report.fresh,
                    "credit refresh"
                );
                if report.failed() == 0 {
                    return;
                }
            }
            Err(error) => tracing::error!(%error, "credit refresh failed; retrying with backoff"),
        }
        let delay = backoff.next_delay();
        if until.is_some_and(|next| Utc::now() + delay >= next) {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Connection;
    use crate::providers::find_provider;

    fn factoring(block_declined: bool, block_unknown: bool) -> Factoring {
        Factoring {
            provider: find_provider("otr").expect("otr"),
            active: true,
            schedule: None,
            block_on_declined_credit: block_declined,
            block_on_unknown_credit: block_unknown,
            max_batch_size: 10,
            status_sync: None,
            customer_ids: Default::default(),
            connection: Connection::None,
            email_to: None,
            remit_to: None,
        }
    }

    fn check(result: CreditResult, hours: i64) -> CreditCheckRecord {
        CreditCheckRecord {
            id: 1,
            customer_id: "BRK-1".into(),
            provider: "otr".into(),
            subsidiary: "acme-east".into(),
            result,
            factor_text: "TEXT".into(),
            checked_at: Utc::now() - chrono::Duration::hours(hours),
            cause: "test".into(),
        }
    }

    #[test]
    fn the_policy_blocks_what_it_is_told_to_on_fresh_checks_only() {
        let day = Duration::from_secs(86_400);
        let now = Utc::now();
        let strict = factoring(true, true);
        let lenient = factoring(false, false);
        assert_eq!(gate(&strict, Some(&check(CreditResult::Approved, 1)), day, now), Gate::Clear);
        for result in [CreditResult::Declined, CreditResult::Unknown] {
            let blocked = gate(&strict, Some(&check(result, 1)), day, now);
            assert!(matches!(&blocked, Gate::Blocked(d) if d.contains(result.as_str()) && d.contains("TEXT")));
            assert_eq!(gate(&lenient, Some(&check(result, 1)), day, now), Gate::Clear);
        }
        // Stale or missing: the load waits, whatever the answer was.
        assert!(matches!(gate(&lenient, Some(&check(CreditResult::Approved, 25)), day, now), Gate::Waiting(_)));
        assert!(matches!(gate(&lenient, None, day, now), Gate::Waiting(_)));
        assert!(!is_stale(&check(CreditResult::Approved, 23), day, now));
        assert!(is_stale(&check(CreditResult::Approved, 25), day, now));
    }
}
