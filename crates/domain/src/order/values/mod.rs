//! Value objects: validated on construction *and* on deserialization, so the domain never holds
//! an unchecked value.

mod address;
mod contact;
mod currency;
mod item;
mod money;
mod quantity;
mod sku;
pub(crate) mod text;

pub use address::{AddressInput, ShippingAddress};
pub use contact::{Contact, ContactInput};
pub use currency::Currency;
pub use item::OrderItem;
pub use money::Money;
pub use quantity::Quantity;
pub use sku::Sku;
