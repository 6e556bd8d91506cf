//! Collecting every error of a block into one `syn::Error`, and suggesting
//! near-miss names.

use std::fmt::Display;

use proc_macro2::Span;

/// Every error found so far; they are all reported in one build.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, span: Span, message: impl Display) {
        self.add(syn::Error::new(span, message));
    }

    pub fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok(value)` if nothing was pushed, else every error combined.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// The unknown-name message: `unknown state `Shiping`: did you mean `Shipping`?`
/// or, with nothing close, the names there are.
pub fn unknown(kind: &str, name: &str, candidates: &[String]) -> String {
    if let Some(best) = closest(name, candidates) {
        return format!("unknown {kind} `{name}`: did you mean `{best}`?");
    }
    if candidates.is_empty() {
        return format!("unknown {kind} `{name}`: none is declared");
    }
    let list: Vec<String> = candidates.iter().take(8).map(|c| format!("`{c}`")).collect();
    let more = if candidates.len() > 8 { ", ..." } else { "" };
    format!("unknown {kind} `{name}`: expected one of {}{more}", list.join(", "))
}

/// The candidate nearest to `name` by edit distance (ignoring case), if it
/// is near enough to be a plausible typo (the runtime's, which the chart importer shares).
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    workflow_runtime::spelling::closest(name, candidates.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggests_the_nearest_name() {
        let states = names(&["Shipping", "Charging", "Start"]);
        assert_eq!(
            unknown("state", "Shiping", &states),
            "unknown state `Shiping`: did you mean `Shipping`?"
        );
        assert_eq!(closest("charging", &states), Some("Charging"));
    }

    #[test]
    fn lists_the_names_when_nothing_is_close() {
        let states = names(&["Shipping", "Start"]);
        assert_eq!(
            unknown("state", "Zebra", &states),
            "unknown state `Zebra`: expected one of `Shipping`, `Start`"
        );
        assert_eq!(unknown("event", "Go", &[]), "unknown event `Go`: none is declared");
    }

    #[test]
    fn errors_combine() {
        let mut errors = Errors::default();
        errors.push(Span::call_site(), "one");
        errors.push(Span::call_site(), "two");
        let all: Vec<String> = errors
            .finish(())
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all, ["one", "two"]);
    }
}
