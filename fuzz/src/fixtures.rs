//! Orders in the statuses the commands under test start from, made with the domain's own commands
//! (so they are exactly what the service would have stored).

use std::sync::LazyLock;

use domain::{
    Aggregate, AddressInput, CreateOrder, Currency, OrderAggregate, OrderItem, ShippingAddress,
};
use uuid::Uuid;

/// The id of every order the targets create.
pub const ORDER_ID: Uuid = Uuid::from_u128(0x0193_a1b2_0000_7000_8000_0000_0000_0001);

/// The customer of every order the targets create.
pub const CUSTOMER_ID: Uuid = Uuid::from_u128(0x0193_a1b2_0000_7000_8000_0000_0000_0002);

/// An order just created: one line, in EUR.
pub fn created_order() -> &'static OrderAggregate {
    static CREATED: LazyLock<OrderAggregate> = LazyLock::new(|| {
        let eur = Currency::new("EUR").expect("EUR is a currency code");
        let item = OrderItem::new(Uuid::from_u128(3), "SKU-001", 2, 1_050, eur.clone())
            .expect("the fixture line is valid");
        let create = CreateOrder {
            order_id: ORDER_ID,
            customer_id: CUSTOMER_ID,
            currency: eur,
            items: vec![item],
            // An address, so that the confirmed order can ship.
            shipping_address: Some(
                ShippingAddress::new(AddressInput {
                    recipient_name: "Ada Lovelace".into(),
                    line1: "Unter den Linden 1".into(),
                    line2: None,
                    postal_code: "10117".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                })
                .expect("the fixture address is valid"),
            ),
            contact: None,
        };
        let mut order = OrderAggregate::default();
        let events = order.create(&create).expect("the fixture order is valid");
        order.evolve_all(&events);
        order
    });
    &CREATED
}

/// The order of [`created_order`], confirmed.
pub fn confirmed_order() -> &'static OrderAggregate {
    static CONFIRMED: LazyLock<OrderAggregate> = LazyLock::new(|| {
        let mut order = created_order().clone();
        let events = order.confirm().expect("a created order can be confirmed");
        order.evolve_all(&events);
        order
    });
    &CONFIRMED
}
