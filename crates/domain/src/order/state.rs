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

/// The order aggregate: its state, which changes only through [`OrderAggregate::apply`].
///
/// Personal fields hold what the events hold: sealed values in the service, so that a snapshot
/// of the state is as unreadable as the events without the customer's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderAggregate(OrderState);

/// Where an order is: not created yet, or placed with everything its creation fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum OrderState {
    /// No event yet.
    #[default]
    NotCreated,
    /// Created; `status` says how far it has gone since.
    Placed(Box<Placed>),
}

/// A created order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Placed {
    id: Uuid,
    customer_id: Uuid,
    /// Never [`OrderStatus::NotCreated`].
    status: OrderStatus,
    currency: Currency,
    items: Vec<OrderItem>,
    total: Money,
    cancellation_reason: Option<Personal<String>>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    shipping_address: Option<Personal<ShippingAddress>>,
    contact: Option<Personal<Contact>>,
}

impl Aggregate for OrderAggregate {
    const TYPE: &'static str = "Order";
    /// v2: personal fields (address, contact; the cancellation reason is sealed). v3: the state
    /// is `not_created` or `placed` with the fields creation fixes required.
    const SNAPSHOT_VERSION: u32 = 3;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        decide::decide(self, command)
    }

    fn evolve(&mut self, event: &OrderEvent) {
        let placed = match (&mut self.0, event) {
            (OrderState::NotCreated, OrderEvent::Created(e)) => {
                self.0 = OrderState::Placed(Box::new(Placed {
                    id: e.order_id,
                    customer_id: e.customer_id,
                    status: OrderStatus::Created,
                    currency: e.currency.clone(),
                    items: e.items.clone(),
                    total: e.total.clone(),
                    cancellation_reason: None,
                    carrier: None,
                    tracking_number: None,
                    shipping_address: e.shipping_address.clone(),
                    contact: e.contact.clone(),
                }));
                return;
            }
            // `decide` never emits these; a stream that has them is corrupt, and folding leaves
            // the state as it was rather than inventing an order.
            (OrderState::NotCreated, _) | (OrderState::Placed(_), OrderEvent::Created(_)) => return,
            (OrderState::Placed(placed), _) => placed,
        };
        match event {
            OrderEvent::Created(_) => {}
            OrderEvent::ShippingAddressChanged(e) => {
                placed.shipping_address = Some(e.shipping_address.clone());
            }
            OrderEvent::Confirmed(_) => placed.status = OrderStatus::Confirmed,
            OrderEvent::Cancelled(e) => {
                placed.cancellation_reason = Some(e.reason.clone());
                placed.status = OrderStatus::Cancelled;
            }
            OrderEvent::Shipped(e) => {
                placed.carrier.clone_from(&e.carrier);
                placed.tracking_number.clone_from(&e.tracking_number);
                placed.status = OrderStatus::Shipped;
            }
            OrderEvent::Delivered(_) => placed.status = OrderStatus::Delivered,
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
    fn placed(&self) -> Option<&Placed> {
        match &self.0 {
            OrderState::NotCreated => None,
            OrderState::Placed(placed) => Some(placed),
        }
    }

    /// The order's id.
    pub fn id(&self) -> Option<Uuid> {
        self.placed().map(|p| p.id)
    }

    /// The customer who placed the order.
    pub fn customer_id(&self) -> Option<Uuid> {
        self.placed().map(|p| p.customer_id)
    }

    /// Where the order is in its lifecycle.
    pub fn status(&self) -> OrderStatus {
        self.placed().map_or(OrderStatus::NotCreated, |p| p.status)
    }

    /// The lines as ordered.
    pub fn items(&self) -> &[OrderItem] {
        self.placed().map_or(&[], |p| &p.items)
    }

    /// The order currency.
    pub fn currency(&self) -> Option<&Currency> {
        self.placed().map(|p| &p.currency)
    }

    /// Sum of the line totals.
    pub fn total(&self) -> Option<&Money> {
        self.placed().map(|p| &p.total)
    }

    /// Why the order was cancelled, once it is (sealed in the service).
    pub fn cancellation_reason(&self) -> Option<&Personal<String>> {
        self.placed()?.cancellation_reason.as_ref()
    }

    /// Where the order goes, once set (sealed in the service).
    pub fn shipping_address(&self) -> Option<&Personal<ShippingAddress>> {
        self.placed()?.shipping_address.as_ref()
    }

    /// How to reach the customer about the order, if given (sealed in the service).
    pub fn contact(&self) -> Option<&Personal<Contact>> {
        self.placed()?.contact.as_ref()
    }

    /// Carrier, once shipped (if given).
    pub fn carrier(&self) -> Option<&str> {
        self.placed()?.carrier.as_deref()
    }

    /// Tracking number, once shipped (if given).
    pub fn tracking_number(&self) -> Option<&str> {
        self.placed()?.tracking_number.as_deref()
    }
}
