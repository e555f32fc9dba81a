//! One table of the 13 providers of docs/design.md §4, so that every other module asks here instead of
//! matching on provider ids. Each entry reaches that provider's knowledge where it is kept: its
//! batch file layout ([`layout`](super::layout)), its status vocabulary
//! ([`statuses`](super::statuses), OTR's in its API file) and its API mapping
//! ([`api`](super::api), one file per provider).

use super::api::ApiMapping;
use super::layout::{Layout, Packaging, STANDARD_COLUMNS, TRIUMPH_COLUMNS, WEX_COLUMNS};
use super::statuses::{GENERIC_STATUSES, StatusVocabulary};

/// How a batch reaches the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP API (`[subsidiary.factoring.api]`).
    Api,
    /// FTP, FTPS or SFTP upload (`[subsidiary.factoring.ftp]`).
    Ftp,
    /// A file in the outbox that ops send by hand; no connection block.
    Manual,
}

impl Transport {
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Api => "api",
            Transport::Ftp => "ftp",
            Transport::Manual => "manual",
        }
    }
}

/// What a provider needs on every load before it can join a batch (submission pre-flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The broker's MC number.
    CustomerMc,
    /// The subsidiary's USDOT number.
    SellerUsdot,
    /// A truck number on the load.
    Truck,
    /// The provider's reference number on the load (`factor_reference` in the load export).
    ReferenceNumber,
    /// The factor's own id for the customer (`customer_ids` in the provider's config).
    CustomerFactoringId,
    /// Pickup and delivery city and state.
    Lane,
}

impl Requirement {
    /// Why a load waits when it lacks this.
    pub fn missing(self) -> &'static str {
        match self {
            Requirement::CustomerMc => "customer MC missing",
            Requirement::SellerUsdot => "subsidiary USDOT missing",
            Requirement::Truck => "truck number missing",
            Requirement::ReferenceNumber => "reference number missing",
            Requirement::CustomerFactoringId => "the factor's customer id is not configured (factoring.customer_ids)",
            Requirement::Lane => "lane missing (pickup/delivery city and state)",
        }
    }
}

/// A credential an API provider needs, each given in config as `<name>_file` or `<name>_env`
/// (or, for the non-secret `client_id`, as a plain value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCredential {
    /// `username` plus `password_file` / `password_env`.
    UsernamePassword,
    /// `subscription_key_file` / `subscription_key_env`.
    SubscriptionKey,
    /// `api_key_file` / `api_key_env`.
    ApiKey,
    /// `client_id` (not secret).
    ClientId,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Provider {
    /// The config id (`provider = "..."`), also used in folder names.
    pub id: &'static str,
    pub name: &'static str,
    pub transport: Transport,
    /// The largest batch the provider takes; `max_batch_size` in config may lower it.
    pub max_batch_size: u32,
    /// Whether the provider offers broker credit checks.
    pub credit_checks: bool,
    /// Whether the provider answers an invoice's status by API
    /// ([`crate::providers::api::ApiTransport::invoice_status`]), for the status sync.
    pub status_api: bool,
    /// What an active API subsidiary must configure.
    pub api_credentials: &'static [ApiCredential],
    /// What every load must carry to join a batch.
    pub requires: &'static [Requirement],
    /// The batch files of a provider that takes files (manual or FTP); `None` for API providers.
    pub layout: Option<Layout>,
    /// Which mapping speaks to the provider's API; `None` for file-taking providers.
    pub api: Option<ApiMapping>,
    /// The shipped reading of the provider's status words (ops add to it in config).
    pub statuses: &'static StatusVocabulary,
}

/// A file-taking provider's layout.
const fn files(columns: &'static [(&'static str, super::layout::Column)], packaging: Packaging) -> Option<Layout> {
    Some(Layout { columns, packaging })
}

/// Batches larger than this are split even where a provider states no limit, so that one bad
/// file never holds a whole day's invoices.
const DEFAULT_MAX_BATCH: u32 = 500;

pub static PROVIDERS: [Provider; 13] = [
    Provider {
        id: "apex",
        name: "Apex Capital",
        transport: Transport::Api,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[ApiCredential::ApiKey],
        requires: &[Requirement::CustomerMc],
        layout: None,
        api: Some(ApiMapping::Apex),
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "otr",
        name: "OTR Solutions",
        transport: Transport::Api,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: true,
        status_api: true,
        api_credentials: &[ApiCredential::UsernamePassword, ApiCredential::SubscriptionKey],
        requires: &[Requirement::CustomerMc, Requirement::SellerUsdot, Requirement::Lane],
        layout: None,
        api: Some(ApiMapping::Otr),
        statuses: &super::api::OTR_STATUSES,
    },
    Provider {
        id: "saint_johns",
        name: "Saint Johns Capital Factoring",
        transport: Transport::Api,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: true,
        status_api: false,
        api_credentials: &[ApiCredential::ClientId, ApiCredential::ApiKey],
        requires: &[Requirement::CustomerMc],
        layout: None,
        api: Some(ApiMapping::SaintJohns),
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "tafs",
        name: "TAFS",
        transport: Transport::Api,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[ApiCredential::ApiKey],
        requires: &[Requirement::Truck, Requirement::CustomerFactoringId],
        layout: None,
        api: Some(ApiMapping::Tafs),
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "trufunding",
        name: "TruFunding",
        transport: Transport::Api,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[ApiCredential::ApiKey],
        requires: &[],
        layout: None,
        api: Some(ApiMapping::TruFunding),
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "capital_depot",
        name: "Capital Depot",
        transport: Transport::Manual,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(STANDARD_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "wex_fleetone",
        name: "Wex FleetOne",
        transport: Transport::Manual,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(WEX_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "winfactor",
        name: "WinFactor",
        transport: Transport::Ftp,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(STANDARD_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "compass",
        name: "Compass Funding Solutions",
        transport: Transport::Ftp,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(STANDARD_COLUMNS, Packaging::Zip),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "rts",
        name: "RTS",
        transport: Transport::Ftp,
        max_batch_size: 100,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(STANDARD_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "sunbelt",
        name: "Sunbelt Finance",
        transport: Transport::Ftp,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(STANDARD_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "triumph",
        name: "Triumph",
        transport: Transport::Ftp,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[],
        layout: files(TRIUMPH_COLUMNS, Packaging::Loose),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
    Provider {
        id: "wex_fleetone_ftp",
        name: "Wex FleetOne FTP",
        transport: Transport::Ftp,
        max_batch_size: DEFAULT_MAX_BATCH,
        credit_checks: false,
        status_api: false,
        api_credentials: &[],
        requires: &[Requirement::ReferenceNumber],
        layout: files(WEX_COLUMNS, Packaging::Zip),
        api: None,
        statuses: &GENERIC_STATUSES,
    },
];

pub fn find_provider(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_thirteen_unique_safe_ids() {
        let mut ids: Vec<&str> = PROVIDERS.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 13);
        assert!(ids.iter().all(|id| crate::domain::is_safe_id(id)));
        assert_eq!(find_provider("rts").map(|p| p.max_batch_size), Some(100));
        let with_status_api: Vec<&str> = PROVIDERS.iter().filter(|p| p.status_api).map(|p| p.id).collect();
        assert_eq!(with_status_api, ["otr"]);
    }

    #[test]
    fn file_providers_have_a_layout_and_api_providers_a_mapping() {
        for provider in PROVIDERS.iter() {
            let api = provider.transport == Transport::Api;
            assert_eq!(provider.layout.is_none(), api, "{}", provider.id);
            assert_eq!(provider.api.is_some(), api, "{}", provider.id);
        }
    }
}
