//! Order tests. Aggregate behaviour goes through the given/when/then harness.

mod codec;
mod errors;
mod golden;
mod harness;
mod lifecycle;
mod personal_data;
mod properties;
mod validation;
mod values;
