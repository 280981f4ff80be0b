//! [`Contact`]: how to reach the customer about an order.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::text::checked_text;
use crate::order::errors::OrderError;
use crate::order::limits::{MAX_EMAIL_LEN, MAX_PHONE_LEN};

/// Contact details as a client sends them, checked by [`Contact::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// An email address.
    pub email: String,
    /// A phone number in international form (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Checked contact details: an email address of valid syntax (RFC 5321/5322, via the
/// `email_address` crate) and, optionally, a phone number in E.164 form (`+`, then 7 to 15
/// digits; spaces, dots, dashes and brackets are dropped). Personal data: events hold it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ContactInput", into = "ContactInput")]
pub struct Contact(ContactInput);

impl Contact {
    /// Checks `input`; the field at fault is named in the error.
    pub fn new(input: ContactInput) -> Result<Self, OrderError> {
        let invalid =
            |field: &'static str, problem: String| OrderError::InvalidContact { field, problem };
        let email = checked_text(&input.email, MAX_EMAIL_LEN)
            .map_err(|problem| invalid("email", problem.describe(MAX_EMAIL_LEN)))?;
        if email_address::EmailAddress::from_str(email).is_err() {
            return Err(invalid(
                "email",
                "is not an email address, such as ada@example.com".to_owned(),
            ));
        }
        let phone = match &input.phone {
            Some(phone) if !phone.trim().is_empty() => Some(
                e164(phone)
                    .ok_or_else(|| {
                        invalid(
                            "phone",
                            format!(
                                "must be an international number: `+`, then 7 to 15 digits (at most {MAX_PHONE_LEN} characters in all), such as +49 30 1234567"
                            ),
                        )
                    })?,
            ),
            _ => None,
        };
        Ok(Self(ContactInput {
            email: email.to_owned(),
            phone,
        }))
    }

    /// The email address.
    pub fn email(&self) -> &str {
        &self.0.email
    }

    /// The phone number in E.164 form, if given.
    pub fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
}

/// `+` and 7 to 15 digits, from a number written with separators; `None` if it is not one.
fn e164(phone: &str) -> Option<String> {
    let phone = phone.trim();
    if phone.chars().count() > MAX_PHONE_LEN {
        return None;
    }
    let rest = phone.strip_prefix('+')?;
    let mut digits = String::from("+");
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    (8..=16).contains(&digits.len()).then_some(digits)
}

impl TryFrom<ContactInput> for Contact {
    type Error = OrderError;

    fn try_from(input: ContactInput) -> Result<Self, Self::Error> {
        Self::new(input)
    }
}

impl From<Contact> for ContactInput {
    fn from(contact: Contact) -> Self {
        contact.0
    }
}
