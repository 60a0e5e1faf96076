//! The next-day feedback SLA: working calendar and deadline policies.
pub mod assessment;
pub mod calendar;
pub mod deadline;
pub mod evaluator;

pub use calendar::Calendar;
pub use deadline::DeadlinePolicy;
