//! FNV-1a, the hash behind everything the engine must compute the same way
//! in every process, on every platform and with every Rust release: a
//! workflow's fingerprint and the idempotency keys of activity and
//! compensation calls, both written to journals and handed to services.
//!
//! Not the standard library's `DefaultHasher`, whose output is not promised
//! across releases (a call in flight across a toolchain upgrade would get
//! a new key), and not a dependency: FNV-1a is specified by its published
//! offset basis and prime (draft-eastlake-fnv), takes a few lines, and is
//! fast on short inputs. It is not a cryptographic hash: keys are distinct
//! for distinct calls with overwhelming probability (128 bits), but not
//! against instance ids chosen on purpose to collide.

/// The 64-bit FNV-1a hash of `bytes`.
pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The 128-bit FNV-1a hash, fed piece by piece.
pub(crate) struct Fnv128(u128);

impl Fnv128 {
    pub(crate) const fn new() -> Self {
        Self(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
        self
    }

    /// A string, after its length (as 8 little-endian bytes), so that a
    /// sequence of strings hashes unambiguously: `("ab", "c")` is not
    /// `("a", "bc")`.
    pub(crate) fn str(self, text: &str) -> Self {
        self.u64(text.len() as u64).bytes(text.as_bytes())
    }

    /// A number, as 8 little-endian bytes.
    pub(crate) fn u64(self, n: u64) -> Self {
        self.bytes(&n.to_le_bytes())
    }

    pub(crate) const fn finish(&self) -> u128 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(Fnv128::new().finish(), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(
            Fnv128::new().bytes(b"a").finish(),
            0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964
        );
        assert_eq!(
            Fnv128::new().bytes(b"foobar").finish(),
            0x343e_1662_793c_64bf_6f0d_3597_ba44_6f18
        );
    }

    #[test]
    fn strings_are_length_prefixed() {
        let key = |a: &str, b: &str| Fnv128::new().str(a).str(b).finish();
        assert_ne!(key("ab", "c"), key("a", "bc"));
    }
}
