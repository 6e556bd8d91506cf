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
/// states, checked at compile time and turned into plain Rust.
///
/// # Grammar
///
/// ```text
/// workflow     := ATTR* VIS "workflow" NAME "{" item* "}"
/// item         := "context" TYPE ";"                       -- top level only; optional, default ()
///               | "events" "{" event,* "}"                 -- top level only; may appear several times
///               | "initial" STATE ";"                      -- required at the top: the state the workflow starts in
///               | "initial" STATE,+ actions                -- in a compound state: its default entry (several: one per region)
///               | ATTR* "state" NAME "{" item* "}"         -- atomic, or compound when it has child states
///               | ATTR* "parallel" NAME "{" item* "}"      -- every child state (region) active at once
///               | ATTR* "final" NAME ["(" "failure" ")"] ( ";" | "{" item* "}" )
///               | "history" ["deep"] NAME ["=>" STATE,+ actions] ";"
///               | "on" events ["if" guard] ["=>" ["internal"] STATE,+] actions
///               | "always" ["if" guard] "=>" ["internal"] STATE,+ actions
///               | "always" ["if" guard] "/" action,+ ";"   -- targetless: runs its actions while the guard holds
///               | "entry" action,+ ";"
///               | "exit" action,+ ";"
///               | "invoke" ACTIVITY "->" TYPE ( ";" | "{" invoke_item* "}" )
///               | "after" DURATION "=>" STATE actions
///               | "compensate" COMPENSATION ";"
/// event        := ATTR* NAME [ "{" FIELD: TYPE,* "}" ]
/// events       := EVENT ("|" EVENT)* | "_" | "done" ["(" STATE ")"]
/// guard        := cond ("&&" cond)*                        -- at most one GUARD method
/// cond         := GUARD | ["!"] "in" "(" STATE ")"
/// invoke_item  := "retry" N ["backoff" DURATION ".." DURATION] ";"   -- each clause at most once, any order
///               | "timeout" DURATION ";"
///               | "resource" NAME ";"
///               | "expected" DURATION ";"
///               | "done" "=>" STATE actions
///               | "error" "=>" STATE actions
/// actions      := ["/" action,+] ";"
/// action       := ACTION | "raise" EVENT | "send" EVENT ["after" DURATION] ["as" ID] | "cancel" ID
/// N            := a whole number of retries: 0 to 4294967294
/// DURATION     := a whole number with a unit: 500ms  30s  5m  2h  7d
/// NAME, STATE, EVENT, ACTION, GUARD, ACTIVITY, COMPENSATION, ID := an identifier, raw ones included
/// ```
///
/// - Attributes: doc comments and attributes on the workflow go to the
///   machine type, `#[allow(LINT)]` naming one of the lints below switches
///   it off (on the workflow, or on a state for that state); a state takes
///   only doc comments and `#[allow(LINT)]`; attributes on an event go to
///   its payload struct, those on a field to the field. `#[cfg]` is refused
///   on the workflow, an event and a field: put it on the `workflow!` call.
///   `#[secret]` on a payload field makes the payload's `Debug` print it as
///   `[redacted]` (serde still sees it); it takes no arguments and goes on
///   fields only.
/// - `retry N` means N retries after the first attempt: at most N + 1
///   attempts (`retry 0`, or no `retry`, is one attempt). Backoff doubles
///   from MIN up to MAX (default `1s..100s`); `timeout` is per attempt.
/// - `after D => S` fires once the state has been active for D; leaving
///   the state cancels it. `send E after D as ID` is an instance-level timer
///   that only `cancel ID` stops.
/// - Several targets (`=> A, B`) must be in different regions of one
///   parallel state; a history's default targets lie inside its parent.
/// - `in(STATE)` holds while that state is active (SCXML `In()`), `!in(STATE)`
///   while it is not, checked on the configuration when the transition is
///   selected, before the guard method; `if in(Paid) && ready` needs both.
/// - `initial A, B / act;` in a compound state names states inside it
///   (several: one in each region of a parallel descendant, checked) and
///   actions: entering the state by default runs its `entry` actions, then
///   these, then enters `A` and `B` (SCXML `<initial><transition>`).
///   Entering it through an explicit target inside it does neither.
/// - `always if g / act;` (no target) runs `act` whenever `g` holds,
///   leaving and entering nothing; without a guard method it would fire
///   forever (the `eventless_loop` lint). `always => internal C` moves to a
///   descendant without leaving the source.
/// - `on done` hears the completion of its own state; `on done(P)` that of
///   the compound or parallel state `P` (SCXML `done.state.P`), from any
///   state, selected like any internal event.
/// - A raw identifier names what its bare word names: generated code uses
///   it as written, names made from it drop the `r#` (activity `r#static`
///   makes `StaticDone`) and names as text are the bare word.
///
/// # Generated items
///
/// For `pub workflow Order { .. }`: a payload struct per declared event
/// (named like the event), `enum OrderState`, `enum OrderEvent` (the
/// declared events, then `ActivityDone(Output)` and
/// `ActivityFailed(ActivityError)` per activity and `StateAfter48h` per
/// timer), `trait OrderHandlers` with one method per guard, action,
/// activity and compensation, and `struct Order`, the machine, with `new`,
/// `start`, `handle`, `run_activity`, `run_compensation`, `state`,
/// `context`, `graph` and the `workflow::Machine` and `workflow::Workflow`
/// impls.
///
/// # Handler signatures
///
/// Each method of the handlers trait has the signature its uses need, with
/// the context type `Ctx` (`()` without `context`):
///
/// ```text
/// fn guard(&self, context: &Ctx, event: &Payload) -> bool;           // on EVENT if guard (a unit event: &Cancel)
/// fn guard(&self, context: &Ctx, event: &OrderEvent) -> bool;        // on A | B if guard, on _ if guard
/// fn guard(&self, context: &Ctx) -> bool;                            // always if guard, on done if guard
/// fn action(&self, context: &mut Ctx, event: &Payload);              // on EVENT ... / action
/// fn action(&self, context: &mut Ctx, event: &OrderEvent);           // the same action on several events
/// fn action(&self, context: &mut Ctx);                               // entry, exit, after, always, on done, initial
/// fn action(&self, context: &mut Ctx, output: &Output);              // done => ... / action
/// fn action(&self, context: &mut Ctx, error: &ActivityError);        // error => ... / action
/// async fn activity(&self, context: &Ctx, call: &ActivityCall)       // invoke activity -> Output
///     -> Result<Output, ActivityError>;
/// async fn compensation(&self, context: &Ctx, output: &Output,       // compensate compensation, in a state
///     call: &ActivityCall) -> Result<(), ActivityError>;             //   whose activity returns Output
/// async fn compensation(&self, context: &Ctx, call: &ActivityCall)   // compensate compensation, in a state
///     -> Result<(), ActivityError>;                                  //   invoking nothing or `-> ()`
/// ```
///
/// Every one of them, in a workflow that compiles and runs:
///
/// ```
/// use workflow::prelude::*;
///
/// #[derive(Default)]
/// pub struct Cart {
///     cents: u64,
///     log: Vec<String>,
/// }
///
/// workflow! {
///     /// A shop's checkout.
///     pub workflow Shop {
///         context Cart;
///         initial Shopping;
///         events { Add { cents: u64 }, Checkout, Ping }
///         state Shopping {
///             entry opened;
///             on Add if positive / add;
///             on Checkout if not_empty => Paying;
///             on Ping | Checkout / log;
///             after 1h => Abandoned / expire;
///         }
///         state Paying {
///             invoke charge -> String { retry 2; done => Deciding / keep_receipt; error => Abandoned / note_error; }
///             compensate refund;
///         }
///         state Deciding {
///             always if large => Review;
///             always => Done;
///         }
///         state Review { on Ping => Done; }
///         final Done;
///         final Abandoned (failure);
///     }
/// }
///
/// struct Rules;
///
/// impl ShopHandlers for Rules {
///     fn positive(&self, _cart: &Cart, event: &Add) -> bool {
///         event.cents > 0
///     }
///     fn not_empty(&self, cart: &Cart, _event: &Checkout) -> bool {
///         cart.cents > 0
///     }
///     fn large(&self, cart: &Cart) -> bool {
///         cart.cents > 10_000
///     }
///     fn opened(&self, cart: &mut Cart) {
///         cart.log.push("opened".into());
///     }
///     fn add(&self, cart: &mut Cart, event: &Add) {
///         cart.cents += event.cents;
///     }
///     fn log(&self, cart: &mut Cart, event: &ShopEvent) {
///         cart.log.push(event.name().into());
///     }
///     fn expire(&self, cart: &mut Cart) {
///         cart.cents = 0;
///     }
///     fn keep_receipt(&self, cart: &mut Cart, receipt: &String) {
///         cart.log.push(receipt.clone());
///     }
///     fn note_error(&self, cart: &mut Cart, error: &ActivityError) {
///         cart.log.push(error.to_string());
///     }
///     async fn charge(&self, cart: &Cart, call: &ActivityCall) -> Result<String, ActivityError> {
///         Ok(format!("{} cents, attempt {}", cart.cents, call.attempt)) // call the payment service here
///     }
///     // A compensation receives the output of the activity it undoes.
///     async fn refund(&self, _cart: &Cart, receipt: &String, _call: &ActivityCall) -> Result<(), ActivityError> {
///         assert!(!receipt.is_empty()); // refund this payment here
///         Ok(())
///     }
/// }
///
/// let mut shop = Shop::new(Cart::default());
/// shop.start(&Rules);
/// assert!(shop.handle(&ShopEvent::Checkout, &Rules).is_ok()); // an empty cart: only `log`
/// shop.handle(&Add { cents: 500 }.into(), &Rules).unwrap();
/// shop.handle(&ShopEvent::Checkout, &Rules).unwrap();
/// assert!(shop.is_in(ShopState::Paying));
/// // The activity's outcome, as `run_activity` or the engine would deliver it:
/// shop.handle(&ShopEvent::ChargeDone("paid".into()), &Rules).unwrap();
/// assert!(shop.is_finished() && shop.is_in(ShopState::Done)); // `Deciding` decided at once
/// assert_eq!(shop.context().log, ["opened", "Checkout", "paid"]);
/// assert_eq!(Shop::graph().states[1].invoke.as_ref().unwrap().policy.max_attempts, 3);
/// ```
///
/// # Compile-time checks
///
/// Every mistake is a compile error at the offending token, all of a block
/// reported in one build: unknown names (with the nearest known one),
/// duplicates, misplaced items, malformed durations and retry counts, an
/// `invoke` without `done`, a final state with transitions, several
/// targets (or initial states) that cannot be active together, initial
/// states outside their state, a history default outside its parent,
/// `in(..)` of a history state, `done(S)` of a state without children, two
/// guard methods on one transition, one name in two roles, one handler given conflicting inputs,
/// reserved generated names, `#[cfg]` where it would remove only part of
/// what is generated. Graph checks are lints, each switched off with
/// `#[allow(NAME)]`: `unreachable_state`, `dead_end`, `no_path_to_final`,
/// `shadowed_transition`, `unhandled_error`, `never_done`,
/// `eventless_loop` (unguarded `always` transitions that lead back to
/// their state, or a targetless `always` without a guard method: at run time the interpreter cuts the loop short and
/// `handle` returns a `Rejected` with `Reason::EventlessLoop`) and
/// `decision_without_else` (a state whose only transitions are guarded
/// `always` arms, stuck when no guard holds).
///
/// The README has the same grammar with an example per construct, the
/// statechart semantics and every message.
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
