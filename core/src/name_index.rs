//! The name index of a collection: which position holds the child with a given name.
//!
//! The index holds positions only; the names stay in the children themselves and are hashed
//! from there, so building the index of a loaded collection copies no string (a load of
//! 100,000 children made 100,000 `String` keys before). Every call takes the children the
//! positions point into, as they are *after* the change the call records.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::child::Child;

/// Positions of the named children of one collection, found by name.
#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    positions: HashTable<usize>,
    /// Seeded per process: names come from snapshots, so a file cannot pick colliding names
    /// ahead of time.
    hasher: foldhash::fast::RandomState,
}

/// The name of the child at `position`, if it has one.
fn name_at(children: &[Child], position: usize) -> Option<&str> {
    children.get(position).and_then(Child::name)
}

impl NameIndex {
    /// An empty index with room for `capacity` names.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        NameIndex {
            positions: HashTable::with_capacity(capacity),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The position of the child named `name`.
    pub(crate) fn find(&self, children: &[Child], name: &str) -> Option<usize> {
        self.positions
            .find(self.hash(name), |&position| {
                name_at(children, position) == Some(name)
            })
            .copied()
    }

    /// Records that the child at `position` (already in `children`) is named by its name;
    /// returns false, recording nothing, if another position already has that name.
    pub(crate) fn insert(&mut self, children: &[Child], position: usize) -> bool {
        let Some(name) = name_at(children, position) else {
            return true;
        };
        let hash = self.hash(name);
        let hasher = &self.hasher;
        match self.positions.entry(
            hash,
            |&other| name_at(children, other) == Some(name),
            |&other| hasher.hash_one(name_at(children, other).unwrap_or_default()),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(position);
                true
            }
        }
    }

    /// Forgets the child named `name` (still in `children` at its position).
    pub(crate) fn remove(&mut self, children: &[Child], name: &str) {
        if let Ok(entry) = self.positions.find_entry(self.hash(name), |&position| {
            name_at(children, position) == Some(name)
        }) {
            entry.remove();
        }
    }

    /// Moves every recorded position at or after `from` by `by` (after an insertion or a
    /// removal before them).
    pub(crate) fn shift_from(&mut self, from: usize, by: isize) {
        for position in self.positions.iter_mut() {
            if *position >= from {
                *position = position.saturating_add_signed(by);
            }
        }
    }

    /// Forgets every name.
    pub(crate) fn clear(&mut self) {
        self.positions.clear();
    }
}
