//! The keys of a keyed codec: several, one active for writing.

use std::fmt;

use super::{CodecError, Header};

/// The keys a keyed codec ([`Aead`](super::Aead), [`Hmac`](super::Hmac))
/// writes and reads rows with: each a 32-byte secret with an id that rows
/// record, one of them active (new rows are written with it), the others
/// only read (rows written before a rotation).
///
/// The keys are the application's to keep: from a secrets manager, a file
/// only the service reads, or an environment variable
/// ([`Keys::from_env`]). Their `Debug` shows ids, never key bytes.
///
/// ```
/// use workflow_runtime::codec::Keys;
///
/// // Key 2 writes; rows written with key 1 before the rotation still read.
/// let keys = Keys::new(2, [7; 32]).with(1, [9; 32])?;
/// assert_eq!(keys.active(), 2);
/// assert_eq!(format!("{keys:?}"), "Keys { active: 2, ids: [2, 1] }");
///
/// let same = Keys::parse(&format!("2:{},1:{}", "07".repeat(32), "09".repeat(32)))?;
/// assert_eq!(same.ids().collect::<Vec<_>>(), [2, 1]);
/// # Ok::<(), workflow_runtime::codec::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Keys {
    /// The active key first.
    keys: Vec<(u32, [u8; 32])>,
}

impl Keys {
    /// One key, `id`, active.
    pub fn new(id: u32, key: [u8; 32]) -> Keys {
        Keys { keys: vec![(id, key)] }
    }

    /// One key from a slice, which must hold 32 bytes.
    pub fn from_slice(id: u32, key: &[u8]) -> Result<Keys, KeyError> {
        let key = key.try_into().map_err(|_| KeyError::Length { id, len: key.len() })?;
        Ok(Keys::new(id, key))
    }

    /// Adds a key that rows written before a rotation need, for reading
    /// only; an id taken already is an error.
    pub fn with(mut self, id: u32, key: [u8; 32]) -> Result<Keys, KeyError> {
        if self.get(id).is_some() {
            return Err(KeyError::Duplicate(id));
        }
        self.keys.push((id, key));
        Ok(self)
    }

    /// Keys written as text: `id:hex` pairs separated by commas, each key
    /// 64 hex digits (32 bytes), the first one active; spaces around the
    /// pairs are ignored. `"2:0a1b…,1:ff00…"`.
    pub fn parse(text: &str) -> Result<Keys, KeyError> {
        let mut keys: Option<Keys> = None;
        for (index, pair) in text.split(',').map(str::trim).enumerate() {
            let malformed = |why: &str| KeyError::Malformed(format!("pair {} ({why})", index + 1));
            let (id, hex) = pair.split_once(':').ok_or_else(|| malformed("not `id:hex`"))?;
            let id: u32 = id.trim().parse().map_err(|_| malformed("its id is not a number"))?;
            let bytes = from_hex(hex.trim()).ok_or_else(|| malformed("its key is not hex digits"))?;
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Length { id, len: bytes.len() })?;
            keys = Some(match keys {
                None => Keys::new(id, key),
                Some(keys) => keys.with(id, key)?,
            });
        }
        keys.ok_or_else(|| KeyError::Malformed("no keys".into()))
    }

    /// Keys from the environment variable `name`, written as for
    /// [`parse`](Self::parse). A missing variable is
    /// [`KeyError::Missing`]; errors never quote the variable's value.
    pub fn from_env(name: &str) -> Result<Keys, KeyError> {
        let text = std::env::var(name).map_err(|_| KeyError::Missing(name.to_string()))?;
        Keys::parse(&text).map_err(|error| match error {
            KeyError::Malformed(why) => KeyError::Malformed(format!("{name}: {why}")),
            other => other,
        })
    }

    /// The id of the key new rows are written with.
    pub fn active(&self) -> u32 {
        self.keys[0].0
    }

    /// Every key's id, the active one first.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// Every key, the active one first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &[u8; 32])> {
        self.keys.iter().map(|(id, key)| (*id, key))
    }

    fn get(&self, id: u32) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(i, _)| *i == id).map(|(_, key)| key)
    }

    /// The keys' ids, for messages.
    pub(crate) fn describe(&self, codec: &str) -> String {
        let ids: Vec<String> = self.ids().map(|id| id.to_string()).collect();
        format!("{codec} keys {}", ids.join(", "))
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("active", &self.active())
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Keys that could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A key is not 32 bytes long.
    Length {
        /// The key's id.
        id: u32,
        /// Its length in bytes.
        len: usize,
    },
    /// Two keys have one id.
    Duplicate(u32),
    /// The keys' text is not `id:hex` pairs (which pair, and why; never the
    /// key itself).
    Malformed(String),
    /// The environment variable is not set (or not Unicode).
    Missing(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Length { id, len } => write!(f, "key {id} is {len} bytes; keys are 32 bytes"),
            KeyError::Duplicate(id) => write!(f, "two keys have the id {id}"),
            KeyError::Malformed(why) => write!(f, "malformed keys: {why}"),
            KeyError::Missing(name) => write!(f, "the environment variable {name} is not set"),
        }
    }
}

impl std::error::Error for KeyError {}

/// What a keyed codec keeps for each of its keys (a cipher, a keyed MAC), the active key's
/// first, with the header its rows carry: the part [`Aead`](super::Aead) and
/// [`Hmac`](super::Hmac) share.
pub(super) struct Keyring<T> {
    codec: u8,
    entries: Vec<(u32, T)>,
    /// The keys' ids and the codec's name, for errors and `Debug`.
    names: String,
}

impl<T> Keyring<T> {
    /// `make` turns each key into what the codec keeps for it.
    pub(super) fn new(keys: &Keys, codec: u8, make: impl FnMut(&[u8; 32]) -> T) -> Keyring<T> {
        let mut make = make;
        Keyring {
            codec,
            entries: keys.iter().map(|(id, key)| (id, make(key))).collect(),
            names: keys.describe(&Header { codec, key: 0 }.codec_name()),
        }
    }

    /// The active key's state, and the header of the rows it writes.
    pub(super) fn active(&self) -> (&T, [u8; Header::LEN]) {
        let (key, state) = &self.entries[0];
        (
            state,
            Header {
                codec: self.codec,
                key: *key,
            }
            .to_bytes(),
        )
    }

    /// The state of the key that wrote `stored`, the row's header and what follows it;
    /// [`CodecError::UnknownKey`] for a row without a header, of another codec or of a key
    /// this ring does not hold.
    pub(super) fn reader<'s>(&self, stored: &'s [u8]) -> Result<(&T, Header, &'s [u8]), CodecError> {
        let unknown = |written_by| CodecError::UnknownKey {
            written_by,
            have: self.names.clone(),
        };
        let (header, rest) = Header::read(stored).ok_or_else(|| unknown(None))?;
        match self.entries.iter().find(|(id, _)| *id == header.key) {
            Some((_, state)) if header.codec == self.codec => Ok((state, header, rest)),
            _ => Err(unknown(Some(header))),
        }
    }
}

impl<T> fmt::Debug for Keyring<T> {
    /// The ids, never the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        assert_eq!(
            Keys::from_slice(1, &[0; 16]).unwrap_err(),
            KeyError::Length { id: 1, len: 16 }
        );
        assert_eq!(
            Keys::new(1, [0; 32]).with(1, [1; 32]).unwrap_err(),
            KeyError::Duplicate(1)
        );
        let secret = "zz".repeat(32);
        let error = Keys::parse(&format!("1:{secret}")).unwrap_err();
        assert_eq!(error.to_string(), "malformed keys: pair 1 (its key is not hex digits)");
        assert_eq!(
            Keys::parse("1:abcd").unwrap_err().to_string(),
            "key 1 is 2 bytes; keys are 32 bytes"
        );
        assert_eq!(
            Keys::parse("x").unwrap_err().to_string(),
            "malformed keys: pair 1 (not `id:hex`)"
        );
        assert_eq!(
            Keys::from_env("WORKFLOW_TEST_NO_SUCH_VARIABLE").unwrap_err(),
            KeyError::Missing("WORKFLOW_TEST_NO_SUCH_VARIABLE".into())
        );
    }

    #[test]
    fn the_first_key_is_active() {
        let keys = Keys::parse(&format!(" 5:{} , 4:{}", "AB".repeat(32), "cd".repeat(32))).unwrap();
        assert_eq!(keys.active(), 5);
        assert_eq!(keys.get(5), Some(&[0xab; 32]));
        assert_eq!(keys.get(4), Some(&[0xcd; 32]));
        assert_eq!(keys.describe("AEAD"), "AEAD keys 5, 4");
    }
}
