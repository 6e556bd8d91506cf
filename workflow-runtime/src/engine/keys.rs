//! Idempotency keys.

/// The same for every attempt of one invocation, distinct across
/// instances, states and invocations: the 128-bit FNV-1a hash of the
/// instance's id, the state's (or the compensation's) name and the
/// invocation's generation, strings length-prefixed, numbers as 8
/// little-endian bytes. Stable across processes, platforms and Rust
/// releases (see `fnv`): a call in flight across an upgrade keeps its key.
pub(super) fn idempotency_key(id: &str, name: &str, generation: u64) -> u128 {
    crate::fnv::Fnv128::new().str(id).str(name).u64(generation).finish()
}
