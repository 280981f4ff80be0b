//! Limits on order input. Each encodes a choice; raising one is safe, lowering one can make
//! stored events undecodable (their value objects re-validate on load) and needs an upcaster.

/// Most lines on one order: bounds event size; larger B2B imports go through another path.
pub const MAX_ITEMS: usize = 100;

/// Most units on one line: catches typos like 1000000 and keeps line totals far from overflow.
pub const MAX_QUANTITY: u32 = 10_000;

/// Longest SKU, in characters: matches the catalogue's SKU column.
pub const MAX_SKU_LEN: usize = 64;

/// Longest cancellation reason, in characters: enough for a support note, not a ticket.
pub const MAX_CANCELLATION_REASON_LEN: usize = 500;

/// Longest carrier name, in characters: carrier names are short; this bounds the event.
pub const MAX_CARRIER_LEN: usize = 100;

/// Longest tracking number, in characters: real ones are under 40; this bounds the event.
pub const MAX_TRACKING_NUMBER_LEN: usize = 100;

/// Largest order total, in minor units (10^13: 100 billion of a two-decimal currency). It bounds
/// every unit price and line total too, and keeps sums of many orders (a day's revenue in the
/// read model) far from `i64` overflow: a day would need 922 337 orders of this size. Checked when
/// an order is placed, not when stored events are read back.
pub const MAX_ORDER_TOTAL_MINOR: i64 = 10_000_000_000_000;
