//! Applying upgrade steps while a snapshot loads: the manifest says which version of each type
//! the file holds; older data is rewritten step by step before it is typed, and data from a
//! newer version of a type is refused.

use std::collections::HashMap;

use rtwisted_core::registry;
use rtwisted_core::tree::TYPE_KEY;
use rtwisted_core::upgrade;
use serde_json::Value;

use crate::FormatError;
use crate::header::ManifestEntry;

/// How far each type must go: tag -> (version in the file, version of this build).
type Plan = HashMap<String, (u32, u32)>;

/// Checks the manifest against this build and upgrades `application` in place. Returns how
/// many objects were upgraded.
pub fn upgrade(manifest: &[ManifestEntry], application: &mut Value) -> Result<usize, FormatError> {
    let mut plan = Plan::new();
    for entry in manifest {
        let Some(info) = registry::lookup(&entry.tag) else {
            continue; // unknown types are reported by the caller
        };
        if entry.version > info.version {
            return Err(FormatError::NewerType {
                tag: entry.tag.clone(),
                found: entry.version,
                known: info.version,
            });
        }
        if entry.version < info.version {
            for from in entry.version..info.version {
                if upgrade::step(&entry.tag, from).is_none() {
                    return Err(FormatError::MissingUpgrade {
                        tag: entry.tag.clone(),
                        from,
                    });
                }
            }
            plan.insert(entry.tag.clone(), (entry.version, info.version));
        }
    }
    if plan.is_empty() {
        return Ok(0);
    }
    let mut upgraded = 0;
    walk(application, &plan, &mut upgraded)?;
    Ok(upgraded)
}

fn walk(value: &mut Value, plan: &Plan, upgraded: &mut usize) -> Result<(), FormatError> {
    match value {
        Value::Object(map) => {
            let tag = match map.iter().next() {
                Some((key, Value::String(tag))) if key == TYPE_KEY => Some(tag.clone()),
                _ => None,
            };
            if let Some((tag, (from, to))) = tag.and_then(|tag| plan.get(&tag).map(|p| (tag, *p))) {
                for version in from..to {
                    let step = upgrade::step(&tag, version).ok_or_else(|| {
                        FormatError::MissingUpgrade {
                            tag: tag.clone(),
                            from: version,
                        }
                    })?;
                    (step.upgrade)(map).map_err(|reason| FormatError::UpgradeFailed {
                        tag: tag.clone(),
                        from: version,
                        reason,
                    })?;
                }
                *upgraded += 1;
            }
            for child in map.values_mut() {
                walk(child, plan, upgraded)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, plan, upgraded)?;
            }
        }
        _ => {}
    }
    Ok(())
}
