//! Wire formats: frame -> records -> fields.
pub mod fixed_width;
pub mod iso20022;
pub mod iso8583;
pub mod smpp;
