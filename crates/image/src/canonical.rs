//! Canonical JSON: sorted object keys, no insignificant whitespace.
//!
//! oci-spec keeps labels and annotations in `HashMap`s, whose iteration order
//! changes from run to run; serialising through a key-sorted value makes the
//! bytes, and so the digests, reproducible.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serialises `value` with every object's keys sorted.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    serde_json::to_vec(&sort(v))
}

fn sort(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sort(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn hash_maps_serialise_the_same_whatever_their_order() {
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for i in 0..50 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..50).rev() {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(
            to_canonical_json(&a).unwrap(),
            to_canonical_json(&b).unwrap()
        );
        let s = String::from_utf8(to_canonical_json(&a).unwrap()).unwrap();
        assert!(s.starts_with("{\"k0\":0,\"k1\":1,\"k10\":10"), "{s}");
    }
}
