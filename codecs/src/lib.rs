//! Framing and wire formats of the payout banks.
//!
//! `framing` turns a byte stream into frames (length headers), `format` turns a frame into records and
//! fields, `field` holds the field encodings the formats share (strict GBK text, digits). Nothing here
//! knows about storage, HTTP or business rules; the layouts themselves are data from `bank-profiles`.
#![forbid(unsafe_code)]

pub mod field;
pub mod format;
pub mod framing;
pub mod mac;
