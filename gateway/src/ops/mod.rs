//! Operations: metrics, logging set-up.
pub mod logging;
pub mod metrics;
