//! Whether tests run on CI, where a test that needs something this machine lacks (a corpus, a
//! browser) fails instead of saying it did not run: one decision for the conformance runner,
//! its differentials and the web view's browser test. Not part of the public API.

use std::ffi::OsStr;

/// Whether the value of the `CI` environment variable says the tests run on CI: set to
/// anything but nothing, `false` or `0` (CI services set `CI=true`).
pub fn on_ci(ci: Option<&OsStr>) -> bool {
    ci.is_some_and(|v| !(v.is_empty() || v == "false" || v == "0"))
}

/// [`on_ci`] of this process's `CI`.
pub fn here() -> bool {
    on_ci(std::env::var_os("CI").as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_empty_false_or_zero() {
        assert!(!on_ci(None));
        for off in ["", "false", "0"] {
            assert!(!on_ci(Some(OsStr::new(off))), "{off:?}");
        }
        for on in ["true", "1", "yes"] {
            assert!(on_ci(Some(OsStr::new(on))), "{on:?}");
        }
    }
}
