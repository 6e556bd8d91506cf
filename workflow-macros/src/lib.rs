//! The `workflow!` procedural macro. Use it through the `workflow` facade
//! crate, which re-exports it with the runtime it generates code for.
//!
//! The expansion runs in four stages, one module each: `parse` (syn AST of
//! the block), `model` (names resolved into a tree of indexed states, events
//! and transitions), `validate` (every compile-time check, all errors
//! reported together) and `codegen` (quote: a flat machine as a direct
//! `match`, a statechart as dispatch tables for the runtime's interpreter).
//!
//! ```
//! use workflow::prelude::*;
//!
//! workflow! {
//!     workflow Light {
//!         initial Off;
//!         events { Flip }
//!         state Off { on Flip => On; }
//!         state On { on Flip => Off; after 10m => Burnt; }
//!         final Burnt (failure);
//!     }
//! }
//!
//! struct NoHandlers;
//! impl LightHandlers for NoHandlers {}
//!
//! let mut light = Light::default();
//! light.handle(&LightEvent::Flip, &NoHandlers).unwrap();
//! assert_eq!(light.state(), LightState::On);
//! ```

mod codegen;
mod errors;
mod import;
mod model;
mod parse;
mod validate;

use proc_macro2::TokenStream;

/// Declares a workflow: states, typed events, transitions with guards and
/// actions, activities with retry and timeout, timers, compensation and final
/// states. See the `workflow` crate's documentation for the grammar and the
/// generated API.
#[proc_macro]
pub fn workflow(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand(input.into()).into()
}

/// The whole expansion on `proc_macro2` tokens: never panics, and turns every
/// error into `compile_error!` invocations at the offending spans.
fn expand(input: TokenStream) -> TokenStream {
    let mut def = match syn::parse2::<parse::WorkflowDef>(input) {
        Ok(def) => def,
        Err(error) => return error.to_compile_error(),
    };
    let from = def.from.take();
    let expansion = model::build(def).and_then(validate::validate).map_or_else(
        |error| match &from {
            Some(source) => source.locate(error).to_compile_error(),
            None => error.to_compile_error(),
        },
        |validated| codegen::generate(&validated),
    );
    match from {
        Some(source) => {
            let track = source.track();
            quote::quote!(#expansion #track)
        }
        None => expansion,
    }
}

#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod never_panics;
