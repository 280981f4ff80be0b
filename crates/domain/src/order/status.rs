//! [`OrderStatus`]: where an order is in its lifecycle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in its lifecycle. Serialized as a snake_case string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// No event yet: the order does not exist.
    #[default]
    NotCreated,
    /// Placed by the customer; can be confirmed or cancelled.
    Created,
    /// Accepted; can be shipped or cancelled.
    Confirmed,
    /// Handed to a carrier; can only be delivered.
    Shipped,
    /// Received by the customer. Final.
    Delivered,
    /// Cancelled before shipping. Final.
    Cancelled,
}

impl OrderStatus {
    /// The statuses an order that exists can have, in lifecycle order: the one list of them
    /// (the API's `status` filter and the console's choices).
    pub const LISTED: [Self; 5] = [
        Self::Created,
        Self::Confirmed,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// The commands an order in this status accepts, by their API names (`POST /orders/{id}/…`),
    /// in lifecycle order; empty for a final status. The console's buttons come from here.
    /// (`change-shipping-address` is accepted until shipping and is not a lifecycle step.)
    pub fn next_commands(self) -> &'static [&'static str] {
        match self {
            Self::Created => &["confirm", "cancel"],
            Self::Confirmed => &["ship", "cancel"],
            Self::Shipped => &["deliver"],
            Self::NotCreated | Self::Delivered | Self::Cancelled => &[],
        }
    }

    /// The snake_case name, identical to the serde representation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotCreated => "not_created",
            Self::Created => "created",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
