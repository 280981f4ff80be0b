//! [`OrderAggregate`]: the order's state, folded from its events. Also the snapshot format.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::commands::{
    CancelOrder, ChangeShippingAddress, ConfirmOrder, CreateOrder, DeliverOrder, OrderCommand,
    ShipOrder,
};
use super::decide;
use super::errors::OrderError;
use super::events::OrderEvent;
use super::status::OrderStatus;
use super::values::{Contact, Currency, Money, OrderItem, ShippingAddress};
use crate::aggregate::Aggregate;
use crate::personal::Personal;

/// The order aggregate. Fields change only through [`OrderAggregate::apply`].
///
/// Personal fields hold what the events hold: sealed values in the service, so that a snapshot
/// of the state is as unreadable as the events without the customer's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAggregate {
    id: Option<Uuid>,
    customer_id: Option<Uuid>,
    status: OrderStatus,
    currency: Option<Currency>,
    items: Vec<OrderItem>,
    total: Option<Money>,
    cancellation_reason: Option<Personal<String>>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    shipping_address: Option<Personal<ShippingAddress>>,
    contact: Option<Personal<Contact>>,
}

impl Aggregate for OrderAggregate {
    const TYPE: &'static str = "Order";
    /// v2: personal fields (address, contact; the cancellation reason is sealed).
    const SNAPSHOT_VERSION: u32 = 2;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        decide::decide(self, command)
    }

    fn evolve(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Created(e) => {
                self.id = Some(e.order_id);
                self.customer_id = Some(e.customer_id);
                self.currency = Some(e.currency.clone());
                self.items.clone_from(&e.items);
                self.total = Some(e.total.clone());
                self.shipping_address.clone_from(&e.shipping_address);
                self.contact.clone_from(&e.contact);
                self.status = OrderStatus::Created;
            }
            OrderEvent::ShippingAddressChanged(e) => {
                self.shipping_address = Some(e.shipping_address.clone());
            }
            OrderEvent::Confirmed(_) => self.status = OrderStatus::Confirmed,
            OrderEvent::Cancelled(e) => {
                self.cancellation_reason = Some(e.reason.clone());
                self.status = OrderStatus::Cancelled;
            }
            OrderEvent::Shipped(e) => {
                self.carrier.clone_from(&e.carrier);
                self.tracking_number.clone_from(&e.tracking_number);
                self.status = OrderStatus::Shipped;
            }
            OrderEvent::Delivered(_) => self.status = OrderStatus::Delivered,
        }
    }
}

/// Business methods: thin wrappers over [`Aggregate::decide`] that return the events to append.
impl OrderAggregate {
    /// Decides [`CreateOrder`].
    pub fn create(&self, command: &CreateOrder) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(&OrderCommand::Create(command.clone()))
    }

    /// Decides [`ConfirmOrder`].
    pub fn confirm(&self) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(&OrderCommand::Confirm(ConfirmOrder))
    }

    /// Decides [`CancelOrder`] with `reason`.
    pub fn cancel(&self, reason: impl Into<String>) -> Result<Vec<OrderEvent>, OrderError> {
        let reason = reason.into();
        self.decide(&OrderCommand::Cancel(CancelOrder { reason }))
    }

    /// Decides [`ShipOrder`].
    pub fn ship(
        &self,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(&OrderCommand::Ship(ShipOrder {
            carrier,
            tracking_number,
        }))
    }

    /// Decides [`ChangeShippingAddress`].
    pub fn change_shipping_address(
        &self,
        shipping_address: ShippingAddress,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(&OrderCommand::ChangeShippingAddress(
            ChangeShippingAddress { shipping_address },
        ))
    }

    /// Decides [`DeliverOrder`].
    pub fn deliver(&self) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(&OrderCommand::Deliver(DeliverOrder))
    }

    /// Applies one event; same as [`Aggregate::evolve`].
    pub fn apply(&mut self, event: &OrderEvent) {
        self.evolve(event);
    }
}

/// Getters. Before the first event every `Option` is `None` and `items` is empty.
impl OrderAggregate {
    /// The order's id.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }

    /// The customer who placed the order.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    /// Where the order is in its lifecycle.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// The lines as ordered.
    pub fn items(&self) -> &[OrderItem] {
        &self.items
    }

    /// The order currency.
    pub fn currency(&self) -> Option<&Currency> {
        self.currency.as_ref()
    }

    /// Sum of the line totals.
    pub fn total(&self) -> Option<&Money> {
        self.total.as_ref()
    }

    /// Why the order was cancelled, once it is (sealed in the service).
    pub fn cancellation_reason(&self) -> Option<&Personal<String>> {
        self.cancellation_reason.as_ref()
    }

    /// Where the order goes, once set (sealed in the service).
    pub fn shipping_address(&self) -> Option<&Personal<ShippingAddress>> {
        self.shipping_address.as_ref()
    }

    /// How to reach the customer about the order, if given (sealed in the service).
    pub fn contact(&self) -> Option<&Personal<Contact>> {
        self.contact.as_ref()
    }

    /// Carrier, once shipped (if given).
    pub fn carrier(&self) -> Option<&str> {
        self.carrier.as_deref()
    }

    /// Tracking number, once shipped (if given).
    pub fn tracking_number(&self) -> Option<&str> {
        self.tracking_number.as_deref()
    }
}
