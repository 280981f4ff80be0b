//! The ciphertext format of a personal field, and the wrapping of data keys.
//!
//! A sealed field is `enc:v1:<customer>:<order>:<field>:<base64url(nonce ‖ ciphertext)>`:
//! XChaCha20-Poly1305 under the customer's data key, a random 192-bit nonce, and associated
//! data `orders/v1/customer/<customer>/order/<order>/<field>`. The ids and the field name in
//! the clear say which key opens it and bind it to its place: moved to another order, field or
//! customer, it no longer opens. They are pseudonymous ids the rows carry anyway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::Sealed;
use uuid::Uuid;

use super::master_key::MasterKey;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

/// One customer's data key (32 random bytes), unwrapped; lives only in memory.
#[derive(Clone)]
pub struct DataKey(XChaCha20Poly1305);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Where a sealed field belongs: the ids and field name its text starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldId<'a> {
    /// Whose key sealed it.
    pub customer_id: Uuid,
    /// The order it belongs to.
    pub order_id: Uuid,
    /// The field's stable name (`shipping_address`, `contact`, `cancellation_reason`).
    pub field: &'a str,
}

impl FieldId<'_> {
    fn associated_data(&self) -> String {
        format!(
            "orders/v1/customer/{}/order/{}/{}",
            self.customer_id, self.order_id, self.field
        )
    }

    /// The ids and field of a sealed text, with its base64 part; `None` if it is not `enc:v1:`.
    pub fn parse(text: &str) -> Option<(FieldId<'_>, &str)> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut parts = rest.splitn(4, ':');
        let customer_id = parts.next()?.parse().ok()?;
        let order_id = parts.next()?.parse().ok()?;
        let field = parts.next()?;
        let data = parts.next()?;
        let id = FieldId {
            customer_id,
            order_id,
            field,
        };
        Some((id, data))
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(&XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(bytes.into()))
    }

    /// Seals `plaintext` (a field's JSON) as `id`.
    pub fn seal(&self, id: FieldId<'_>, plaintext: &[u8]) -> Sealed {
        let bytes = encrypt(&self.0, &id.associated_data(), plaintext);
        let text = format!(
            "{PREFIX}{}:{}:{}:{}",
            id.customer_id,
            id.order_id,
            id.field,
            URL_SAFE_NO_PAD.encode(bytes)
        );
        // The text starts with PREFIX, which has domain::SEALED_PREFIX's `enc:`.
        Sealed::new(text).expect("enc:v1: is a sealed prefix")
    }

    /// The plaintext of a sealed text; `None` if it is malformed, tampered with, moved, or
    /// sealed under another key.
    pub fn open(&self, text: &str) -> Option<Vec<u8>> {
        let (id, data) = FieldId::parse(text)?;
        let bytes = URL_SAFE_NO_PAD.decode(data).ok()?;
        decrypt(&self.0, &id.associated_data(), &bytes)
    }
}

/// A data key as stored: wrapped (encrypted) under the master key.
pub fn wrap_key(master: &MasterKey, customer_id: Uuid, key_bytes: &[u8; 32]) -> Vec<u8> {
    seal_under_master(master, &wrap_aad(customer_id), key_bytes)
}

/// Another secret of the service (a webhook's signing secret, say) as stored: wrapped under the
/// master key like a data key, bound to `context` (`webhook/<id>`), which must be given again to
/// open it.
pub fn wrap_secret(master: &MasterKey, context: &str, secret: &[u8]) -> Vec<u8> {
    seal_under_master(master, &secret_aad(context), secret)
}

/// The secret in `wrapped`, if `master` wrapped it for `context`.
pub fn unwrap_secret(master: &MasterKey, context: &str, wrapped: &[u8]) -> Option<Vec<u8>> {
    open_under_master(master, &secret_aad(context), wrapped)
}

fn seal_under_master(master: &MasterKey, aad: &str, bytes: &[u8]) -> Vec<u8> {
    encrypt(&master.cipher(), aad, bytes)
}

fn open_under_master(master: &MasterKey, aad: &str, wrapped: &[u8]) -> Option<Vec<u8>> {
    decrypt(&master.cipher(), aad, wrapped)
}

/// `nonce ‖ ciphertext` of `bytes` under `cipher`, bound to `aad`, with a random nonce.
fn encrypt(cipher: &XChaCha20Poly1305, aad: &str, bytes: &[u8]) -> Vec<u8> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    // Encryption with a valid key cannot fail for inputs far below the cipher's limit.
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: bytes,
                aad: aad.as_bytes(),
            },
        )
        .expect("XChaCha20-Poly1305 encryption does not fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    out
}

/// The plaintext of what [`encrypt`] made with `cipher` and `aad`; `None` if it was not, or was
/// changed.
fn decrypt(cipher: &XChaCha20Poly1305, aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            &nonce_of(nonce)?,
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

/// The data key in `wrapped`, if `master` wrapped it for `customer_id`.
pub fn unwrap_key(master: &MasterKey, customer_id: Uuid, wrapped: &[u8]) -> Option<DataKey> {
    key_bytes(master, customer_id, wrapped).map(|bytes| DataKey::from_bytes(&bytes))
}

/// A new data key for `customer_id`, and its wrapped form.
pub fn new_data_key(master: &MasterKey, customer_id: Uuid) -> (DataKey, Vec<u8>) {
    let bytes: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
    (
        DataKey::from_bytes(&bytes),
        wrap_key(master, customer_id, &bytes),
    )
}

/// Re-wraps `wrapped` from `old` to `new` (master key rotation); `None` if `old` did not wrap it.
pub fn rewrap(
    old: &MasterKey,
    new: &MasterKey,
    customer_id: Uuid,
    wrapped: &[u8],
) -> Option<Vec<u8>> {
    key_bytes(old, customer_id, wrapped).map(|bytes| wrap_key(new, customer_id, &bytes))
}

/// The raw data key in `wrapped`, if `master` wrapped it for `customer_id`.
fn key_bytes(master: &MasterKey, customer_id: Uuid, wrapped: &[u8]) -> Option<[u8; 32]> {
    open_under_master(master, &wrap_aad(customer_id), wrapped)?
        .try_into()
        .ok()
}

fn nonce_of(bytes: &[u8]) -> Option<XNonce> {
    let bytes: [u8; NONCE_LEN] = bytes.try_into().ok()?;
    Some(bytes.into())
}

fn wrap_aad(customer_id: Uuid) -> String {
    format!("orders/v1/customer-key/{customer_id}")
}

fn secret_aad(context: &str) -> String {
    format!("orders/v1/secret/{context}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(field: &str) -> FieldId<'_> {
        FieldId {
            customer_id: Uuid::from_u128(1),
            order_id: Uuid::from_u128(2),
            field,
        }
    }

    #[test]
    fn a_sealed_field_opens_with_its_key_only_and_only_in_its_place() {
        let key = DataKey::generate();
        let sealed = key.seal(id("contact"), b"{\"email\":\"a@b.co\"}");
        let text = sealed.as_str();
        assert!(text.starts_with("enc:v1:00000000-0000-0000-0000-000000000001:00000000-0000-0000-0000-000000000002:contact:"));
        assert!(!text.contains("a@b.co"));
        assert_eq!(key.open(text).unwrap(), b"{\"email\":\"a@b.co\"}");
        assert_eq!(DataKey::generate().open(text), None);
        let moved = text.replace(":contact:", ":shipping_address:");
        assert_eq!(key.open(&moved), None);
        let other_order = text.replace("-000000000002:", "-000000000003:");
        assert_eq!(key.open(&other_order), None);
        let mut tampered = text.to_owned();
        tampered.pop();
        tampered.push(if text.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(key.open(&tampered), None);
        assert_eq!(key.open("enc:v1:garbage"), None);
        assert_eq!(key.open("enc:erased"), None);
        let short = format!(
            "enc:v1:{}:{}:contact:AAAA",
            Uuid::from_u128(1),
            Uuid::from_u128(2)
        );
        assert_eq!(key.open(&short), None);
        // Two seals of the same value differ (random nonces).
        assert_ne!(key.seal(id("contact"), b"x"), key.seal(id("contact"), b"x"));
    }

    #[test]
    fn a_data_key_unwraps_under_its_master_key_and_customer_only_and_survives_rotation() {
        let master = MasterKey::generate();
        let customer = Uuid::from_u128(1);
        let (key, wrapped) = new_data_key(&master, customer);
        let sealed = key.seal(id("contact"), b"1");
        let unwrapped = unwrap_key(&master, customer, &wrapped).unwrap();
        assert_eq!(unwrapped.open(sealed.as_str()).unwrap(), b"1");
        assert!(unwrap_key(&MasterKey::generate(), customer, &wrapped).is_none());
        assert!(unwrap_key(&master, Uuid::from_u128(9), &wrapped).is_none());
        assert!(unwrap_key(&master, customer, &wrapped[..10]).is_none());
        let next = MasterKey::generate();
        let rewrapped = rewrap(&master, &next, customer, &wrapped).unwrap();
        assert!(unwrap_key(&master, customer, &rewrapped).is_none());
        let rotated = unwrap_key(&next, customer, &rewrapped).unwrap();
        assert_eq!(rotated.open(sealed.as_str()).unwrap(), b"1");
        assert!(rewrap(&next, &master, customer, &wrapped).is_none());
        assert!(rewrap(&master, &next, customer, &[0; 3]).is_none());
    }

    #[test]
    fn a_wrapped_secret_opens_only_with_its_key_and_context() {
        let master = MasterKey::generate();
        let wrapped = wrap_secret(&master, "webhook/1", b"signing secret");
        assert_eq!(
            unwrap_secret(&master, "webhook/1", &wrapped).as_deref(),
            Some(&b"signing secret"[..])
        );
        assert_eq!(unwrap_secret(&master, "webhook/2", &wrapped), None);
        assert_eq!(
            unwrap_secret(&MasterKey::generate(), "webhook/1", &wrapped),
            None
        );
        assert_eq!(unwrap_secret(&master, "webhook/1", &wrapped[..10]), None);
        assert_ne!(
            wrap_secret(&master, "webhook/1", b"s"),
            wrap_secret(&master, "webhook/1", b"s")
        );
    }
}
