//! Who is calling, and what their role lets them do.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Creates orders for itself; reads and cancels only its own orders.
    Customer,
    /// Confirms, ships and delivers; reads and cancels every order.
    Staff,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject: a customer id for customers, any identifier for staff.
    pub subject: String,
    /// The role.
    pub role: Role,
}

impl Principal {
    /// The customer id of a customer (its subject must be a UUID); `None` for staff.
    pub fn customer_id(&self) -> Option<Uuid> {
        match self.role {
            Role::Customer => Uuid::parse_str(&self.subject).ok(),
            Role::Staff => None,
        }
    }

    /// Whether this caller may see an order of `owner`. Customers see only their own orders.
    pub fn can_see(&self, owner: Option<Uuid>) -> bool {
        match self.role {
            Role::Staff => true,
            Role::Customer => owner.is_some() && owner == self.customer_id(),
        }
    }
}
