//! Upgrade steps for persisted types (Twisted's `styles.Versioned`).
//!
//! A type declares its current version when it registers
//! ([`register_type!`](crate::register_type)); every snapshot's manifest records the version of
//! each type it holds. When an older snapshot is loaded, the steps registered for that type run
//! in order — from version 1 to 2, 2 to 3, ... — on the decoded data of every object of the
//! type, before it is typed. A step rewrites the object's fields (its map, `type` key
//! included); it never sees Rust values, so it keeps working when the type has moved on.
//!
//! ```
//! use serde_json::{Map, Value};
//! // Version 2 of `example.Greeter` renamed `text` to `greeting`.
//! fn text_to_greeting(object: &mut Map<String, Value>) -> Result<(), String> {
//!     let text = object.remove("text").ok_or("no 'text' field")?;
//!     object.insert("greeting".into(), text);
//!     Ok(())
//! }
//! rtwisted_core::register_upgrade!("example.Greeter", from 1, text_to_greeting);
//! assert!(rtwisted_core::upgrade::step("example.Greeter", 1).is_some());
//! ```

use serde_json::{Map, Value};

/// Rewrites one object's data from one version to the next.
pub type UpgradeFn = fn(&mut Map<String, Value>) -> Result<(), String>;

/// One registered step: `tag` from version `from` to `from + 1`.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeStep {
    /// The type tag.
    pub tag: &'static str,
    /// The version the step upgrades from.
    pub from: u32,
    /// The rewrite.
    pub upgrade: UpgradeFn,
}

inventory::collect!(UpgradeStep);

/// Registers an upgrade step: `register_upgrade!("ns.Type", from N, function)` upgrades data of
/// version N to N + 1.
#[macro_export]
macro_rules! register_upgrade {
    ($tag:literal, from $from:literal, $function:path) => {
        $crate::inventory::submit! {
            $crate::upgrade::UpgradeStep {
                tag: $tag,
                from: $from,
                upgrade: $function,
            }
        }
    };
}

/// The step that upgrades `tag` from version `from`, if one is registered.
pub fn step(tag: &str, from: u32) -> Option<&'static UpgradeStep> {
    inventory::iter::<UpgradeStep>
        .into_iter()
        .find(|step| step.tag == tag && step.from == from)
}
