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

/// Longest recipient name, in characters: room for a full name and a company's attention line.
pub const MAX_RECIPIENT_NAME_LEN: usize = 100;

/// Longest address line, in characters: what carriers' label formats print.
pub const MAX_ADDRESS_LINE_LEN: usize = 100;

/// Longest postal code, in characters: the longest in use are 10; this leaves room for prefixes.
pub const MAX_POSTAL_CODE_LEN: usize = 16;

/// Longest city name, in characters.
pub const MAX_CITY_LEN: usize = 100;

/// Longest email address, in characters: RFC 5321's limit on a path.
pub const MAX_EMAIL_LEN: usize = 254;

/// Longest phone number as written, separators included, in characters.
pub const MAX_PHONE_LEN: usize = 32;
