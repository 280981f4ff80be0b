//! Value objects validate on construction and on deserialization.

use serde_json::json;

use crate::order::{
    Currency, MAX_QUANTITY, MAX_SKU_LEN, Money, OrderError, OrderItem, Quantity, Sku,
};
use crate::testing::fixtures::{BOOK_ID, currency, eur, item};

#[test]
fn a_zero_quantity_is_rejected() {
    assert_eq!(
        Quantity::new(0),
        Err(OrderError::InvalidQuantity { quantity: 0 })
    );
    assert_eq!(
        OrderItem::new(BOOK_ID, "BOOK", 0, 100, eur()),
        Err(OrderError::InvalidQuantity { quantity: 0 })
    );
}

#[test]
fn a_quantity_above_the_maximum_is_rejected_and_the_maximum_is_accepted() {
    assert!(Quantity::new(MAX_QUANTITY + 1).is_err());
    assert_eq!(
        Quantity::new(MAX_QUANTITY).map(Quantity::value),
        Ok(MAX_QUANTITY)
    );
}

#[test]
fn an_empty_sku_is_rejected() {
    assert!(matches!(
        Sku::new(""),
        Err(OrderError::InvalidSku {
            problem: "it is empty",
            ..
        })
    ));
}

#[test]
fn an_overlong_sku_is_rejected_and_the_maximum_length_is_accepted() {
    assert!(Sku::new(&"A".repeat(MAX_SKU_LEN + 1)).is_err());
    assert!(Sku::new(&"A".repeat(MAX_SKU_LEN)).is_ok());
}

#[test]
fn a_sku_with_characters_outside_the_charset_is_rejected() {
    for bad in ["BOOK 42", "BOOK/42", "BÖÖK", "BOOK\n", "<script>"] {
        assert!(Sku::new(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(
        Sku::new("Az09-_.").map(|s| s.as_str().to_owned()),
        Ok("Az09-_.".to_owned())
    );
}

#[test]
fn an_error_echoes_at_most_a_short_preview_of_the_input() {
    let Err(OrderError::InvalidSku { sku, .. }) = Sku::new(&"A".repeat(10_000)) else {
        panic!("expected InvalidSku");
    };
    // The first MAX_SKU_LEN + 8 characters, then an ellipsis.
    assert_eq!(sku, format!("{}…", "A".repeat(MAX_SKU_LEN + 8)));
    // Up to that length the input is echoed whole.
    let whole = "A".repeat(MAX_SKU_LEN + 8) + " ";
    let Err(OrderError::InvalidSku { sku, .. }) = Sku::new(&whole[1..]) else {
        panic!("expected InvalidSku");
    };
    assert_eq!(sku, &whole[1..]);
    let Err(OrderError::InvalidSku { sku, .. }) = Sku::new("BOOK 42") else {
        panic!("expected InvalidSku");
    };
    assert_eq!(sku, "BOOK 42");
}

#[test]
fn a_sku_displays_as_itself_and_an_item_keeps_its_product() {
    assert_eq!(Sku::new("BOOK-42").unwrap().to_string(), "BOOK-42");
    let line = item(BOOK_ID, "BOOK-42", 2, 1050);
    assert_eq!(line.product_id(), BOOK_ID);
}

#[test]
fn a_negative_unit_price_is_rejected() {
    assert_eq!(
        OrderItem::new(BOOK_ID, "BOOK", 1, -1, eur()),
        Err(OrderError::NegativePrice {
            sku: "BOOK".to_owned(),
            amount_minor: -1
        })
    );
}

#[test]
fn a_currency_must_be_three_uppercase_ascii_letters() {
    for bad in ["", "EU", "EURO", "eur", "E1R", "ÉUR"] {
        assert!(Currency::new(bad).is_err(), "{bad:?} should be rejected");
        assert!(
            Currency::from_stored(bad).is_err(),
            "{bad:?} is not even stored"
        );
    }
    assert_eq!(eur().as_str(), "EUR");
}

#[test]
fn a_new_order_currency_must_be_on_the_iso_list_and_a_stored_one_need_not() {
    for unlisted in ["ABC", "XYZ", "EUX"] {
        assert_eq!(
            Currency::new(unlisted),
            Err(OrderError::InvalidCurrency {
                code: unlisted.to_owned()
            })
        );
        let stored: Currency = serde_json::from_value(json!(unlisted)).unwrap();
        assert_eq!(
            stored.as_str(),
            unlisted,
            "events written before keep loading"
        );
        assert_eq!(stored.minor_unit_exponent(), None);
    }
    for (code, exponent) in [("EUR", 2), ("JPY", 0), ("KWD", 3), ("USD", 2)] {
        assert_eq!(
            Currency::new(code).unwrap().minor_unit_exponent(),
            Some(exponent)
        );
    }
    let codes = Currency::all_codes();
    assert!(codes.len() > 150, "{}", codes.len());
    assert!(
        codes.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted, each once"
    );
    assert!(codes.iter().all(|code| Currency::new(code).is_ok()));
    assert!(codes.contains(&"CHF") && !codes.contains(&"ABC"));
}

#[test]
fn deserialization_runs_the_same_validation() {
    let valid = json!({
        "product_id": BOOK_ID, "sku": "BOOK", "quantity": 1,
        "unit_price": { "amount_minor": 100, "currency": "EUR" }
    });
    assert_eq!(
        serde_json::from_value::<OrderItem>(valid.clone()).unwrap(),
        item(BOOK_ID, "BOOK", 1, 100)
    );
    let invalid = [
        ("quantity", json!(0)),
        ("sku", json!("BAD SKU")),
        (
            "unit_price",
            json!({ "amount_minor": -5, "currency": "EUR" }),
        ),
        (
            "unit_price",
            json!({ "amount_minor": 5, "currency": "eur" }),
        ),
        (
            "unit_price",
            json!({ "amount_minor": 5.5, "currency": "EUR" }),
        ),
    ];
    for (field, value) in invalid {
        let mut json = valid.clone();
        json[field] = value;
        assert!(
            serde_json::from_value::<OrderItem>(json.clone()).is_err(),
            "{json} accepted"
        );
    }
}

#[test]
fn money_arithmetic_is_checked() {
    let max = Money::new(i64::MAX, eur());
    assert_eq!(
        max.checked_add(&Money::new(1, eur())),
        Err(OrderError::AmountOverflow)
    );
    assert_eq!(max.checked_mul(2), Err(OrderError::AmountOverflow));
    assert_eq!(
        Money::new(1, eur()).checked_add(&Money::new(1, currency("USD"))),
        Err(OrderError::CurrencyMismatch {
            expected: eur(),
            found: currency("USD")
        })
    );
    assert_eq!(
        Money::new(250, eur()).checked_mul(3),
        Ok(Money::new(750, eur()))
    );
}

#[test]
fn a_line_total_is_unit_price_times_quantity() {
    assert_eq!(
        item(BOOK_ID, "BOOK", 3, 1_250).line_total(),
        Ok(Money::new(3_750, eur()))
    );
}
