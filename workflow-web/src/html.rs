//! Writing the pages: escaping, links relative to wherever the router is mounted, times, and
//! the layout every page shares.

use std::fmt::{self, Write};

/// Text escaped for HTML content and double-quoted attributes: the diagrams' escaping.
pub(crate) use workflow_runtime::Escaped as Esc;

/// A path segment or query value, percent-encoded (everything but RFC 3986's unreserved
/// characters).
pub(crate) struct Pct<'a>(pub &'a str);

impl fmt::Display for Pct<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

pub(crate) use workflow_runtime::inspect::{format_time as time, parse_time};

/// Which page of the navigation a page is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Workflows,
    Instances,
}

/// A whole page: `base` leads from the page back to the router's root (`./`, `../`…), so
/// that the pages work wherever the application mounts the router.
pub(crate) fn page(title: &str, base: &str, nav: Nav, body: &str) -> String {
    let current = |n: Nav| if n == nav { " aria-current=\"page\"" } else { "" };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · workflows</title>\
         <link rel=\"stylesheet\" href=\"{base}assets/app.css\">\
         <script src=\"{base}assets/app.js\" defer></script></head>\
         <body data-base=\"{base}\"><header><nav aria-label=\"Main\"><a class=\"brand\" href=\"{base}\">workflows</a>\
         <a href=\"{base}\"{w}>Workflows</a><a href=\"{base}instances\"{i}>Instances</a></nav></header>\
         <main id=\"main\">{body}</main></body></html>\n",
        title = Esc(title),
        w = current(Nav::Workflows),
        i = current(Nav::Instances),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(
            Esc("<a href=\"x\">'&'</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(Pct("o-1/ä b?").to_string(), "o-1%2F%C3%A4%20b%3F");
    }
}
