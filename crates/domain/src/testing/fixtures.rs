//! Fixed-id order commands and events for tests. Ids are constants so snapshots are stable.

use uuid::Uuid;

use crate::Personal;
use crate::order::{
    AddressInput, Contact, ContactInput, CreateOrder, Currency, Money, OrderCancelled,
    OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent, OrderItem, OrderShipped,
    ShippingAddress, ShippingAddressChanged,
};

/// Id of the fixture order.
pub const ORDER_ID: Uuid = Uuid::from_u128(0x0193_0c4e_8a00_7000_8000_0000_0000_0001);
/// Id of the fixture customer.
pub const CUSTOMER_ID: Uuid = Uuid::from_u128(0x0193_0c4e_8a00_7000_8000_0000_0000_0002);
/// Product id of the first fixture line.
pub const BOOK_ID: Uuid = Uuid::from_u128(0x0193_0c4e_8a00_7000_8000_0000_0000_0003);
/// Product id of the second fixture line.
pub const PEN_ID: Uuid = Uuid::from_u128(0x0193_0c4e_8a00_7000_8000_0000_0000_0004);

/// `EUR`.
pub fn eur() -> Currency {
    currency("EUR")
}

/// A currency from a code known to be valid; panics otherwise (test-only helper).
pub fn currency(code: &str) -> Currency {
    match Currency::new(code) {
        Ok(currency) => currency,
        Err(error) => panic!("fixture currency {code}: {error}"),
    }
}

/// An item from values known to be valid; panics otherwise (test-only helper).
pub fn item(product_id: Uuid, sku: &str, quantity: u32, unit_price_minor: i64) -> OrderItem {
    match OrderItem::new(product_id, sku, quantity, unit_price_minor, eur()) {
        Ok(item) => item,
        Err(error) => panic!("fixture item {sku}: {error}"),
    }
}

/// Two books at 12.50 EUR and one pen at 1.99 EUR: total 26.99 EUR.
pub fn items() -> Vec<OrderItem> {
    vec![
        item(BOOK_ID, "BOOK-42", 2, 1_250),
        item(PEN_ID, "PEN.blue_1", 1, 199),
    ]
}

/// Ada's address in Berlin.
pub fn address() -> ShippingAddress {
    address_in("Berlin")
}

/// Ada's address, in `city`.
pub fn address_in(city: &str) -> ShippingAddress {
    let input = AddressInput {
        recipient_name: "Ada Lovelace".to_owned(),
        line1: "Unter den Linden 1".to_owned(),
        line2: Some("3rd floor".to_owned()),
        postal_code: "10117".to_owned(),
        city: city.to_owned(),
        country: "DE".to_owned(),
    };
    match ShippingAddress::new(input) {
        Ok(address) => address,
        Err(error) => panic!("fixture address: {error}"),
    }
}

/// Ada's email and phone.
pub fn contact() -> Contact {
    let input = ContactInput {
        email: "ada@example.com".to_owned(),
        phone: Some("+49 30 1234567".to_owned()),
    };
    match Contact::new(input) {
        Ok(contact) => contact,
        Err(error) => panic!("fixture contact: {error}"),
    }
}

/// Creates the fixture order with [`items`], [`address`] and [`contact`].
pub fn create_order() -> CreateOrder {
    CreateOrder {
        order_id: ORDER_ID,
        customer_id: CUSTOMER_ID,
        currency: eur(),
        items: items(),
        shipping_address: Some(address()),
        contact: Some(contact()),
    }
}

/// What [`create_order`] emits (personal fields plain: nothing has sealed them).
pub fn order_created() -> OrderEvent {
    OrderEvent::Created(OrderCreated {
        shipping_address: Some(Personal::Plain(address())),
        contact: Some(Personal::Plain(contact())),
        ..created_without_address()
    })
}

/// An order placed without an address and contact (and every order placed before they existed).
pub fn order_created_without_address() -> OrderEvent {
    OrderEvent::Created(created_without_address())
}

fn created_without_address() -> OrderCreated {
    OrderCreated {
        order_id: ORDER_ID,
        customer_id: CUSTOMER_ID,
        currency: eur(),
        items: items(),
        total: Money::new(2_699, eur()),
        shipping_address: None,
        contact: None,
    }
}

/// The address moved to Hamburg.
pub fn shipping_address_changed() -> OrderEvent {
    OrderEvent::ShippingAddressChanged(ShippingAddressChanged {
        shipping_address: Personal::Plain(address_in("Hamburg")),
    })
}

/// The order was confirmed.
pub fn order_confirmed() -> OrderEvent {
    OrderEvent::Confirmed(OrderConfirmed {})
}

/// The order was cancelled because the customer changed their mind.
pub fn order_cancelled() -> OrderEvent {
    OrderEvent::Cancelled(OrderCancelled {
        reason: Personal::Plain("customer changed their mind".to_owned()),
    })
}

/// The order was shipped with DHL.
pub fn order_shipped() -> OrderEvent {
    OrderEvent::Shipped(OrderShipped {
        carrier: Some("DHL".to_owned()),
        tracking_number: Some("JD014600003828".to_owned()),
    })
}

/// The order was delivered.
pub fn order_delivered() -> OrderEvent {
    OrderEvent::Delivered(OrderDelivered {})
}
