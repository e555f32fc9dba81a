//! The factoring companies factord knows. For now only the catalogue (DESIGN §4): ids,
//! transports and the facts that configuration validation needs. The transports themselves
//! arrive with batch submission.

mod catalogue;

pub use catalogue::{ApiCredential, PROVIDERS, Provider, Transport, find_provider};
