//! What the engine does to a journal row's bytes before the store sees them
//! and after it reads them: a [`Codec`].
//!
//! An engine built with [`EngineBuilder::codec`](crate::EngineBuilder::codec)
//! passes the encoded document of every row (see [`journal`](crate::journal))
//! through its codec, so every store holds only what the codec wrote. The
//! codec is told which row it is writing or reading ([`RowId`]: workflow,
//! instance, seq, open flag) and binds the bytes to it: a row copied to
//! another instance or another position of its journal does not decode.
//!
//! A row written by a codec starts with a [`Header`] naming the codec and
//! the key that wrote it, so a store can mix rows written before and after
//! a key rotation; a row written without a codec is a JSON document and
//! starts with `{`. With the `encryption` feature, two codecs come with the
//! crate: `Aead` (AES-256-GCM-SIV: the rows are encrypted and
//! authenticated) and `Hmac` (HMAC-SHA-256: the rows stay readable but
//! cannot be forged), both keyed by `Keys`.

use std::borrow::Cow;
use std::fmt;

#[cfg(feature = "encryption")]
mod aead;
#[cfg(feature = "encryption")]
mod keys;
#[cfg(feature = "encryption")]
mod mac;

#[cfg(feature = "encryption")]
pub use aead::Aead;
#[cfg(feature = "encryption")]
pub use keys::{KeyError, Keys};
#[cfg(feature = "encryption")]
pub use mac::Hmac;

/// Turns a row's encoded document into the bytes the store keeps, and back.
///
/// `encode` must bind its output to `row` (as authenticated data) so that
/// `decode` refuses the bytes under any other [`RowId`]; `decode` must refuse
/// any bytes `encode` did not write. Both are called on the instance's task,
/// once per row: they should be cheap.
///
/// Start the output with a [`Header`] (a codec number of your own: the
/// crate's are 1 and 2) and answer bytes you cannot read with
/// [`CodecError::UnknownKey`] naming it: an engine without your codec, or
/// with another, then reports which codec and key wrote a row instead of
/// calling it corrupt.
pub trait Codec: Send + Sync + 'static {
    /// The bytes the store keeps for the document `plain` of `row`.
    fn encode(&self, row: &RowId<'_>, plain: &[u8]) -> Result<Vec<u8>, CodecError>;

    /// The document of `row` from the bytes the store kept.
    fn decode<'a>(&self, row: &RowId<'_>, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, CodecError>;
}

/// Which row a codec writes or reads: its authenticated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowId<'a> {
    /// The workflow's name.
    pub workflow: &'a str,
    /// The instance's id.
    pub instance: &'a str,
    /// The row's number in the instance's journal.
    pub seq: u64,
    /// Whether the instance is still running after the row's step (a row
    /// whose flag was flipped would otherwise resume a finished instance, or
    /// hide an unfinished one from recovery).
    pub open: bool,
}

impl RowId<'_> {
    /// The row's identity as bytes, followed by `header`: each part
    /// length-prefixed, so that no two identities give the same bytes.
    pub fn authenticated_data(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.workflow.len() + self.instance.len() + 9 + header.len());
        for part in [self.workflow, self.instance] {
            // Ids are far below 4 GiB; the length only separates the parts.
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(u8::from(self.open));
        out.extend_from_slice(header);
        out
    }
}

/// The first bytes of a row a codec wrote: which codec, which key.
///
/// Six bytes: `0x00` (a row written without a codec is JSON and starts with
/// `{`), the codec's number ([`Header::AEAD`], [`Header::HMAC`]) and the
/// key's id, a big-endian `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The codec's number.
    pub codec: u8,
    /// The id of the key that wrote the row.
    pub key: u32,
}

impl Header {
    /// The header's length in bytes.
    pub const LEN: usize = 6;
    /// `Aead`'s number: AES-256-GCM-SIV.
    pub const AEAD: u8 = 1;
    /// `Hmac`'s number: HMAC-SHA-256.
    pub const HMAC: u8 = 2;

    /// The header as written.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let key = self.key.to_be_bytes();
        [0, self.codec, key[0], key[1], key[2], key[3]]
    }

    /// The header of `stored` and what follows it; `None` if `stored` does
    /// not start with one (a row written without a codec).
    pub fn read(stored: &[u8]) -> Option<(Header, &[u8])> {
        match stored {
            [0, codec, a, b, c, d, rest @ ..] => Some((
                Header {
                    codec: *codec,
                    key: u32::from_be_bytes([*a, *b, *c, *d]),
                },
                rest,
            )),
            _ => None,
        }
    }

    /// The codec's name, for messages.
    pub fn codec_name(self) -> Cow<'static, str> {
        match self.codec {
            Self::AEAD => "AES-256-GCM-SIV".into(),
            Self::HMAC => "HMAC-SHA-256".into(),
            other => format!("codec #{other}").into(),
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key {}", self.codec_name(), self.key)
    }
}

/// Why a codec could not encode or decode a row.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The row was written with a key (or a codec) this engine does not
    /// have: it was left as it is.
    UnknownKey {
        /// Which codec and key wrote the row; `None` for a row written
        /// without a codec, read by an engine with one.
        written_by: Option<Header>,
        /// What this engine has.
        have: String,
    },
    /// The bytes are not what the codec wrote for this row: altered, moved
    /// from another instance or position, or written under another key
    /// with the same id.
    Rejected(String),
    /// The codec could not write (its nonces ran out, the OS gave no
    /// randomness).
    Failed(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::UnknownKey {
                written_by: Some(header),
                have,
            } => write!(
                f,
                "written with {header}, which this engine does not have (it has {have})"
            ),
            CodecError::UnknownKey { written_by: None, have } => {
                write!(f, "written without a codec, and this engine reads only {have} rows")
            }
            CodecError::Rejected(reason) | CodecError::Failed(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for CodecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_plain_rows_have_none() {
        let header = Header {
            codec: Header::AEAD,
            key: 0x0102_0304,
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(b"rest");
        assert_eq!(Header::read(&bytes), Some((header, &b"rest"[..])));
        assert_eq!(Header::read(b"{\"v\":1}"), None);
        assert_eq!(Header::read(&[0, 1, 2]), None, "too short");
        assert_eq!(header.to_string(), "AES-256-GCM-SIV key 16909060");
    }

    #[test]
    fn identities_do_not_run_into_each_other() {
        let a = RowId {
            workflow: "ab",
            instance: "c",
            seq: 1,
            open: true,
        };
        let b = RowId {
            workflow: "a",
            instance: "bc",
            ..a
        };
        assert_ne!(a.authenticated_data(b""), b.authenticated_data(b""));
        assert_ne!(a.authenticated_data(b""), RowId { seq: 2, ..a }.authenticated_data(b""));
        assert_ne!(
            a.authenticated_data(b""),
            RowId { open: false, ..a }.authenticated_data(b"")
        );
    }
}
