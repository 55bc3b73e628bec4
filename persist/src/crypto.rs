//! Passphrase-encrypted snapshots (`.etap`, `.etas`): the plain snapshot wrapped in the `age`
//! format with an scrypt recipient, so the standard `age` tool opens them too
//! (`age -d app.etap > app.tap`).
//!
//! Decryption caps the scrypt work factor ([`MAX_WORK_FACTOR`]), so a hostile file cannot make
//! a load take minutes and gigabytes.

use std::io::{Read, Write};
use std::iter;

use age::secrecy::SecretString;

use crate::FormatError;
use crate::error::EncryptError;

/// How every binary age file starts.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The highest scrypt work factor (log2 N) accepted when decrypting: 2^20 rounds, about 1 GiB
/// of memory and several seconds.
pub const MAX_WORK_FACTOR: u8 = 20;

/// The work factor of new encryptions unless one is given: 2^17 rounds, 128 MiB of memory and
/// well under a second to open on an ordinary machine (0.7 s on a 2-core VM). age's own
/// calibration aims at one second of *encryption* on the machine that encrypts, and often lands
/// on 20 or more, which a slower machine then takes many seconds (or refuses) to open.
pub const DEFAULT_WORK_FACTOR: u8 = 17;

/// A passphrase, kept out of `Debug` output and wiped when dropped.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(text: impl Into<String>) -> Self {
        Passphrase(SecretString::from(text.into()))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

/// What an encrypted save needs: the passphrase, and optionally a fixed scrypt work factor
/// (`None` is [`DEFAULT_WORK_FACTOR`]).
#[derive(Debug, Clone)]
pub struct Key {
    /// The passphrase.
    pub passphrase: Passphrase,
    /// log2 of scrypt's N, 1..=[`MAX_WORK_FACTOR`].
    pub work_factor: Option<u8>,
}

/// True if `bytes` are an age file.
pub fn looks_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC)
}

/// Encrypts `plain` to the key's passphrase.
pub fn encrypt(plain: &[u8], key: &Key) -> Result<Vec<u8>, FormatError> {
    let mut recipient = age::scrypt::Recipient::new(key.passphrase.0.clone());
    let factor = key.work_factor.unwrap_or(DEFAULT_WORK_FACTOR);
    if factor == 0 || factor > MAX_WORK_FACTOR {
        return Err(FormatError::WorkFactorOutOfRange { factor });
    }
    recipient.set_work_factor(factor);
    let encryptor = age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
        .map_err(|error| FormatError::Encrypt(EncryptError::Age(Box::new(error))))?;
    let io_failed = |error| FormatError::Encrypt(EncryptError::Io(error));
    let mut out = Vec::with_capacity(plain.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out).map_err(io_failed)?;
    writer
        .write_all(plain)
        .and_then(|()| writer.finish().map(drop))
        .map_err(io_failed)?;
    Ok(out)
}

/// A reader of the plain bytes of the age stream `cipher`, decrypted as they are read (a
/// damaged stream shows up as a read error).
pub fn decrypt_stream<R: Read>(
    cipher: R,
    passphrase: &Passphrase,
) -> Result<impl Read, FormatError> {
    let decryptor = age::Decryptor::new(cipher).map_err(map_error)?;
    if !decryptor.is_scrypt() {
        return Err(FormatError::NotPassphraseEncrypted);
    }
    let mut identity = age::scrypt::Identity::new(passphrase.0.clone());
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .map_err(map_error)
}

/// Decrypts an age file with `passphrase`.
pub fn decrypt(cipher: &[u8], passphrase: &Passphrase) -> Result<Vec<u8>, FormatError> {
    let decryptor = age::Decryptor::new(cipher).map_err(map_error)?;
    if !decryptor.is_scrypt() {
        return Err(FormatError::NotPassphraseEncrypted);
    }
    let mut identity = age::scrypt::Identity::new(passphrase.0.clone());
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    let mut reader = decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .map_err(map_error)?;
    let mut plain = Vec::new();
    reader
        .read_to_end(&mut plain)
        .map_err(FormatError::DamagedCiphertext)?;
    Ok(plain)
}

fn map_error(error: age::DecryptError) -> FormatError {
    match error {
        age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
            FormatError::WrongPassphrase
        }
        age::DecryptError::ExcessiveWork { required, .. } => FormatError::ExcessiveWork {
            required,
            limit: MAX_WORK_FACTOR,
        },
        age::DecryptError::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            FormatError::Truncated
        }
        other => FormatError::BadEncryptionHeader(other),
    }
}
