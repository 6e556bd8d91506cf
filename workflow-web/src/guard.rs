//! Who may act on a live engine: the application's token, compared in constant time, and
//! requests from the view's own origin only.

use axum::http::{header, HeaderMap, StatusCode};

/// The header an action carries its token in. (A custom header also makes any cross-origin
/// `fetch` a preflighted request, which this router never approves.)
pub const TOKEN_HEADER: &str = "x-workflow-token";

/// The shortest token [`WebConfig::actions`](crate::WebConfig::actions) takes.
pub const MIN_TOKEN_LEN: usize = 16;

/// An action's token, as the application configured it.
#[derive(Clone)]
pub(crate) struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    pub(crate) fn new(token: &str) -> Self {
        Token(token.as_bytes().to_vec())
    }

    /// Whether `given` is the token, in time that depends on the token's length only: every
    /// byte of the token is compared, with the length difference folded into the same
    /// accumulator, so neither a matching prefix nor the given length shows in the timing.
    /// (Hand-written over `subtle`: ten lines do not need a dependency; `black_box` keeps the
    /// optimiser from turning the fold into an early exit.)
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        let mut diff = u8::from(given.len() != self.0.len());
        for (i, &byte) in self.0.iter().enumerate() {
            let other = given.get(i).copied().unwrap_or(!byte);
            diff |= std::hint::black_box(byte ^ other);
        }
        std::hint::black_box(diff) == 0
    }
}

/// Why an action was refused: its status and one line.
pub(crate) type Refusal = (StatusCode, &'static str);

/// Refuses a request a browser sent from another origin: `Sec-Fetch-Site` other than
/// `same-origin` (or `none`, typed by the user), or an `Origin` whose host is not the `Host`
/// the request was sent to. A request with neither header is not a browser's cross-origin
/// request (curl, a script), and the token still decides.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    const CROSS: Refusal = (StatusCode::FORBIDDEN, "cross-origin requests are refused");
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(CROSS);
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(|h| h.as_bytes());
        // `scheme://host[:port]`: what follows the scheme must be the Host header.
        let authority = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority.as_bytes());
        if authority.is_none() || authority != host {
            return Err(CROSS);
        }
    }
    Ok(())
}

/// Checks an action's token.
pub(crate) fn authorised(headers: &HeaderMap, token: &Token) -> Result<(), Refusal> {
    match headers.get(TOKEN_HEADER) {
        Some(given) if token.matches(given.as_bytes()) => Ok(()),
        Some(_) => Err((StatusCode::UNAUTHORIZED, "wrong token")),
        None => Err((
            StatusCode::UNAUTHORIZED,
            "actions need the token in the x-workflow-token header",
        )),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_token_matches_itself_only() {
        let token = Token::new("0123456789abcdef");
        assert!(token.matches(b"0123456789abcdef"));
        for other in [
            &b""[..],
            b"0123456789abcde",
            b"0123456789abcdef0",
            b"1123456789abcdef",
            b"0123456789abcdeg",
        ] {
            assert!(!token.matches(other), "{other:?}");
        }
        // A byte that would be the fold's default for a missing one.
        assert!(!token.matches(&[!b'0']));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(*k, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn only_the_views_own_origin_passes() {
        assert!(same_origin(&headers(&[])).is_ok());
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        for refused in [
            &[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")][..],
            &[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8081")],
            &[("host", "127.0.0.1:8080"), ("origin", "null")],
            &[("origin", "http://127.0.0.1:8080")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
        ] {
            assert_eq!(
                same_origin(&headers(refused)).map_err(|r| r.0),
                Err(StatusCode::FORBIDDEN),
                "{refused:?}"
            );
        }
    }
}
