//! Which order fields are personal data, for sealing ([`PersonalData`] for [`OrderEvent`]).

use super::events::OrderEvent;
use crate::personal::{PersonalData, PersonalField, Sealer};

/// The recipient and address of a shipping address, as one sealed value.
pub const SHIPPING_ADDRESS: PersonalField = PersonalField {
    name: "shipping_address",
    free_text: false,
};

/// The contact email and phone, as one sealed value.
pub const CONTACT: PersonalField = PersonalField {
    name: "contact",
    free_text: false,
};

/// A cancellation reason: the customer's own words.
pub const CANCELLATION_REASON: PersonalField = PersonalField {
    name: "cancellation_reason",
    free_text: true,
};

impl PersonalData for OrderEvent {
    fn seal_personal_data<E>(&mut self, seal: &mut Sealer<'_, E>) -> Result<(), E> {
        match self {
            Self::Created(created) => {
                if let Some(address) = &mut created.shipping_address {
                    address.seal_with(SHIPPING_ADDRESS, seal)?;
                }
                if let Some(contact) = &mut created.contact {
                    contact.seal_with(CONTACT, seal)?;
                }
            }
            Self::ShippingAddressChanged(changed) => {
                changed.shipping_address.seal_with(SHIPPING_ADDRESS, seal)?;
            }
            Self::Cancelled(cancelled) => cancelled.reason.seal_with(CANCELLATION_REASON, seal)?,
            Self::Confirmed(_) | Self::Shipped(_) | Self::Delivered(_) => {}
        }
        Ok(())
    }

    fn has_plain_personal_data(&self) -> bool {
        match self {
            Self::Created(created) => {
                created
                    .shipping_address
                    .as_ref()
                    .is_some_and(|a| a.plain().is_some())
                    || created
                        .contact
                        .as_ref()
                        .is_some_and(|c| c.plain().is_some())
            }
            Self::ShippingAddressChanged(changed) => changed.shipping_address.plain().is_some(),
            Self::Cancelled(cancelled) => cancelled.reason.plain().is_some(),
            Self::Confirmed(_) | Self::Shipped(_) | Self::Delivered(_) => false,
        }
    }
}
