//! Wire formats: frame -> records -> fields.
pub mod fixed_width;
