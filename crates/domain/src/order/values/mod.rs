//! Value objects: validated on construction *and* on deserialization, so the domain never holds
//! an unchecked value.

mod currency;
mod item;
mod money;
mod quantity;
mod sku;

pub use currency::Currency;
pub use item::OrderItem;
pub use money::Money;
pub use quantity::Quantity;
pub use sku::Sku;
