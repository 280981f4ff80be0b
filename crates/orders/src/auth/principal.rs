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

/// An authenticated caller, parsed from its token: a customer is its customer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A customer (its token's subject is its id).
    Customer(Uuid),
    /// Staff (its token's subject: any identifier, e.g. a user name).
    Staff(String),
}

impl Principal {
    /// The caller named by a token's subject and role; `None` for a customer whose subject is
    /// not a UUID.
    pub fn parse(subject: &str, role: Role) -> Option<Self> {
        match role {
            Role::Customer => Uuid::parse_str(subject).ok().map(Self::Customer),
            Role::Staff => Some(Self::Staff(subject.to_owned())),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        match self {
            Self::Customer(_) => Role::Customer,
            Self::Staff(_) => Role::Staff,
        }
    }

    /// The token's subject as recorded (idempotency scope, event metadata, logs): a customer's
    /// id in its canonical form, or the staff member's identifier.
    pub fn subject(&self) -> String {
        match self {
            Self::Customer(id) => id.to_string(),
            Self::Staff(subject) => subject.clone(),
        }
    }

    /// The customer id of a customer; `None` for staff.
    pub fn customer_id(&self) -> Option<Uuid> {
        match self {
            Self::Customer(id) => Some(*id),
            Self::Staff(_) => None,
        }
    }

    /// Staff passes; a customer is refused, with what only staff may do (`"ship orders"`).
    pub fn require_staff(&self, action: &'static str) -> Result<(), StaffOnly> {
        match self {
            Self::Staff(_) => Ok(()),
            Self::Customer(_) => Err(StaffOnly(action)),
        }
    }

    /// Whether this caller may see an order of `owner`. Customers see only their own orders.
    pub fn can_see(&self, owner: Option<Uuid>) -> bool {
        match self {
            Self::Staff(_) => true,
            Self::Customer(id) => owner == Some(*id),
        }
    }
}

/// A customer asked for what only staff may do (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only staff may {0}")]
pub struct StaffOnly(pub &'static str);
