//! `workflow NAME from "charts/order.scxml"; context Ctx;`: a block whose states and events are
//! read from an SCXML or XState chart at compile time.
//!
//! The chart is imported into block text by `workflow_runtime::interop::import`, which is parsed
//! here like a hand-written body, so the rest of the expansion (model, checks, code) cannot tell
//! the difference. The chart's own errors name `FILE:LINE:COLUMN` at the path literal; errors
//! the later stages find in the imported items are placed at the literal too, their message
//! prefixed with where the chart declares the state or event they name. The expansion includes
//! the file's bytes, so cargo rebuilds when the chart changes.

use std::path::PathBuf;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote_spanned;
use syn::parse::ParseStream;
use syn::{LitStr, Token};
use workflow_runtime::interop::import::{import, Format, Imported};

use crate::parse::{kw, Item};

/// The chart a block was imported from.
pub struct Source {
    /// The path as written, for messages.
    shown: String,
    /// The absolute path, for `include_bytes!`.
    path: PathBuf,
    span: Span,
    imported: Imported,
}

/// Parses `from "PATH";` and what may follow it (only `context TYPE;`), reads and imports the
/// chart, and returns the chart's items followed by the written ones.
pub fn parse_from(input: ParseStream) -> syn::Result<(Vec<Item>, Source)> {
    input.parse::<kw::from>()?;
    let literal: LitStr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the chart's path in quotes: `from \"charts/order.scxml\";`",
        )
    })?;
    input.parse::<Token![;]>()?;
    let shown = literal.value();
    let span = literal.span();
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = dir.join(&shown);
    let Some(format) = Format::of_path(&path) else {
        return Err(syn::Error::new(
            span,
            format!("`{shown}`: a chart is an SCXML file (`.scxml`, `.xml`) or an XState configuration (`.json`)"),
        ));
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        syn::Error::new(
            span,
            format!("cannot read the chart `{shown}`: {e} (the path is relative to the crate's Cargo.toml)"),
        )
    })?;
    let imported = import(format, &text).map_err(|e| syn::Error::new(span, format!("{shown}:{e}")))?;
    let body: TokenStream = imported.body().parse().map_err(|e| {
        syn::Error::new(
            span,
            format!("{shown}: the chart's items do not lex (a bug in the importer): {e}"),
        )
    })?;
    let mut items = syn::parse::Parser::parse2(
        |stream: ParseStream| {
            let mut items = Vec::new();
            while !stream.is_empty() {
                items.push(stream.parse::<Item>()?);
            }
            Ok(items)
        },
        respan(body, span),
    )
    .map_err(|e| syn::Error::new(span, format!("{shown}: the chart's items do not parse: {e}")))?;
    while !input.is_empty() {
        let item: Item = input.parse()?;
        match item {
            Item::Context { .. } => items.push(item),
            other => {
                return Err(syn::Error::new(
                    item_span(&other).unwrap_or_else(|| input.span()),
                    format!(
                        "only `context TYPE;` stands beside `from \"{shown}\"`: the chart holds the states and events"
                    ),
                ))
            }
        }
    }
    Ok((
        items,
        Source {
            shown,
            path,
            span,
            imported,
        },
    ))
}

fn item_span(item: &Item) -> Option<Span> {
    match item {
        Item::Context { span, .. }
        | Item::Events { span, .. }
        | Item::Initial { span, .. }
        | Item::Entry { span, .. }
        | Item::Exit { span, .. }
        | Item::Compensate { span, .. } => Some(*span),
        Item::State(s) => Some(s.name.span()),
        Item::History(h) => Some(h.name.span()),
        Item::On(on) => Some(on.span),
        Item::Always(a) => Some(a.span),
        Item::After(a) => Some(a.span),
        Item::Invoke(i) => Some(i.span),
    }
}

/// Every token of `stream` placed at `span`.
fn respan(stream: TokenStream, span: Span) -> TokenStream {
    stream
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

impl Source {
    /// `const _: &[u8] = include_bytes!("/abs/chart.scxml");`: cargo then rebuilds the crate
    /// when the chart changes.
    pub fn track(&self) -> TokenStream {
        let path = self.path.to_string_lossy().into_owned();
        quote_spanned! {self.span=> const _: &[u8] = ::core::include_bytes!(#path); }
    }

    /// The errors of the later stages with the chart's file, line and column of the first state or
    /// event each names (`` `Paid` ``), so the user finds it in the chart.
    pub fn locate(&self, error: syn::Error) -> syn::Error {
        let mut all: Option<syn::Error> = None;
        for e in error {
            let message = e.to_string();
            let place = message
                .split('`')
                .skip(1)
                .step_by(2)
                .find_map(|name| self.imported.position_of(name));
            let located = match place {
                Some(p) => syn::Error::new(e.span(), format!("{}:{p}: {message}", self.shown)),
                None => e,
            };
            match &mut all {
                Some(a) => a.combine(located),
                None => all = Some(located),
            }
        }
        all.unwrap_or(error_fallback(self.span))
    }
}

fn error_fallback(span: Span) -> syn::Error {
    syn::Error::new(span, "the imported chart does not compile")
}
