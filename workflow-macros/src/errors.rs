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
/// is near enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Edit distance counting an adjacent transposition as one edit
/// (optimal string alignment), so `Strat` is one edit from `Start`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
    fn edit_distance() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
        assert_eq!(distance("Strat", "Start"), 1);
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
