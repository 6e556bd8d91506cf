//! [`Secret`]: a value that `Debug` and `Display` never show.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value kept out of logs: its `Debug` and `Display` print `[redacted]`,
/// while serde sees the value itself (the journal keeps it, encrypted if the
/// engine has the `encryption` feature's `codec::Aead`).
///
/// For fields of a workflow's context, which is the application's own type:
/// wrap the secret fields (`card: Secret<String>`) and derive `Debug` as
/// usual. Event payload fields are marked `#[secret]` in the `workflow!`
/// block instead, and keep their own type.
///
/// ```
/// use workflow_runtime::Secret;
///
/// #[derive(Debug, serde::Serialize)]
/// struct Order { id: u32, card: Secret<String> }
///
/// let order = Order { id: 7, card: Secret::new("4111 1111 1111 1111".into()) };
/// assert_eq!(format!("{order:?}"), "Order { id: 7, card: [redacted] }");
/// assert_eq!(serde_json::to_string(&order).unwrap(), r#"{"id":7,"card":"4111 1111 1111 1111"}"#);
/// assert_eq!(order.card.expose(), "4111 1111 1111 1111");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value, to use it (not to print it).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value, mutably.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    /// The value, unwrapped.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

/// What `Debug` and `Display` print for a secret.
pub const REDACTED: &str = "[redacted]";

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}
