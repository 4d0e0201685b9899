//! Readable counter keys: what the store keeps with a key when it is
//! inserted (never for keys already stored, so the hot path does not
//! allocate for them).

use crate::limits::MAX_KEY_TEXT_BYTES;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use floodgate_limiter::table::{counter_key_text, Table};
use floodgate_store::{Item, KeyInfo};

fn kv(entry: &Entry) -> (&str, &str) {
    (entry.key.as_str(), entry.value.as_str())
}

/// The key info of `items[position]` of `request`: its limit's identity
/// and its text `domain|k1=v1|k2=v2#limit` (`#override` for a
/// request-supplied limit), cut to [`MAX_KEY_TEXT_BYTES`].
pub fn key_info(
    table: &Table,
    request: &RateLimitRequest,
    items: &[Item],
    owners: &[u16],
    position: usize,
) -> Option<KeyInfo> {
    let item = items.get(position)?;
    let owner = usize::from(*owners.get(position)?);
    let entries = &request.descriptors.get(owner)?.entries;
    let (limit, mut text) = match table.limits().get(item.limit as usize) {
        Some(limit) => (Some(limit.id), counter_key_text(limit, entries, kv)),
        None => {
            let mut text = request.domain.clone();
            for entry in entries {
                text.push('|');
                text.push_str(&entry.key);
                text.push('=');
                text.push_str(&entry.value);
            }
            text.push_str("#override");
            (None, text)
        }
    };
    cut(&mut text, MAX_KEY_TEXT_BYTES);
    Some(KeyInfo {
        limit,
        text: text.into_boxed_str(),
    })
}

pub use floodgate_contract::text::cut_in_place as cut;
