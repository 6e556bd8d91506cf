//! Integrity without encryption: HMAC-SHA-256 over each row.

use std::borrow::Cow;

use hmac::Mac;
use sha2::Sha256;

use super::keys::Keyring;
use super::{Codec, CodecError, Header, Keys, RowId};

type HmacSha256 = hmac::Hmac<Sha256>;

const TAG: usize = 32;

/// Signs every row with HMAC-SHA-256 (RustCrypto's `hmac` and `sha2`): the
/// rows stay readable JSON, but a row edited by hand, copied to another
/// instance or moved to another position of its journal is refused, which
/// the unkeyed CRC-32 every row carries cannot do (anyone can recompute it).
///
/// A row is the [`Header`] (codec 2, the active key's id), the 32-byte tag
/// over the row's identity ([`RowId`]) and the document, then the document.
///
/// ```
/// use workflow_runtime::codec::{Codec, Hmac, Keys, RowId};
///
/// let codec = Hmac::new(Keys::new(1, [42; 32]));
/// let row = RowId { workflow: "Order", instance: "o-1", seq: 3, open: true };
/// let mut stored = codec.encode(&row, br#"{"approved":false}"#)?;
/// assert!(stored.ends_with(br#"{"approved":false}"#)); // readable
/// let at = stored.len() - 6;
/// stored[at..at + 5].copy_from_slice(b"true ");
/// assert!(codec.decode(&row, &stored).is_err()); // but not forgeable
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hmac {
    /// Each key's MAC, keyed once.
    macs: Keyring<HmacSha256>,
}

impl Hmac {
    /// A codec with `keys`.
    pub fn new(keys: Keys) -> Hmac {
        Hmac {
            macs: Keyring::new(&keys, Header::HMAC, |key| {
                // HMAC pads a key shorter than SHA-256's 64-byte block
                // with zeros (RFC 2104): padding it here gives the same
                // MAC through the constructor that cannot fail.
                let mut block = [0; 64];
                block[..32].copy_from_slice(key);
                <HmacSha256 as hmac::digest::KeyInit>::new(&block.into())
            }),
        }
    }

    fn mac(keyed: &HmacSha256, row: &RowId<'_>, header: &[u8], document: &[u8]) -> HmacSha256 {
        let mut mac = keyed.clone();
        mac.update(&row.authenticated_data(header));
        mac.update(document);
        mac
    }
}

impl std::fmt::Debug for Hmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hmac").field("keys", &self.macs).finish_non_exhaustive()
    }
}

impl Codec for Hmac {
    fn encode(&self, row: &RowId<'_>, plain: &[u8]) -> Result<Vec<u8>, CodecError> {
        let (keyed, header) = self.macs.active();
        let tag = Self::mac(keyed, row, &header, plain).finalize().into_bytes();
        let mut out = Vec::with_capacity(Header::LEN + TAG + plain.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&tag);
        out.extend_from_slice(plain);
        Ok(out)
    }

    fn decode<'a>(&self, row: &RowId<'_>, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, CodecError> {
        let (keyed, header, rest) = self.macs.reader(stored)?;
        if rest.len() < TAG {
            return Err(CodecError::Rejected(format!(
                "{} bytes, too short for {header}",
                stored.len()
            )));
        }
        let (tag, document) = rest.split_at(TAG);
        // verify_slice compares in constant time.
        Self::mac(keyed, row, &stored[..Header::LEN], document)
            .verify_slice(tag)
            .map_err(|_| {
                CodecError::Rejected(format!(
                    "its signature does not hold under {header}: altered, moved from another instance or \
                     position, or signed with another key of that id"
                ))
            })?;
        Ok(Cow::Borrowed(document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: RowId<'static> = RowId {
        workflow: "Order",
        instance: "A",
        seq: 2,
        open: true,
    };

    #[test]
    fn rows_read_back_and_stay_readable() {
        let codec = Hmac::new(Keys::new(7, [1; 32]));
        let stored = codec.encode(&ROW, b"{\"limit\":10}").unwrap();
        assert!(stored.ends_with(b"{\"limit\":10}"));
        assert_eq!(&*codec.decode(&ROW, &stored).unwrap(), b"{\"limit\":10}");
    }

    #[test]
    fn forged_or_moved_rows_are_rejected() {
        let codec = Hmac::new(Keys::new(7, [1; 32]));
        let stored = codec.encode(&ROW, b"{\"limit\":10}").unwrap();
        let mut raised = stored.clone();
        let at = raised.len() - 3;
        raised[at] = b'9';
        assert!(matches!(codec.decode(&ROW, &raised), Err(CodecError::Rejected(_))));
        for elsewhere in [RowId { instance: "B", ..ROW }, RowId { seq: 5, ..ROW }] {
            assert!(matches!(
                codec.decode(&elsewhere, &stored),
                Err(CodecError::Rejected(_))
            ));
        }
        assert!(matches!(
            codec.decode(&ROW, &stored[..20]),
            Err(CodecError::Rejected(_))
        ));
    }

    #[test]
    fn keys_rotate() {
        let old = Hmac::new(Keys::new(1, [1; 32]));
        let before = old.encode(&ROW, b"{}").unwrap();
        let rotated = Hmac::new(Keys::new(2, [2; 32]).with(1, [1; 32]).unwrap());
        assert_eq!(&*rotated.decode(&ROW, &before).unwrap(), b"{}");
        let after = rotated.encode(&ROW, b"{}").unwrap();
        assert!(matches!(
            old.decode(&ROW, &after),
            Err(CodecError::UnknownKey {
                written_by: Some(Header { key: 2, .. }),
                ..
            })
        ));
    }
}
