//! [`KeyRing`]: seals personal fields on the way in and reveals them on the way out, with the
//! customers' data keys cached in memory.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::order::CANCELLATION_REASON;
use domain::{
    Aggregate, DomainEvent, ERASED, OrderAggregate, OrderEvent, PersonalData, SEALED_PREFIX, Sealed,
};
use event_store::RecordedEvent;
use lru::LruCache;
use serde_json::Value;
use uuid::Uuid;

use super::cipher::{DataKey, FieldId, new_data_key, unwrap_key};
use super::keys::{Forgetting, KeyTable, StoredKey};
use super::master_key::MasterKey;
use super::{PersonalDataError, Sealable};

/// How long an instance trusts a cached key (or a cached "forgotten"). The instance that
/// forgets a customer evicts at once; every other instance stops decrypting within this.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Most customers' keys kept unwrapped in memory.
const KEY_CACHE_SIZE: usize = 10_000;

/// Marks an object one of whose personal fields was erased (`"personal_data": "erased"`).
pub const PERSONAL_DATA_FIELD: &str = "personal_data";

#[derive(Clone)]
enum Cached {
    Key(DataKey),
    Forgotten,
}

/// The service's access to personal data. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    master: MasterKey,
    table: KeyTable,
    cache: Mutex<LruCache<Uuid, (Cached, Instant)>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("master_key_id", &self.inner.master.id())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A key ring over `table` (migrations create it) under `master`.
    pub fn new(table: KeyTable, master: MasterKey) -> Self {
        let size = NonZeroUsize::new(KEY_CACHE_SIZE).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Arc::new(Inner {
                master,
                table,
                cache: Mutex::new(LruCache::new(size)),
            }),
        }
    }

    /// The key table.
    pub fn table(&self) -> &KeyTable {
        &self.inner.table
    }

    /// The master key's fingerprint.
    pub fn master_key_id(&self) -> &str {
        self.inner.master.id()
    }

    fn cached(&self, customer_id: Uuid) -> Option<Cached> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(&customer_id) {
            Some((entry, at)) if at.elapsed() < KEY_CACHE_TTL => Some(entry.clone()),
            Some(_) => {
                cache.pop(&customer_id);
                None
            }
            None => None,
        }
    }

    fn remember(&self, customer_id: Uuid, entry: Cached) {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(customer_id, (entry, Instant::now()));
    }

    /// Forgets the cached key of `customer_id` (it was forgotten, here or elsewhere).
    pub fn evict(&self, customer_id: Uuid) {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.pop(&customer_id);
    }

    fn unwrap_row(&self, customer_id: Uuid, row: StoredKey) -> Result<Cached, PersonalDataError> {
        match row {
            StoredKey::Forgotten(_) => Ok(Cached::Forgotten),
            StoredKey::Active {
                wrapped,
                master_key_id,
            } => unwrap_key(&self.inner.master, customer_id, &wrapped)
                .map(Cached::Key)
                .ok_or_else(|| PersonalDataError::Unavailable(format!(
                    "the data key of customer {customer_id} is wrapped under master key {master_key_id}, not the configured {}; configure that master key (ORDERS_MASTER_KEY) or finish `orders keys rotate-master`",
                    self.inner.master.id()
                ))),
        }
    }

    /// The key that seals `customer_id`'s new data, made if the customer has none. A customer
    /// expected to be new costs one round trip (the insert), a known one one or two.
    async fn key_for_write(
        &self,
        customer_id: Uuid,
        likely_new: bool,
    ) -> Result<Cached, PersonalDataError> {
        if let Some(entry) = self.cached(customer_id) {
            return Ok(entry);
        }
        let table = &self.inner.table;
        let row = if likely_new {
            None
        } else {
            table.get(customer_id).await.map_err(unavailable)?
        };
        let entry = match row {
            Some(row) => self.unwrap_row(customer_id, row)?,
            None => {
                let (key, wrapped) = new_data_key(&self.inner.master, customer_id);
                let row = table
                    .insert_if_absent(customer_id, &wrapped, self.inner.master.id())
                    .await
                    .map_err(unavailable)?;
                match row {
                    StoredKey::Active {
                        wrapped: stored, ..
                    } if stored == wrapped => Cached::Key(key),
                    other => self.unwrap_row(customer_id, other)?,
                }
            }
        };
        self.remember(customer_id, entry.clone());
        Ok(entry)
    }

    /// The key that opens `customer_id`'s data: `None` if the customer never had one.
    async fn key_for_read(&self, customer_id: Uuid) -> Result<Option<Cached>, PersonalDataError> {
        if let Some(entry) = self.cached(customer_id) {
            return Ok(Some(entry));
        }
        let Some(row) = self
            .inner
            .table
            .get(customer_id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let entry = self.unwrap_row(customer_id, row)?;
        self.remember(customer_id, entry.clone());
        Ok(Some(entry))
    }

    /// Seals every plain personal value in `events` (decided on `state` of aggregate `id`)
    /// under the customer's key. For a forgotten customer, free text is stored as erased and
    /// anything else refuses the command ([`PersonalDataError::CustomerForgotten`]).
    pub async fn seal<A: Sealable>(
        &self,
        id: Uuid,
        state: &A,
        events: &mut [A::Event],
    ) -> Result<(), PersonalDataError> {
        if !A::has_plain_personal_data(events) {
            return Ok(());
        }
        let customer_id = state.data_subject(events).ok_or_else(|| {
            PersonalDataError::Unavailable(format!("aggregate {id} names no customer"))
        })?;
        let key = self
            .key_for_write(customer_id, state.data_subject(&[]).is_none())
            .await?;
        A::seal_events(events, &mut |field, json| match &key {
            Cached::Key(key) => Ok(key.seal(
                FieldId {
                    customer_id,
                    order_id: id,
                    field: field.name,
                },
                &json,
            )),
            Cached::Forgotten if field.free_text => Ok(Sealed::erased()),
            Cached::Forgotten => Err(PersonalDataError::CustomerForgotten { customer_id }),
        })
    }

    /// Replaces every sealed string in `value` by what it holds (parsed JSON), or by `null`
    /// when its key is gone, marking the object that held it `"personal_data": "erased"`.
    pub async fn reveal(&self, value: &mut Value) -> Result<(), PersonalDataError> {
        self.erase_legacy_reasons(value).await?;
        let mut customers = BTreeSet::new();
        collect_customers(value, &mut customers);
        let mut keys = HashMap::with_capacity(customers.len());
        for customer_id in customers {
            if let Some(Cached::Key(key)) = self.key_for_read(customer_id).await? {
                keys.insert(customer_id, key);
            }
        }
        replace_sealed(value, &keys);
        Ok(())
    }

    /// Legacy plain text in a view: a cancellation reason stored before sealing existed (an
    /// `OrderCancelled` of the first release) is plain in its event, the read model and every
    /// state folded from it. An order object (one with `customer_id`) whose
    /// `cancellation_reason` is plain is shown as it is while its customer is known, and as
    /// erased once the customer is forgotten.
    async fn erase_legacy_reasons(&self, value: &mut Value) -> Result<(), PersonalDataError> {
        let mut owners = BTreeSet::new();
        visit_legacy_reasons(value, &mut |customer, _| {
            owners.insert(customer);
        });
        let mut forgotten = BTreeSet::new();
        for customer in owners {
            if matches!(self.key_for_read(customer).await?, Some(Cached::Forgotten)) {
                forgotten.insert(customer);
            }
        }
        if !forgotten.is_empty() {
            visit_legacy_reasons(value, &mut |customer, reason| {
                if forgotten.contains(&customer) {
                    *reason = Value::String(ERASED.to_owned());
                }
            });
        }
        Ok(())
    }

    /// [`Self::erase_legacy_reasons`] for stored events of `customer_id`'s order: a plain
    /// personal value in one (a legacy cancellation reason) is replaced by the erased marker
    /// once the customer is forgotten. Such an event is shown as the code reads it today.
    pub async fn erase_legacy_events(
        &self,
        customer_id: Uuid,
        events: &mut [RecordedEvent],
    ) -> Result<(), PersonalDataError> {
        let plain: Vec<(usize, OrderEvent)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.aggregate_type == OrderAggregate::TYPE)
            .filter_map(|(i, e)| {
                OrderEvent::from_stored(&e.event_type, e.schema_version, e.payload.clone())
                    .ok()
                    .filter(PersonalData::has_plain_personal_data)
                    .map(|event| (i, event))
            })
            .collect();
        if plain.is_empty()
            || !matches!(
                self.key_for_read(customer_id).await?,
                Some(Cached::Forgotten)
            )
        {
            return Ok(());
        }
        for (i, mut event) in plain {
            let erased: Result<(), std::convert::Infallible> =
                event.seal_personal_data(&mut |_, _| Ok(Sealed::erased()));
            if erased.is_ok() {
                events[i].payload = event.to_payload();
                events[i].schema_version = event.schema_version();
            }
        }
        Ok(())
    }

    /// Destroys `customer_id`'s key (idempotent) and evicts it here.
    pub async fn forget(
        &self,
        customer_id: Uuid,
        by: &str,
    ) -> Result<Forgetting, PersonalDataError> {
        let forgetting = self
            .inner
            .table
            .forget(customer_id, by)
            .await
            .map_err(unavailable)?;
        self.evict(customer_id);
        Ok(forgetting)
    }
}

fn unavailable(error: sqlx::Error) -> PersonalDataError {
    PersonalDataError::Store(error.to_string())
}

/// Calls `visit` with the customer and the reason of every order object in `value` whose
/// cancellation reason is plain text.
fn visit_legacy_reasons(value: &mut Value, visit: &mut impl FnMut(Uuid, &mut Value)) {
    match value {
        Value::Object(fields) => {
            let owner = fields
                .get("customer_id")
                .and_then(Value::as_str)
                .and_then(|id| Uuid::parse_str(id).ok());
            if let Some(owner) = owner
                && let Some(reason) = fields.get_mut(CANCELLATION_REASON.name)
                && reason
                    .as_str()
                    .is_some_and(|r| !r.starts_with(SEALED_PREFIX))
            {
                visit(owner, reason);
            }
            fields
                .values_mut()
                .for_each(|v| visit_legacy_reasons(v, visit));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| visit_legacy_reasons(v, visit)),
        _ => {}
    }
}

fn collect_customers(value: &Value, into: &mut BTreeSet<Uuid>) {
    match value {
        Value::String(text) => {
            if let Some((id, _)) = FieldId::parse(text) {
                into.insert(id.customer_id);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_customers(v, into)),
        Value::Object(fields) => fields.values().for_each(|v| collect_customers(v, into)),
        _ => {}
    }
}

/// Opens sealed strings in place; true if `value` itself was a sealed string that could not be
/// opened (so its object is marked).
fn replace_sealed(value: &mut Value, keys: &HashMap<Uuid, DataKey>) -> bool {
    match value {
        Value::String(text) => {
            let opened = if text == ERASED {
                None
            } else if let Some((id, _)) = FieldId::parse(text) {
                let plain = keys.get(&id.customer_id).and_then(|key| key.open(text));
                if plain.is_none() && keys.contains_key(&id.customer_id) {
                    tracing::warn!(customer_id = %id.customer_id, order_id = %id.order_id, field = id.field, "a sealed field does not open with its customer's key; shown as erased");
                }
                plain.and_then(|json| serde_json::from_slice(&json).ok())
            } else {
                return false;
            };
            match opened {
                Some(plain) => {
                    *value = plain;
                    false
                }
                None => {
                    *value = Value::Null;
                    true
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_sealed(item, keys);
            }
            false
        }
        Value::Object(fields) => {
            let mut erased = false;
            for field in fields.values_mut() {
                erased |= replace_sealed(field, keys);
            }
            if erased {
                fields.insert(PERSONAL_DATA_FIELD.to_owned(), Value::from("erased"));
            }
            false
        }
        _ => false,
    }
}
