//! The bank integration gateway of the provincial subsidy-supervision platform.
//!
//! Data flow: `api` -> `intake` (stream, validate, dedupe) -> `store` -> `dispatch` (per-bank links over
//! `codecs`) -> bank; `dispatch` polls results -> `results` (reconcile, apply) -> `store` (+ events).
//! See `ARCHITECTURE.md` in the shared folder and `docs/` for the design.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod events;
pub mod intake;
pub mod keys;
pub mod ops;
pub mod results;
pub mod roster;
pub mod server;
pub mod sla;
pub mod sms;
pub mod store;
