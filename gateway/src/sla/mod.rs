//! The next-day feedback SLA: working calendar and deadline policies.
pub mod calendar;
pub mod deadline;

pub use calendar::Calendar;
pub use deadline::DeadlinePolicy;
