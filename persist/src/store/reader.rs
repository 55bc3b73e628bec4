//! [`ReadStore`]: a store opened for reading only, from its journal and snapshot files. It
//! takes no lock, writes nothing and opens no sled database, so it works on a read-only file
//! system, for a user who may only read the folder, and while a writer has the store.

use std::path::{Path, PathBuf};

use super::index::Index;
use super::layout::{self, Found};
use super::{
    AppSummary, Entry, OpenOptions, SaveRequest, SledStore, Store, StoreAddress, StoreError,
    TagConflict, Tagged, Verified, journal,
};

/// A store opened for reading. See the [module documentation](self).
#[derive(Debug)]
pub struct ReadStore {
    dir: PathBuf,
    index: Index,
    /// Lines of the journal that did not parse or fit, for verify.
    pub(super) problems: Vec<String>,
}

impl ReadStore {
    /// Opens the store at `dir` for reading. A format 1 store (everything in sled) is
    /// migrated first, which needs write access once.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, &OpenOptions::default())
    }

    /// [`ReadStore::open`] with `options` (used only to migrate a format 1 store).
    pub fn open_with(dir: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        match layout::examine(dir)? {
            Found::Nothing => Err(StoreError::NoStore {
                dir: dir.to_owned(),
            }),
            Found::AllInSled => {
                let options = OpenOptions {
                    create: false,
                    ..options.clone()
                };
                drop(SledStore::open_with(dir, &options)?);
                Self::read(dir)
            }
            Found::Files => Self::read(dir),
        }
    }

    fn read(dir: &Path) -> Result<Self, StoreError> {
        let path = layout::journal(dir);
        let replay = match journal::replay(&path) {
            Ok(replay) => replay,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(super::sled_store::damaged(
                    dir,
                    "its journal is missing (run `rtap store rebuild`)".to_owned(),
                ));
            }
            Err(cause) => {
                return Err(StoreError::Io {
                    dir: dir.to_owned(),
                    cause,
                });
            }
        };
        if replay.version > super::STORE_FORMAT_VERSION {
            return Err(StoreError::NewerStore {
                dir: dir.to_owned(),
                found: replay.version,
                supported: super::STORE_FORMAT_VERSION,
            });
        }
        let mut problems: Vec<String> = replay
            .bad_lines
            .iter()
            .map(|(line, why)| format!("journal line {line} does not parse: {why}"))
            .collect();
        let (index, mut misfits) = Index::from_records(replay.records);
        problems.append(&mut misfits);
        Ok(ReadStore {
            dir: dir.to_owned(),
            index,
            problems,
        })
    }

    /// The index the journal gives.
    pub fn index(&self) -> &Index {
        &self.index
    }

    fn read_only(&self) -> StoreError {
        StoreError::ReadOnly {
            dir: self.dir.clone(),
        }
    }
}

impl Store for ReadStore {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn save(&self, _: &str, _: &[u8], _: &SaveRequest<'_>) -> Result<Entry, StoreError> {
        Err(self.read_only())
    }

    fn resolve(&self, address: &StoreAddress) -> Result<Entry, StoreError> {
        self.index.resolve(address)
    }

    fn get(&self, address: &StoreAddress) -> Result<(Entry, Vec<u8>), StoreError> {
        let entry = self.index.resolve(address)?;
        let bytes = super::sled_store::read_file(&self.dir, &entry)?;
        Ok((entry, bytes))
    }

    fn list(&self) -> Result<Vec<AppSummary>, StoreError> {
        Ok(self.index.list())
    }

    fn log(&self, app: &str) -> Result<Vec<Entry>, StoreError> {
        self.index.log(app)
    }

    fn tag(&self, _: &StoreAddress, _: &str, _: TagConflict) -> Result<Tagged, StoreError> {
        Err(self.read_only())
    }

    fn untag(&self, _: &StoreAddress) -> Result<(Entry, String), StoreError> {
        Err(self.read_only())
    }

    fn gc(&self, _: &str, _: usize) -> Result<Vec<Entry>, StoreError> {
        Err(self.read_only())
    }

    fn hold(&self, _: &str, _: Option<u64>) -> Result<super::held::Hold, StoreError> {
        Err(self.read_only())
    }

    fn release(&self, _: &str) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn holder(&self, _: &str) -> Result<Option<super::held::Hold>, StoreError> {
        Ok(None)
    }

    fn verify(&self) -> Result<Verified, StoreError> {
        super::repair::verify_reader(self)
    }
}
