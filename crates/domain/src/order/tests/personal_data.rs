//! Addresses and contacts: their value objects, the address change, `ship` needing an address,
//! sealing personal fields, and the v1 → v2 upcast of `OrderCreated`.

use serde_json::json;

use crate::order::{
    AddressInput, ChangeShippingAddress, Contact, ContactInput, MAX_EMAIL_LEN, MAX_PHONE_LEN,
    MAX_POSTAL_CODE_LEN, MAX_RECIPIENT_NAME_LEN, OrderAggregate, OrderCreated, OrderError,
    OrderEvent, OrderStatus, ShipOrder, ShippingAddress, ShippingAddressChanged,
};
use crate::testing::AggregateTest;
use crate::testing::fixtures::*;
use crate::{Aggregate, DomainEvent, Personal, PersonalData, PersonalField, Sealed};

type OrderTest = AggregateTest<OrderAggregate>;

fn input() -> AddressInput {
    AddressInput::from(address())
}

fn address_error(input: AddressInput) -> (&'static str, String) {
    match ShippingAddress::new(input) {
        Err(OrderError::InvalidShippingAddress { field, problem }) => (field, problem),
        other => panic!("expected an invalid address, got {other:?}"),
    }
}

#[test]
fn an_address_is_trimmed_and_an_empty_second_line_dropped() {
    let address = ShippingAddress::new(AddressInput {
        recipient_name: "  Ada Lovelace ".into(),
        line1: " Unter den Linden 1".into(),
        line2: Some("   ".into()),
        postal_code: "10117 ".into(),
        city: " Berlin ".into(),
        country: " DE ".into(),
    })
    .unwrap();
    assert_eq!(address.recipient_name(), "Ada Lovelace");
    assert_eq!(address.line1(), "Unter den Linden 1");
    assert_eq!(address.line2(), None);
    assert_eq!(address.postal_code(), "10117");
    assert_eq!(address.city(), "Berlin");
    assert_eq!(address.country(), "DE");
    assert_eq!(
        crate::testing::fixtures::address().line2(),
        Some("3rd floor")
    );
}

#[test]
fn every_address_field_is_checked_and_named() {
    type Spoil = fn(&mut AddressInput);
    let cases: [(&str, Spoil); 7] = [
        ("recipient_name", |a| a.recipient_name = " ".into()),
        ("line1", |a| a.line1 = "a\u{0}b".into()),
        ("line2", |a| a.line2 = Some("x\ny".into())),
        ("postal_code", |a| {
            a.postal_code = "1".repeat(MAX_POSTAL_CODE_LEN + 1)
        }),
        ("city", |a| a.city = String::new()),
        ("country", |a| a.country = "de".into()),
        ("country", |a| a.country = "XX".into()),
    ];
    for (field, spoil) in cases {
        let mut bad = input();
        spoil(&mut bad);
        assert_eq!(address_error(bad).0, field);
    }
    let mut long = input();
    long.recipient_name = "n".repeat(MAX_RECIPIENT_NAME_LEN + 1);
    assert_eq!(
        address_error(long),
        (
            "recipient_name",
            format!("must be at most {MAX_RECIPIENT_NAME_LEN} characters")
        )
    );
    let mut longest = input();
    longest.recipient_name = "n".repeat(MAX_RECIPIENT_NAME_LEN);
    assert!(ShippingAddress::new(longest).is_ok());
    for country in ["D", "DEU", "ÄÖ"] {
        let mut bad = input();
        bad.country = country.into();
        assert_eq!(address_error(bad).0, "country", "{country}");
    }
}

#[test]
fn every_listed_country_code_is_accepted() {
    let codes = ShippingAddress::country_codes();
    assert_eq!(codes.len(), 249);
    assert!(codes.contains(&"DE") && codes.contains(&"US"));
    for code in codes {
        let mut ok = input();
        ok.country = code.to_owned();
        assert_eq!(ShippingAddress::new(ok).unwrap().country(), code);
    }
}

#[test]
fn a_stored_address_is_checked_again_when_read() {
    let mut stored = serde_json::to_value(address()).unwrap();
    assert_eq!(stored["country"], "DE");
    stored["country"] = json!("ZZ");
    assert!(serde_json::from_value::<ShippingAddress>(stored).is_err());
}

fn contact_error(email: &str, phone: Option<&str>) -> (&'static str, String) {
    let input = ContactInput {
        email: email.into(),
        phone: phone.map(Into::into),
    };
    match Contact::new(input) {
        Err(OrderError::InvalidContact { field, problem }) => (field, problem),
        other => panic!("expected an invalid contact, got {other:?}"),
    }
}

#[test]
fn a_contact_needs_an_email_address_and_takes_an_international_phone_number() {
    assert_eq!(contact().email(), "ada@example.com");
    assert_eq!(contact().phone(), Some("+49301234567"));
    let plain = Contact::new(ContactInput {
        email: " bob@example.org ".into(),
        phone: Some(" ".into()),
    })
    .unwrap();
    assert_eq!(plain.email(), "bob@example.org");
    assert_eq!(plain.phone(), None);
    for phone in ["+1 (555) 010-9999", "+4930123", "+123456789012345"] {
        let ok = Contact::new(ContactInput {
            email: "a@b.co".into(),
            phone: Some(phone.into()),
        });
        assert!(ok.is_ok(), "{phone}");
    }
    assert_eq!(contact_error("not an email", None).0, "email");
    assert_eq!(contact_error(" ", None).0, "email");
    let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN));
    assert_eq!(contact_error(&long, None).0, "email");
    for phone in [
        "030 1234567",
        "+49 30 12x4567",
        "+123456",
        "+1234567890123456",
        "+1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
    ] {
        assert_eq!(contact_error("a@b.co", Some(phone)).0, "phone", "{phone}");
    }
    assert!(MAX_PHONE_LEN < "+1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9".len());
    // The written length is bounded too, separators included: 32 characters pass, 33 do not.
    let longest = format!("+49{}301234567", " ".repeat(MAX_PHONE_LEN - 12));
    assert_eq!(longest.chars().count(), MAX_PHONE_LEN);
    let ok = Contact::new(ContactInput {
        email: "a@b.co".into(),
        phone: Some(longest.clone()),
    });
    assert_eq!(ok.unwrap().phone(), Some("+49301234567"));
    let too_long = longest.replacen(' ', "  ", 1);
    assert_eq!(contact_error("a@b.co", Some(&too_long)).0, "phone");
}

#[test]
fn an_order_is_created_with_its_address_and_contact() {
    let order = OrderTest::given_no_previous_events()
        .when(create_order())
        .then_expect(vec![order_created()]);
    assert_eq!(order.shipping_address(), Some(&Personal::Plain(address())));
    assert_eq!(order.contact(), Some(&Personal::Plain(contact())));
}

#[test]
fn the_address_can_change_until_the_order_ships() {
    let change = || ChangeShippingAddress {
        shipping_address: address_in("Hamburg"),
    };
    let order = OrderTest::given(vec![order_created()])
        .when(change())
        .then_expect(vec![shipping_address_changed()]);
    assert_eq!(
        order.shipping_address(),
        Some(&Personal::Plain(address_in("Hamburg")))
    );
    assert_eq!(order.status(), OrderStatus::Created);
    OrderTest::given(vec![order_created_without_address(), order_confirmed()])
        .when(change())
        .then_expect(vec![shipping_address_changed()]);
    let transition = |status| OrderError::InvalidTransition {
        command: "change-address",
        status,
    };
    OrderTest::given(vec![order_created(), order_confirmed(), order_shipped()])
        .when(change())
        .then_expect_error(transition(OrderStatus::Shipped));
    OrderTest::given(vec![order_created(), order_cancelled()])
        .when(change())
        .then_expect_error(transition(OrderStatus::Cancelled));
    OrderTest::given_no_previous_events()
        .when(change())
        .then_expect_error(OrderError::OrderNotFound);
    assert_eq!(
        OrderAggregate::replay(&[order_created()]).change_shipping_address(address_in("Hamburg")),
        Ok(vec![shipping_address_changed()])
    );
}

#[test]
fn an_order_ships_only_with_an_address() {
    OrderTest::given(vec![order_created_without_address(), order_confirmed()])
        .when(ShipOrder::default())
        .then_expect_error(OrderError::NoShippingAddress);
    OrderTest::given(vec![
        order_created_without_address(),
        shipping_address_changed(),
        order_confirmed(),
    ])
    .when(ShipOrder::default())
    .then_expect(vec![OrderEvent::Shipped(Default::default())]);
    // The lifecycle is checked first: an unconfirmed order without an address is told to confirm.
    OrderTest::given(vec![order_created_without_address()])
        .when(ShipOrder::default())
        .then_expect_error(OrderError::InvalidTransition {
            command: "ship",
            status: OrderStatus::Created,
        });
    assert_eq!(
        OrderError::NoShippingAddress.code(),
        "shipping-address-required"
    );
    assert_eq!(
        OrderError::NoShippingAddress.kind(),
        crate::ErrorKind::StateConflict
    );
}

/// Seals every personal value as `enc:<field>:<its JSON>`, recording the fields it saw.
fn seal_all(event: &mut OrderEvent) -> Vec<PersonalField> {
    let mut seen = Vec::new();
    event
        .seal_personal_data::<()>(&mut |field, json| {
            seen.push(field);
            let text = format!("enc:{}:{}", field.name, String::from_utf8(json).unwrap());
            Ok(Sealed::new(text).unwrap())
        })
        .unwrap();
    seen
}

#[test]
fn sealing_replaces_every_personal_value_and_nothing_else() {
    let mut created = order_created();
    assert!(created.has_plain_personal_data());
    let fields: Vec<_> = seal_all(&mut created).iter().map(|f| f.name).collect();
    assert_eq!(fields, ["shipping_address", "contact"]);
    assert!(!created.has_plain_personal_data());
    let OrderEvent::Created(OrderCreated {
        shipping_address: Some(Personal::Sealed(address)),
        contact: Some(Personal::Sealed(contact)),
        total,
        ..
    }) = &created
    else {
        panic!("{created:?}")
    };
    assert!(
        address
            .as_str()
            .starts_with("enc:shipping_address:{\"recipient_name\":\"Ada")
    );
    assert!(contact.as_str().contains("ada@example.com"));
    assert_eq!(total.amount_minor(), 2_699);
    // Sealing twice changes nothing.
    assert!(seal_all(&mut created).is_empty());

    let mut changed = shipping_address_changed();
    assert!(changed.has_plain_personal_data());
    assert_eq!(seal_all(&mut changed)[0].name, "shipping_address");
    assert!(!changed.has_plain_personal_data());

    let mut cancelled = order_cancelled();
    assert!(cancelled.has_plain_personal_data());
    let fields = seal_all(&mut cancelled);
    assert_eq!(fields[0].name, "cancellation_reason");
    assert!(fields[0].free_text);
    assert!(!cancelled.has_plain_personal_data());

    let mut without = order_created_without_address();
    assert!(!without.has_plain_personal_data());
    assert!(seal_all(&mut without).is_empty());
    for mut event in [order_confirmed(), order_shipped(), order_delivered()] {
        assert!(!event.has_plain_personal_data());
        assert!(seal_all(&mut event).is_empty());
    }
    let mut only_contact = order_created();
    if let OrderEvent::Created(created) = &mut only_contact {
        created.shipping_address = None;
    }
    assert!(only_contact.has_plain_personal_data());
    assert_eq!(seal_all(&mut only_contact).len(), 1);
}

#[test]
fn a_sealing_failure_stops_the_command() {
    let mut created = order_created();
    let result = created.seal_personal_data(&mut |_, _| Err("no key"));
    assert_eq!(result, Err("no key"));
    let mut changed = shipping_address_changed();
    assert_eq!(changed.seal_personal_data(&mut |_, _| Err(1)), Err(1));
    let mut cancelled = order_cancelled();
    assert_eq!(cancelled.seal_personal_data(&mut |_, _| Err(2)), Err(2));
}

#[test]
fn a_sealed_value_round_trips_as_its_string_and_plain_values_as_their_json() {
    let sealed: Personal<String> = Personal::Sealed(Sealed::new("enc:v1:x".into()).unwrap());
    let json = serde_json::to_value(&sealed).unwrap();
    assert_eq!(json, json!("enc:v1:x"));
    assert_eq!(
        serde_json::from_value::<Personal<String>>(json).unwrap(),
        sealed
    );
    assert_eq!(sealed.plain(), None);
    assert_eq!(sealed.sealed().map(Sealed::as_str), Some("enc:v1:x"));
    let plain: Personal<String> = serde_json::from_value(json!("out of stock")).unwrap();
    assert_eq!(plain.plain().map(String::as_str), Some("out of stock"));
    assert_eq!(plain.sealed(), None);
    let address: Personal<ShippingAddress> =
        serde_json::from_value(serde_json::to_value(address()).unwrap()).unwrap();
    assert_eq!(
        address,
        Personal::Plain(crate::testing::fixtures::address())
    );
    assert!(serde_json::from_value::<Personal<ShippingAddress>>(json!("plain text")).is_err());
    assert!(Sealed::new("no prefix".into()).is_none());
    assert!(Sealed::try_from("no prefix".to_owned()).is_err());
    assert!(Sealed::erased().is_erased());
    assert!(!Sealed::new("enc:v1:x".into()).unwrap().is_erased());
    assert_eq!(Sealed::erased().to_string(), crate::ERASED);
    assert_eq!(String::from(Sealed::erased()), "enc:erased");
}

#[test]
fn a_v1_order_created_reads_as_v2_without_address_or_contact() {
    let OrderEvent::Created(v2) = order_created_without_address() else {
        unreachable!()
    };
    let mut v1 = serde_json::to_value(&v2).unwrap();
    let fields = v1.as_object_mut().unwrap();
    fields.remove("shipping_address");
    fields.remove("contact");
    let decoded = OrderEvent::from_stored("OrderCreated", 1, v1.clone()).unwrap();
    assert_eq!(decoded, order_created_without_address());
    // v2 requires both fields (null when absent): a v1 payload is not a v2 one.
    assert!(OrderEvent::from_stored("OrderCreated", 2, v1).is_err());
    // A payload that is not an object passes through the chain to be refused by the decoder.
    assert!(OrderEvent::from_stored("OrderCreated", 1, json!([1])).is_err());
}

#[test]
fn a_stream_mixing_v1_and_v2_events_folds_to_one_state() {
    let OrderEvent::Created(v2) = order_created_without_address() else {
        unreachable!()
    };
    let mut v1 = serde_json::to_value(&v2).unwrap();
    v1.as_object_mut().unwrap().remove("shipping_address");
    v1.as_object_mut().unwrap().remove("contact");
    let stored = [
        ("OrderCreated", 1, v1),
        ("OrderConfirmed", 1, json!({})),
        (
            "ShippingAddressChanged",
            1,
            shipping_address_changed().to_payload(),
        ),
        ("OrderShipped", 1, order_shipped().to_payload()),
    ];
    let events: Vec<OrderEvent> = stored
        .into_iter()
        .map(|(t, v, p)| OrderEvent::from_stored(t, v, p).unwrap())
        .collect();
    let order = OrderAggregate::replay(&events);
    assert_eq!(order.status(), OrderStatus::Shipped);
    assert_eq!(
        order.shipping_address(),
        Some(&Personal::Plain(address_in("Hamburg")))
    );
    assert_eq!(order.contact(), None);
    assert_eq!(
        events[2],
        OrderEvent::ShippingAddressChanged(ShippingAddressChanged {
            shipping_address: Personal::Plain(address_in("Hamburg")),
        })
    );
}

#[test]
fn a_cancellation_reason_cannot_pass_for_a_sealed_value() {
    // Stored plain, `enc:…` would read back as sealed: it is refused when decided.
    for reason in ["enc:e9", "  enc:v1:x "] {
        let refused = OrderAggregate::replay(&[order_created()]).cancel(reason);
        assert!(
            matches!(refused, Err(OrderError::InvalidCancellationReason { problem }) if problem.contains("enc:")),
            "{reason}: {refused:?}"
        );
    }
    assert!(
        OrderAggregate::replay(&[order_created()])
            .cancel("encore: later")
            .is_ok()
    );
}
