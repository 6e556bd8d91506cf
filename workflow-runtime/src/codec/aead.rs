//! Encryption at rest: AES-256-GCM-SIV over each row.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};

use super::keys::Keyring;
use super::{Codec, CodecError, Header, Keys, RowId};

const NONCE: usize = 12;
const TAG: usize = 16;

/// Encrypts and authenticates every row with AES-256-GCM-SIV (RFC 8452;
/// RustCrypto's `aes-gcm-siv`, with AES-NI and carry-less multiplication
/// where the CPU has them, constant-time software otherwise): nothing of a
/// context, an event or an activity output is left in clear in the store,
/// and the row's identity ([`RowId`]) is its authenticated data, so a row
/// altered, copied to another instance or moved to another position of its
/// journal does not decode.
///
/// A row is the [`Header`] (codec 1, the active key's id), a 12-byte nonce,
/// the ciphertext and a 16-byte tag: 34 bytes more than the document.
///
/// Nonces: each codec draws a random 32-bit prefix from the OS when it is
/// made and counts rows in the other 64 bits, so within a codec no nonce
/// repeats (the counter refuses to wrap), with no system call per row. Two codecs made under one key may draw the same
/// prefix (about n²/2³³ for n codecs); GCM-SIV is the AEAD built for that
/// case: a nonce used twice reveals only whether two rows with the same
/// identity and the same bytes are equal, never the key or the plaintext
/// (with AES-GCM it would reveal the authentication key). XChaCha20-Poly1305,
/// whose 192-bit nonces avoid the question, cost 3.2 µs a row each way on
/// the benchmark machine, against about 0.75 µs for AES-GCM-SIV: too much
/// for the engine's throughput.
///
/// ```
/// use workflow_runtime::codec::{Aead, Codec, Keys, RowId};
///
/// let codec = Aead::new(Keys::new(1, [42; 32]))?;
/// let row = RowId { workflow: "Order", instance: "o-1", seq: 3, open: true };
/// let stored = codec.encode(&row, br#"{"card":"4111"}"#)?;
/// assert!(!stored.windows(4).any(|w| w == b"4111"));
/// assert_eq!(&*codec.decode(&row, &stored)?, br#"{"card":"4111"}"#);
/// // The same bytes under another position of the journal do not decode.
/// assert!(codec.decode(&RowId { seq: 4, ..row }, &stored).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Aead {
    ciphers: Keyring<Aes256GcmSiv>,
    prefix: [u8; 4],
    counter: AtomicU64,
}

impl Aead {
    /// A codec with `keys`; fails only if the OS gives no randomness for
    /// the nonce prefix.
    pub fn new(keys: Keys) -> Result<Aead, CodecError> {
        let mut prefix = [0; 4];
        getrandom::fill(&mut prefix).map_err(|e| CodecError::Failed(format!("no randomness for nonces: {e}")))?;
        Ok(Aead {
            ciphers: Keyring::new(&keys, Header::AEAD, |key| Aes256GcmSiv::new(key.into())),
            prefix,
            counter: AtomicU64::new(0),
        })
    }

    fn nonce(&self) -> Result<Nonce, CodecError> {
        let count = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| CodecError::Failed("the codec's nonces ran out (2^64 rows); make a new one".into()))?;
        let mut nonce = Nonce::default();
        nonce[..4].copy_from_slice(&self.prefix);
        nonce[4..].copy_from_slice(&count.to_be_bytes());
        Ok(nonce)
    }
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aead")
            .field("keys", &self.ciphers)
            .finish_non_exhaustive()
    }
}

impl Codec for Aead {
    fn encode(&self, row: &RowId<'_>, plain: &[u8]) -> Result<Vec<u8>, CodecError> {
        let (cipher, header) = self.ciphers.active();
        let nonce = self.nonce()?;
        let mut out = Vec::with_capacity(Header::LEN + NONCE + plain.len() + TAG);
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = cipher
            .encrypt_in_place_detached(
                &nonce,
                &row.authenticated_data(&header),
                &mut out[Header::LEN + NONCE..],
            )
            .map_err(|_| CodecError::Failed("the row is too large to encrypt".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn decode<'a>(&self, row: &RowId<'_>, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, CodecError> {
        let (cipher, header, rest) = self.ciphers.reader(stored)?;
        if rest.len() < NONCE + TAG {
            return Err(CodecError::Rejected(format!(
                "{} bytes, too short for {header}",
                stored.len()
            )));
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let (sealed, tag) = sealed.split_at(sealed.len() - TAG);
        let mut plain = sealed.to_vec();
        cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &row.authenticated_data(&stored[..Header::LEN]),
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| {
                CodecError::Rejected(format!(
                    "it does not authenticate under {header}: altered, moved from another instance or \
                     position, or written with another key of that id"
                ))
            })?;
        Ok(Cow::Owned(plain))
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

    fn codec() -> Aead {
        Aead::new(Keys::new(1, [1; 32])).unwrap()
    }

    #[test]
    fn a_row_reads_back_and_hides_its_bytes() {
        let codec = codec();
        let stored = codec.encode(&ROW, b"{\"password\":\"hunter2\"}").unwrap();
        assert_eq!(Header::read(&stored).unwrap().0, Header { codec: 1, key: 1 });
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(&*codec.decode(&ROW, &stored).unwrap(), b"{\"password\":\"hunter2\"}");
    }

    #[test]
    fn nonces_never_repeat() {
        let codec = codec();
        let one = codec.encode(&ROW, b"same").unwrap();
        let two = codec.encode(&ROW, b"same").unwrap();
        assert_ne!(one[6..18], two[6..18]);
        assert_ne!(one, two);
        let other = Aead::new(Keys::new(1, [1; 32])).unwrap();
        // Another codec draws another prefix (the same once in 2^32 runs).
        assert_ne!(
            other.encode(&ROW, b"same").unwrap()[6..10],
            one[6..10],
            "another codec, another prefix"
        );
        codec.counter.store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(codec.encode(&ROW, b"x"), Err(CodecError::Failed(_))));
    }

    #[test]
    fn a_tampered_row_is_rejected() {
        let codec = codec();
        let stored = codec.encode(&ROW, b"{\"approved\":false}").unwrap();
        for at in [7, 18, stored.len() - 1] {
            let mut tampered = stored.clone();
            tampered[at] ^= 1;
            assert!(
                matches!(codec.decode(&ROW, &tampered), Err(CodecError::Rejected(_))),
                "byte {at}"
            );
        }
        assert!(matches!(
            codec.decode(&ROW, &stored[..20]),
            Err(CodecError::Rejected(_))
        ));
    }

    #[test]
    fn a_row_elsewhere_is_rejected() {
        let codec = codec();
        let stored = codec.encode(&ROW, b"{}").unwrap();
        for elsewhere in [
            RowId { instance: "B", ..ROW },
            RowId { seq: 3, ..ROW },
            RowId { seq: 1, ..ROW },
            RowId { open: false, ..ROW },
            RowId {
                workflow: "Other",
                ..ROW
            },
        ] {
            let error = codec.decode(&elsewhere, &stored).unwrap_err();
            assert_eq!(
                error.to_string(),
                "it does not authenticate under AES-256-GCM-SIV key 1: altered, moved from another \
                 instance or position, or written with another key of that id"
            );
        }
    }

    #[test]
    fn keys_rotate_and_unknown_keys_are_named() {
        let old = codec();
        let written_before = old.encode(&ROW, b"old").unwrap();
        let rotated = Aead::new(Keys::new(2, [2; 32]).with(1, [1; 32]).unwrap()).unwrap();
        assert_eq!(&*rotated.decode(&ROW, &written_before).unwrap(), b"old");
        let written_after = rotated.encode(&ROW, b"new").unwrap();
        assert_eq!(Header::read(&written_after).unwrap().0.key, 2);
        let error = old.decode(&ROW, &written_after).unwrap_err();
        assert_eq!(
            error.to_string(),
            "written with AES-256-GCM-SIV key 2, which this engine does not have (it has \
             AES-256-GCM-SIV keys 1)"
        );
        // Another key under the same id: indistinguishable from tampering.
        let impostor = Aead::new(Keys::new(1, [9; 32])).unwrap();
        assert!(matches!(
            impostor.decode(&ROW, &written_before),
            Err(CodecError::Rejected(_))
        ));
        // A plain row, and a row of the other codec.
        assert!(matches!(
            old.decode(&ROW, b"{}"),
            Err(CodecError::UnknownKey { written_by: None, .. })
        ));
        let mac = super::super::Hmac::new(Keys::new(1, [1; 32]))
            .encode(&ROW, b"{}")
            .unwrap();
        assert!(matches!(
            old.decode(&ROW, &mac),
            Err(CodecError::UnknownKey {
                written_by: Some(Header {
                    codec: Header::HMAC,
                    ..
                }),
                ..
            })
        ));
    }
}
