//! Personal data inside events: [`Personal`] holds a value the store only ever sees sealed.
//!
//! A command carries personal values in plain form (an address, an email, a customer's free
//! text); the events a command decides hold them as [`Personal::Plain`] until the service seals
//! them ([`PersonalData::seal_personal_data`]) — encrypts each under its customer's key — before
//! they are applied or stored. From then on, in the state, snapshots, read models and the cache,
//! the value is a [`Sealed`] string the domain never opens: no rule needs the plain text (`ship`
//! only asks whether there is an address). Reading the plain text back is the service's job, at
//! the edge where a response leaves it (ADR 0016).
//!
//! The domain does no cryptography: sealing is a closure the service passes in.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every sealed string starts with this; a stored string without it is legacy plain text.
pub const SEALED_PREFIX: &str = "enc:";

/// What a value erased at write time is stored as (its customer was already forgotten).
pub const ERASED: &str = "enc:erased";

/// An encrypted personal value as stored: `enc:…`, opaque to the domain (the service defines the
/// rest of the format), or [`ERASED`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sealed(String);

impl Sealed {
    /// `text` as a sealed value, if it has the [`SEALED_PREFIX`].
    pub fn new(text: String) -> Option<Self> {
        text.starts_with(SEALED_PREFIX).then_some(Self(text))
    }

    /// The marker for a value that was never stored because its customer had been forgotten.
    pub fn erased() -> Self {
        Self(ERASED.to_owned())
    }

    /// True for [`Sealed::erased`].
    pub fn is_erased(&self) -> bool {
        self.0 == ERASED
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sealed {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(text).ok_or_else(|| format!("a sealed value starts with `{SEALED_PREFIX}`"))
    }
}

impl From<Sealed> for String {
    fn from(sealed: Sealed) -> Self {
        sealed.0
    }
}

impl fmt::Display for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A personal value: plain until sealed, sealed for ever after.
///
/// Stored as the plain value's own JSON or as the sealed string. A stored string with the
/// [`SEALED_PREFIX`] reads as sealed; anything else as plain (events written before sealing
/// existed, such as version-1 cancellation reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal<T> {
    /// Not yet sealed: only between `decide` and the service's sealing step, or in tests and
    /// benchmarks that run without keys.
    Plain(T),
    /// Encrypted (or erased); see [`Sealed`].
    Sealed(Sealed),
}

impl<T> Personal<T> {
    /// The plain value, if not sealed.
    pub fn plain(&self) -> Option<&T> {
        match self {
            Self::Plain(value) => Some(value),
            Self::Sealed(_) => None,
        }
    }

    /// The sealed value, if sealed.
    pub fn sealed(&self) -> Option<&Sealed> {
        match self {
            Self::Plain(_) => None,
            Self::Sealed(sealed) => Some(sealed),
        }
    }
}

impl Personal<String> {
    /// The text as stored: the sealed string, or the plain text of an event written before
    /// sealing (or decided without a key ring).
    pub fn stored_text(&self) -> &str {
        match self {
            Self::Plain(text) => text,
            Self::Sealed(sealed) => sealed.as_str(),
        }
    }
}

impl<T: Serialize> Personal<T> {
    /// Seals a plain value with `seal` (given the field and the value's JSON bytes); a sealed one
    /// is left alone.
    pub fn seal_with<E>(
        &mut self,
        field: PersonalField,
        seal: &mut Sealer<'_, E>,
    ) -> Result<(), E> {
        if let Self::Plain(value) = self {
            // Personal values are strings and string-keyed structs, which always serialize.
            let json = serde_json::to_vec(value).expect("personal values serialize to JSON");
            *self = Self::Sealed(seal(field, json)?);
        }
        Ok(())
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Plain(value) => value.serialize(serializer),
            Self::Sealed(sealed) => serializer.serialize_str(sealed.as_str()),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if let serde_json::Value::String(text) = &value
            && let Some(sealed) = Sealed::new(text.clone())
        {
            return Ok(Self::Sealed(sealed));
        }
        serde_json::from_value(value)
            .map(Self::Plain)
            .map_err(D::Error::custom)
    }
}

/// Which personal field a value is, for the associated data of its ciphertext and for what to do
/// when its customer is already forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonalField {
    /// Stable name, e.g. `shipping_address`; part of the ciphertext's associated data, so never
    /// rename one.
    pub name: &'static str,
    /// Free text the command does not need (a cancellation reason): for a forgotten customer it
    /// is stored as [`Sealed::erased`] and the command goes ahead. Otherwise (an address, a
    /// contact) the command is refused.
    pub free_text: bool,
}

/// What seals one value: the field and the value's JSON bytes in, the sealed string out.
pub type Sealer<'a, E> = dyn FnMut(PersonalField, Vec<u8>) -> Result<Sealed, E> + 'a;

/// Events that may hold personal values, and whose customer they belong to.
pub trait PersonalData {
    /// Seals every plain personal value in `self` with `seal`.
    fn seal_personal_data<E>(&mut self, seal: &mut Sealer<'_, E>) -> Result<(), E>;

    /// True while any personal value in `self` is still plain.
    fn has_plain_personal_data(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_text_is_the_plain_text_or_the_sealed_string() {
        assert_eq!(
            Personal::Plain("damaged".to_owned()).stored_text(),
            "damaged"
        );
        let sealed = Personal::<String>::Sealed(Sealed::erased());
        assert_eq!(sealed.stored_text(), ERASED);
    }
}
