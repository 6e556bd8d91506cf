//! Stage 1: the syntax of a `workflow!` block, parsed with syn into an AST
//! that keeps every token's span. Nothing is resolved here.

use std::time::Duration;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, parenthesized, Attribute, Field, Ident, LitInt, Token, Type, Visibility};

pub mod kw {
    syn::custom_keyword!(workflow);
    syn::custom_keyword!(context);
    syn::custom_keyword!(initial);
    syn::custom_keyword!(events);
    syn::custom_keyword!(state);
    syn::custom_keyword!(parallel);
    syn::custom_keyword!(history);
    syn::custom_keyword!(deep);
    syn::custom_keyword!(on);
    syn::custom_keyword!(always);
    syn::custom_keyword!(internal);
    syn::custom_keyword!(entry);
    syn::custom_keyword!(exit);
    syn::custom_keyword!(invoke);
    syn::custom_keyword!(retry);
    syn::custom_keyword!(backoff);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(resource);
    syn::custom_keyword!(expected);
    syn::custom_keyword!(done);
    syn::custom_keyword!(error);
    syn::custom_keyword!(after);
    syn::custom_keyword!(compensate);
    syn::custom_keyword!(failure);
    syn::custom_keyword!(raise);
    syn::custom_keyword!(send);
    syn::custom_keyword!(cancel);
    syn::custom_keyword!(from);
}

/// `ATTRS VIS workflow NAME { ITEM* }`, or `ATTRS VIS workflow NAME from "CHART"; ITEM*`
pub struct WorkflowDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub items: Vec<Item>,
    /// The chart the items were imported from.
    pub from: Option<crate::import::Source>,
}

/// An item of the workflow's body or of a state's body. Which items belong
/// where (`context` only at the top, `on` only in a state...) is checked by
/// the model, so the messages can say why.
pub enum Item {
    /// `context TYPE;`
    Context { span: Span, ty: Type },
    /// `events { EVENT, ... }`
    Events { span: Span, events: Vec<EventDef> },
    /// `initial STATE, ... [/ ACTIONS];`
    Initial {
        span: Span,
        states: Vec<Ident>,
        actions: Vec<ActionDef>,
    },
    /// `state NAME { ... }`, `parallel NAME { ... }` or `final NAME ...`
    State(StateDef),
    /// `history [deep] NAME [=> TARGETS [/ ACTIONS]];`
    History(HistoryDef),
    /// `on EVENTS [if GUARD] [=> [internal] TARGETS] [/ ACTIONS];`
    On(OnDef),
    /// `always [if GUARD] => [internal] TARGETS [/ ACTIONS];` or `always [if GUARD] / ACTIONS;`
    Always(AlwaysDef),
    /// `entry ACTIONS;`
    Entry { span: Span, actions: Vec<ActionDef> },
    /// `exit ACTIONS;`
    Exit { span: Span, actions: Vec<ActionDef> },
    /// `invoke ACTIVITY -> TYPE { ... }`
    Invoke(Box<InvokeDef>),
    /// `after DURATION => TARGET [/ ACTIONS];`
    After(AfterDef),
    /// `compensate ACTION;`
    Compensate { span: Span, action: Ident },
}

/// `ATTRS NAME` or `ATTRS NAME { FIELD, ... }`
pub struct EventDef {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub fields: Option<Vec<Field>>,
}

/// What kind of state a [`StateDef`] declares.
pub enum StateDefKind {
    /// `state`: atomic, or compound when it has child states.
    State,
    /// `parallel`: every child region active at once.
    Parallel,
    /// `final`, with the span of `(failure)` if marked so.
    Final { failure: Option<Span> },
}

/// `ATTRS state NAME { ITEM* }`, `ATTRS parallel NAME { ITEM* }` or
/// `ATTRS final NAME [(failure)] ( ; | { ITEM* } )`
pub struct StateDef {
    pub attrs: Vec<Attribute>,
    pub kind: StateDefKind,
    pub name: Ident,
    pub body: Vec<Item>,
}

/// `history [deep] NAME [=> TARGETS [/ ACTIONS]];`
pub struct HistoryDef {
    pub deep: bool,
    pub name: Ident,
    pub targets: Vec<Ident>,
    pub actions: Vec<ActionDef>,
}

/// The events an `on` transition listens to.
pub enum EventsDef {
    /// `A | B | C`
    List(Vec<Ident>),
    /// `_`: every event.
    Any,
    /// `done`: the completion of this compound or parallel state;
    /// `done(STATE)`: that state's.
    Done(Span, Option<Ident>),
}

/// `if COND && ...`: at most one guard method and any number of `in(STATE)`
/// and `!in(STATE)`.
#[derive(Default)]
pub struct GuardDef {
    pub guard: Option<Ident>,
    pub in_states: Vec<Ident>,
    pub not_in_states: Vec<Ident>,
}

/// `on EVENTS [if GUARD] [=> [internal] TARGETS] [/ ACTIONS];`
pub struct OnDef {
    pub span: Span,
    pub events: EventsDef,
    pub guard: GuardDef,
    pub internal: bool,
    pub targets: Vec<Ident>,
    pub actions: Vec<ActionDef>,
}

/// `always [if GUARD] => [internal] TARGETS [/ ACTIONS];` or `always [if GUARD] / ACTIONS;`
pub struct AlwaysDef {
    pub span: Span,
    pub guard: GuardDef,
    pub internal: bool,
    /// Empty for a targetless `always`.
    pub targets: Vec<Ident>,
    pub actions: Vec<ActionDef>,
}

/// One action: a handler method or a built-in.
pub enum ActionDef {
    /// `NAME`: a method of the handler trait.
    Call(Ident),
    /// `raise EVENT`: an internal event.
    Raise { span: Span, event: Ident },
    /// `send EVENT [after DURATION] [as ID]`: an instance-level timer.
    Send {
        span: Span,
        event: Ident,
        delay: Option<DurationLit>,
        id: Option<Ident>,
    },
    /// `cancel ID`: cancels pending `send`s with this id.
    Cancel { id: Ident },
}

/// `after DURATION => TARGET [/ ACTIONS];`
pub struct AfterDef {
    pub span: Span,
    pub delay: DurationLit,
    pub target: Ident,
    pub actions: Vec<ActionDef>,
}

/// `invoke ACTIVITY -> TYPE { retry ..; timeout ..; resource ..; expected ..; done => ..; error => ..; }`
pub struct InvokeDef {
    pub span: Span,
    pub activity: Ident,
    pub output: Type,
    pub retry: Option<RetryDef>,
    pub timeout: Option<DurationLit>,
    /// `resource NAME;`: the pool the activity's attempts queue on.
    pub resource: Option<Ident>,
    /// `expected DURATION;`: the expected service time of one attempt.
    pub expected: Option<DurationLit>,
    pub done: Option<ArmDef>,
    pub error: Option<ArmDef>,
}

/// `retry N [backoff MIN..MAX];`
pub struct RetryDef {
    pub retries: u32,
    pub backoff: Option<(DurationLit, DurationLit)>,
}

/// `done => TARGET [/ ACTIONS];` or `error => ...`
pub struct ArmDef {
    pub span: Span,
    pub target: Ident,
    pub actions: Vec<ActionDef>,
}

/// A duration literal such as `500ms`, `30s`, `5m`, `2h` or `7d`.
#[derive(Clone)]
pub struct DurationLit {
    pub span: Span,
    pub value: Duration,
    /// The literal as written (`48h`), for generated names.
    pub text: String,
}

impl Parse for WorkflowDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !input.peek(kw::workflow) {
            return Err(input.error("expected `workflow NAME { ... }`"));
        }
        input.parse::<kw::workflow>()?;
        let name: Ident = input.parse()?;
        if input.peek(kw::from) {
            let (items, source) = crate::import::parse_from(input)?;
            return Ok(WorkflowDef {
                attrs,
                vis,
                name,
                items,
                from: Some(source),
            });
        }
        let items = parse_body(input)?;
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the workflow's closing brace: one `workflow!` block declares one workflow",
            ));
        }
        Ok(WorkflowDef {
            attrs,
            vis,
            name,
            items,
            from: None,
        })
    }
}

/// `{ ITEM* }`
fn parse_body(input: ParseStream) -> syn::Result<Vec<Item>> {
    let content;
    braced!(content in input);
    let mut items = Vec::new();
    while !content.is_empty() {
        items.push(content.parse()?);
    }
    Ok(items)
}

impl Parse for Item {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::state) || lookahead.peek(kw::parallel) || lookahead.peek(Token![final]) {
            return parse_state(input, attrs).map(Item::State);
        }
        if let Some(attr) = attrs.first() {
            return Err(syn::Error::new_spanned(
                attr,
                "attributes are allowed only on the workflow, its states and its events",
            ));
        }
        if lookahead.peek(kw::context) {
            let span = input.parse::<kw::context>()?.span;
            let ty = input.parse()?;
            input.parse::<Token![;]>()?;
            Ok(Item::Context { span, ty })
        } else if lookahead.peek(kw::events) {
            let span = input.parse::<kw::events>()?.span;
            let content;
            braced!(content in input);
            let events = Punctuated::<EventDef, Token![,]>::parse_terminated(&content)?;
            Ok(Item::Events {
                span,
                events: events.into_iter().collect(),
            })
        } else if lookahead.peek(kw::initial) {
            let span = input.parse::<kw::initial>()?.span;
            let states = parse_targets(input)?;
            let actions = parse_actions(input)?;
            Ok(Item::Initial { span, states, actions })
        } else if lookahead.peek(kw::history) {
            input.parse::<kw::history>()?;
            let deep = input.peek(kw::deep) && input.peek2(Ident);
            if deep {
                input.parse::<kw::deep>()?;
            }
            let name = input.parse()?;
            let (targets, actions) = if input.peek(Token![=>]) {
                input.parse::<Token![=>]>()?;
                (parse_targets(input)?, parse_actions(input)?)
            } else {
                input.parse::<Token![;]>()?;
                (Vec::new(), Vec::new())
            };
            Ok(Item::History(HistoryDef {
                deep,
                name,
                targets,
                actions,
            }))
        } else if lookahead.peek(kw::on) {
            let span = input.parse::<kw::on>()?.span;
            let events = parse_events(input)?;
            let guard = parse_guard(input)?;
            let (internal, targets) = parse_optional_targets(input)?;
            let actions = parse_actions(input)?;
            Ok(Item::On(OnDef {
                span,
                events,
                guard,
                internal,
                targets,
                actions,
            }))
        } else if lookahead.peek(kw::always) {
            let span = input.parse::<kw::always>()?.span;
            let guard = parse_guard(input)?;
            if !input.peek(Token![=>]) && !input.peek(Token![/]) {
                return Err(input
                    .error("expected `=> TARGET` or `/ ACTIONS`: an `always` transition without either does nothing"));
            }
            let (internal, targets) = parse_optional_targets(input)?;
            let actions = parse_actions(input)?;
            Ok(Item::Always(AlwaysDef {
                span,
                guard,
                internal,
                targets,
                actions,
            }))
        } else if lookahead.peek(kw::entry) {
            let span = input.parse::<kw::entry>()?.span;
            Ok(Item::Entry {
                span,
                actions: parse_action_list(input)?,
            })
        } else if lookahead.peek(kw::exit) {
            let span = input.parse::<kw::exit>()?.span;
            Ok(Item::Exit {
                span,
                actions: parse_action_list(input)?,
            })
        } else if lookahead.peek(kw::invoke) {
            parse_invoke(input).map(|invoke| Item::Invoke(Box::new(invoke)))
        } else if lookahead.peek(kw::after) {
            let span = input.parse::<kw::after>()?.span;
            let delay = input.parse()?;
            let target = parse_target(input)?;
            let actions = parse_actions(input)?;
            Ok(Item::After(AfterDef {
                span,
                delay,
                target,
                actions,
            }))
        } else if lookahead.peek(kw::compensate) {
            let span = input.parse::<kw::compensate>()?.span;
            let action = input.parse()?;
            input.parse::<Token![;]>()?;
            Ok(Item::Compensate { span, action })
        } else {
            Err(lookahead.error())
        }
    }
}

impl Parse for EventDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let name: Ident = input.parse()?;
        let fields = if input.peek(syn::token::Brace) {
            let content;
            braced!(content in input);
            let fields = content.parse_terminated(Field::parse_named, Token![,])?;
            Some(fields.into_iter().collect())
        } else if input.peek(syn::token::Paren) {
            return Err(input.error("event payloads use named fields: `Event { name: Type }`"));
        } else {
            None
        };
        Ok(EventDef { attrs, name, fields })
    }
}

fn parse_state(input: ParseStream, attrs: Vec<Attribute>) -> syn::Result<StateDef> {
    if input.peek(Token![final]) {
        input.parse::<Token![final]>()?;
        let name: Ident = input.parse()?;
        let mut failure = None;
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            failure = Some(content.parse::<kw::failure>()?.span);
            if !content.is_empty() {
                return Err(content.error("expected `)`: the only marker of a final state is `(failure)`"));
            }
        }
        let braced = input.peek(syn::token::Brace);
        let body = if braced { parse_body(input)? } else { Vec::new() };
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
        } else if !braced {
            return Err(input.error("expected `;` after a final state"));
        }
        return Ok(StateDef {
            attrs,
            kind: StateDefKind::Final { failure },
            name,
            body,
        });
    }
    let kind = if input.peek(kw::parallel) {
        input.parse::<kw::parallel>()?;
        StateDefKind::Parallel
    } else {
        input.parse::<kw::state>()?;
        StateDefKind::State
    };
    let name: Ident = input.parse()?;
    let body = parse_body(input)?;
    Ok(StateDef {
        attrs,
        kind,
        name,
        body,
    })
}

/// `A | B`, `_` or `done`.
fn parse_events(input: ParseStream) -> syn::Result<EventsDef> {
    if input.peek(Token![_]) {
        input.parse::<Token![_]>()?;
        return Ok(EventsDef::Any);
    }
    if input.peek(kw::done) {
        let span = input.parse::<kw::done>()?.span;
        let mut state = None;
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            state = Some(content.parse()?);
            if !content.is_empty() {
                return Err(content.error("expected `)`: `done(STATE)` names one compound or parallel state"));
            }
        }
        return Ok(EventsDef::Done(span, state));
    }
    let mut events = vec![input.parse::<Ident>()?];
    while input.peek(Token![|]) {
        input.parse::<Token![|]>()?;
        events.push(input.parse()?);
    }
    Ok(EventsDef::List(events))
}

/// `[if COND && ...]`, each `COND` a guard method or `in(STATE)`.
fn parse_guard(input: ParseStream) -> syn::Result<GuardDef> {
    let mut def = GuardDef::default();
    if !input.peek(Token![if]) {
        return Ok(def);
    }
    input.parse::<Token![if]>()?;
    loop {
        let not = input.peek(Token![!]) && input.peek2(Token![in]);
        if not {
            input.parse::<Token![!]>()?;
        }
        if input.peek(Token![in]) {
            input.parse::<Token![in]>()?;
            let content;
            parenthesized!(content in input);
            let state = content.parse()?;
            if !content.is_empty() {
                return Err(content.error("expected `)`: `in(STATE)` names one state"));
            }
            if not {
                def.not_in_states.push(state);
            } else {
                def.in_states.push(state);
            }
        } else {
            let guard: Ident = input.parse()?;
            if let Some(first) = &def.guard {
                return Err(syn::Error::new(
                    guard.span(),
                    format!(
                        "a transition has one guard method: combine `{first}` and `{guard}` in one method (only `in(STATE)` conditions add to it)"
                    ),
                ));
            }
            def.guard = Some(guard);
        }
        if !input.peek(Token![&&]) {
            return Ok(def);
        }
        input.parse::<Token![&&]>()?;
    }
}

/// `[=> [internal] TARGETS]`
fn parse_optional_targets(input: ParseStream) -> syn::Result<(bool, Vec<Ident>)> {
    if !input.peek(Token![=>]) {
        return Ok((false, Vec::new()));
    }
    input.parse::<Token![=>]>()?;
    let internal = input.peek(kw::internal) && input.peek2(Ident);
    if internal {
        input.parse::<kw::internal>()?;
    }
    Ok((internal, parse_targets(input)?))
}

/// `=> TARGET`
fn parse_target(input: ParseStream) -> syn::Result<Ident> {
    if !input.peek(Token![=>]) {
        return Err(input.error("expected `=> TARGET`"));
    }
    input.parse::<Token![=>]>()?;
    input.parse()
}

/// `STATE, ...` (after `=>`)
fn parse_targets(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let mut targets = vec![input.parse::<Ident>()?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        targets.push(input.parse()?);
    }
    Ok(targets)
}

/// `[/ ACTION, ...] ;`
fn parse_actions(input: ParseStream) -> syn::Result<Vec<ActionDef>> {
    if input.peek(Token![/]) {
        input.parse::<Token![/]>()?;
        parse_action_list(input)
    } else {
        if !input.peek(Token![;]) {
            return Err(input.error("expected `;`, or `/ action` to run actions"));
        }
        input.parse::<Token![;]>()?;
        Ok(Vec::new())
    }
}

/// `ACTION, ... ;`
fn parse_action_list(input: ParseStream) -> syn::Result<Vec<ActionDef>> {
    let mut actions = vec![input.parse::<ActionDef>()?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        actions.push(input.parse()?);
    }
    input.parse::<Token![;]>()?;
    Ok(actions)
}

impl Parse for ActionDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // A built-in keyword followed by a name; alone, the word is a handler's name.
        if input.peek(kw::raise) && input.peek2(Ident) {
            let span = input.parse::<kw::raise>()?.span;
            return Ok(ActionDef::Raise {
                span,
                event: input.parse()?,
            });
        }
        if input.peek(kw::cancel) && input.peek2(Ident) {
            input.parse::<kw::cancel>()?;
            return Ok(ActionDef::Cancel { id: input.parse()? });
        }
        if input.peek(kw::send) && input.peek2(Ident) {
            let span = input.parse::<kw::send>()?.span;
            let event = input.parse()?;
            let delay = if input.peek(kw::after) {
                input.parse::<kw::after>()?;
                Some(input.parse()?)
            } else {
                None
            };
            let id = if input.peek(Token![as]) {
                input.parse::<Token![as]>()?;
                Some(input.parse()?)
            } else {
                None
            };
            return Ok(ActionDef::Send { span, event, delay, id });
        }
        Ok(ActionDef::Call(input.parse()?))
    }
}

fn parse_invoke(input: ParseStream) -> syn::Result<InvokeDef> {
    let span = input.parse::<kw::invoke>()?.span;
    let activity: Ident = input.parse()?;
    if !input.peek(Token![->]) {
        return Err(input.error("expected `-> OUTPUT_TYPE`: an activity declares its output type (`-> ()` for none)"));
    }
    input.parse::<Token![->]>()?;
    let output: Type = input.parse()?;
    let mut invoke = InvokeDef {
        span,
        activity,
        output,
        retry: None,
        timeout: None,
        resource: None,
        expected: None,
        done: None,
        error: None,
    };
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(invoke);
    }
    let content;
    braced!(content in input);
    while !content.is_empty() {
        let lookahead = content.lookahead1();
        if lookahead.peek(kw::retry) {
            let span = content.parse::<kw::retry>()?.span;
            let retries = parse_retries(&content)?;
            let backoff = if content.peek(kw::backoff) {
                content.parse::<kw::backoff>()?;
                let min: DurationLit = content.parse()?;
                content.parse::<Token![..]>()?;
                let max: DurationLit = content.parse()?;
                Some((min, max))
            } else {
                None
            };
            content.parse::<Token![;]>()?;
            set_once(&mut invoke.retry, RetryDef { retries, backoff }, span, "retry")?;
        } else if lookahead.peek(kw::timeout) {
            let span = content.parse::<kw::timeout>()?.span;
            let limit: DurationLit = content.parse()?;
            content.parse::<Token![;]>()?;
            set_once(&mut invoke.timeout, limit, span, "timeout")?;
        } else if lookahead.peek(kw::resource) {
            let span = content.parse::<kw::resource>()?.span;
            let name = parse_resource_name(&content)?;
            set_once(&mut invoke.resource, name, span, "resource")?;
        } else if lookahead.peek(kw::expected) {
            let span = content.parse::<kw::expected>()?.span;
            let duration: DurationLit = content.parse()?;
            content.parse::<Token![;]>()?;
            set_once(&mut invoke.expected, duration, span, "expected")?;
        } else if lookahead.peek(kw::done) || lookahead.peek(kw::error) {
            let is_done = content.peek(kw::done);
            let span = content.parse::<Ident>()?.span();
            let target = parse_target(&content)?;
            let actions = parse_actions(&content)?;
            let arm = ArmDef { span, target, actions };
            if is_done {
                set_once(&mut invoke.done, arm, span, "done")?;
            } else {
                set_once(&mut invoke.error, arm, span, "error")?;
            }
        } else {
            return Err(lookahead.error());
        }
    }
    Ok(invoke)
}

/// The `N` of `retry N`: a whole number of retries after the first attempt,
/// below `u32::MAX` so that the attempts (`N + 1`) fit a `u32`.
fn parse_retries(input: ParseStream) -> syn::Result<u32> {
    let expected = format!(
        "expected a number of retries from 0 to {}, such as `retry 3`",
        u32::MAX - 1
    );
    if let Some(negative) = negative(input) {
        return Err(syn::Error::new_spanned(negative, expected));
    }
    let count: LitInt = input.parse().map_err(|e| syn::Error::new(e.span(), &expected))?;
    if !count.suffix().is_empty() {
        return Err(syn::Error::new(
            count.span(),
            "expected a number of retries without a unit, such as `retry 3`",
        ));
    }
    count
        .base10_digits()
        .parse::<u32>()
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or_else(|| syn::Error::new(count.span(), expected))
}

/// `NAME;` after `resource`: one identifier, then the `;`.
fn parse_resource_name(input: ParseStream) -> syn::Result<Ident> {
    const EXAMPLE: &str = "such as `resource payments;`";
    if input.is_empty() || input.peek(Token![;]) {
        return Err(input.error(format!("expected the name of a resource, {EXAMPLE}")));
    }
    // `Ident::parse` rejects keywords, which are not names; a literal, a path
    // or punctuation is no name either.
    let name = input
        .parse::<Ident>()
        .map_err(|e| syn::Error::new(e.span(), format!("a resource is named by an identifier, {EXAMPLE}")))?;
    if !input.peek(Token![;]) {
        return Err(input.error(format!(
            "expected `;` after the resource name: a resource is named by one identifier, {EXAMPLE}"
        )));
    }
    input.parse::<Token![;]>()?;
    Ok(name)
}

fn set_once<T>(slot: &mut Option<T>, value: T, span: Span, what: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("duplicate `{what}`: an invoke has at most one"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// `-` and the number after it, if that is what comes next: the tokens to
/// show a negative number's error at, whole.
fn negative(input: ParseStream) -> Option<proc_macro2::TokenStream> {
    let fork = input.fork();
    let minus = fork.parse::<Token![-]>().ok()?;
    let number = fork.parse::<syn::Lit>().ok()?;
    Some(quote::quote!(#minus #number))
}

impl Parse for DurationLit {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if let Some(negative) = negative(input) {
            return Err(syn::Error::new_spanned(
                negative,
                "a duration cannot be negative: write a whole number with a unit, such as `30s`",
            ));
        }
        if input.peek(syn::LitFloat) {
            let lit: syn::LitFloat = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                "durations are whole numbers with a unit: write `1500ms`, not `1.5s`",
            ));
        }
        let lit: LitInt = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a duration such as `500ms`, `30s`, `5m`, `2h` or `7d`",
            )
        })?;
        let span = lit.span();
        let unit_ms: u64 = match lit.suffix() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(syn::Error::new(
                    span,
                    "this duration has no unit: add one of `ms`, `s`, `m`, `h`, `d`",
                ))
            }
            other => {
                return Err(syn::Error::new(
                    span,
                    format!("unknown duration unit `{other}`: use `ms`, `s`, `m`, `h` or `d`"),
                ))
            }
        };
        let digits = lit.base10_digits();
        // Milliseconds are kept in a `u64`.
        let max = u64::MAX / unit_ms;
        let amount = digits.parse::<u64>().ok().filter(|&n| n <= max).ok_or_else(|| {
            syn::Error::new(
                span,
                format!("this duration is too long: at most {max}{}", lit.suffix()),
            )
        })?;
        let ms = amount * unit_ms;
        Ok(DurationLit {
            span,
            value: Duration::from_millis(ms),
            text: lit.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<WorkflowDef> {
        syn::parse2(tokens)
    }

    #[test]
    fn parses_every_construct() {
        let def = parse(quote! {
            /// Docs.
            pub workflow Order {
                context Ctx;
                initial Start;
                events { Go { id: u64 }, Stop }
                state Start {
                    entry a, b;
                    exit c;
                    on Go if ok => Busy / d, e;
                    on Stop / f;
                    after 2h => Done;
                    compensate undo;
                }
                state Busy {
                    invoke work -> u32 { retry 3 backoff 100ms..5s; timeout 10s; resource pool; expected 200ms; done => Done / g; error => Failed; }
                }
                final Done;
                final Failed (failure);
            }
        })
        .unwrap();
        assert_eq!(def.name, "Order");
        assert_eq!(def.items.len(), 7);
        let Item::State(start) = &def.items[3] else {
            panic!("expected a state")
        };
        assert_eq!(start.body.len(), 6);
        let Item::On(on) = &start.body[2] else {
            panic!("expected `on`")
        };
        assert_eq!(on.guard.guard.as_ref().unwrap(), "ok");
        assert_eq!(on.targets, ["Busy"]);
        assert_eq!(on.actions.len(), 2);
        let Item::On(targetless) = &start.body[3] else {
            panic!("expected `on`")
        };
        assert!(targetless.targets.is_empty());
        let Item::After(after) = &start.body[4] else {
            panic!("expected `after`")
        };
        assert_eq!(after.delay.value, Duration::from_secs(7200));
        let Item::State(busy) = &def.items[4] else {
            panic!("expected a state")
        };
        let Item::Invoke(invoke) = &busy.body[0] else {
            panic!("expected `invoke`")
        };
        let retry = invoke.retry.as_ref().unwrap();
        assert_eq!(retry.retries, 3);
        let (min, max) = retry.backoff.as_ref().unwrap();
        assert_eq!(
            (min.value, max.value),
            (Duration::from_millis(100), Duration::from_secs(5))
        );
        assert_eq!(invoke.timeout.as_ref().unwrap().value, Duration::from_secs(10));
        assert_eq!(invoke.resource.as_ref().unwrap(), "pool");
        assert_eq!(invoke.expected.as_ref().unwrap().value, Duration::from_millis(200));
        assert!(invoke.done.is_some() && invoke.error.is_some());
        let Item::State(failed) = &def.items[6] else {
            panic!("expected a state")
        };
        assert!(matches!(failed.kind, StateDefKind::Final { failure: Some(_) }));
    }

    #[test]
    fn parses_statechart_constructs() {
        let def = parse(quote! {
            workflow W {
                initial P;
                parallel P {
                    state A { initial A1; history deep H => A1 / log; state A1 { always if g => A2; on X | Y => internal A2, B / raise Z, send Z after 1s as t, cancel t, act; } state A2 {} }
                    state B { on _ => A; on done => A; }
                }
            }
        })
        .unwrap();
        let Item::State(p) = &def.items[1] else {
            panic!("expected a state")
        };
        assert!(matches!(p.kind, StateDefKind::Parallel));
        let Item::State(a) = &p.body[0] else {
            panic!("expected a state")
        };
        assert!(matches!(&a.body[0], Item::Initial { states, actions, .. } if states == &["A1"] && actions.is_empty()));
        let Item::History(h) = &a.body[1] else {
            panic!("expected history")
        };
        assert!(h.deep && h.targets.len() == 1 && h.actions.len() == 1);
        let Item::State(a1) = &a.body[2] else {
            panic!("expected a state")
        };
        let Item::Always(always) = &a1.body[0] else {
            panic!("expected always")
        };
        assert_eq!(always.guard.guard.as_ref().unwrap(), "g");
        let Item::On(on) = &a1.body[1] else {
            panic!("expected on")
        };
        assert!(matches!(&on.events, EventsDef::List(list) if list.len() == 2));
        assert!(on.internal);
        assert_eq!(on.targets.len(), 2);
        assert!(matches!(
            &on.actions[..],
            [
                ActionDef::Raise { .. },
                ActionDef::Send {
                    delay: Some(_),
                    id: Some(_),
                    ..
                },
                ActionDef::Cancel { .. },
                ActionDef::Call(_)
            ]
        ));
        let Item::State(b) = &p.body[1] else {
            panic!("expected a state")
        };
        assert!(matches!(
            &b.body[0],
            Item::On(OnDef {
                events: EventsDef::Any,
                ..
            })
        ));
        assert!(matches!(
            &b.body[1],
            Item::On(OnDef {
                events: EventsDef::Done(_, None),
                ..
            })
        ));
    }

    #[test]
    fn an_always_without_target_or_actions_is_an_error() {
        let error = parse(quote! { workflow W { state A { always if g; } } }).err().unwrap();
        assert_eq!(
            error.to_string(),
            "expected `=> TARGET` or `/ ACTIONS`: an `always` transition without either does nothing"
        );
    }

    #[test]
    fn chart_constructs_parse() {
        let def = parse(quote! {
            workflow W {
                initial S;
                state S {
                    initial A, B / open, raise Go;
                    always if in(A) && ready && in(B) / act;
                    always => internal A;
                    on done(P) => S;
                    on done => S;
                }
            }
        })
        .unwrap();
        let Item::State(s) = &def.items[1] else {
            panic!("expected a state")
        };
        assert!(
            matches!(&s.body[0], Item::Initial { states, actions, .. } if states == &["A", "B"] && actions.len() == 2)
        );
        let Item::Always(targetless) = &s.body[1] else {
            panic!("expected always")
        };
        assert_eq!(targetless.guard.guard.as_ref().unwrap(), "ready");
        assert_eq!(targetless.guard.in_states, ["A", "B"]);
        assert!(targetless.targets.is_empty() && targetless.actions.len() == 1 && !targetless.internal);
        let Item::Always(internal) = &s.body[2] else {
            panic!("expected always")
        };
        assert!(internal.internal && internal.targets == ["A"]);
        assert!(matches!(&s.body[3], Item::On(OnDef { events: EventsDef::Done(_, Some(p)), .. }) if p == "P"));
        assert!(matches!(
            &s.body[4],
            Item::On(OnDef {
                events: EventsDef::Done(_, None),
                ..
            })
        ));
    }

    #[test]
    fn a_transition_has_one_guard_method() {
        let error = parse(quote! { workflow W { state A { on E if a && in(B) && b => A; } } })
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "a transition has one guard method: combine `a` and `b` in one method (only `in(STATE)` conditions add to it)"
        );
        let error = parse(quote! { workflow W { state A { on E if in(B, C) => A; } } })
            .err()
            .unwrap();
        assert_eq!(error.to_string(), "expected `)`: `in(STATE)` names one state");
        let Ok(def) = parse(quote! { workflow W { state A { on E if !in(B) && in(C) && !in(D) => A; } } }) else {
            panic!("`!in(..)` parses")
        };
        let Item::State(a) = &def.items[0] else {
            panic!("expected a state")
        };
        let Item::On(on) = &a.body[0] else {
            panic!("expected on")
        };
        assert_eq!(on.guard.in_states, ["C"]);
        assert_eq!(on.guard.not_in_states, ["B", "D"]);
    }

    #[test]
    fn durations_take_every_unit() {
        for (text, ms) in [
            ("500ms", 500u64),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
        ] {
            let tokens: proc_macro2::TokenStream = text.parse().unwrap();
            let lit: DurationLit = syn::parse2(tokens).unwrap();
            assert_eq!(lit.value, Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn malformed_durations_are_errors() {
        for (text, message) in [
            ("10", "this duration has no unit"),
            ("10x", "unknown duration unit `x`"),
            ("1.5s", "whole numbers"),
            ("99999999999999999d", "this duration is too long: at most 213503982334d"),
            (
                "18446744073709551616ms",
                "this duration is too long: at most 18446744073709551615ms",
            ),
            (
                "-5s",
                "a duration cannot be negative: write a whole number with a unit, such as `30s`",
            ),
        ] {
            let tokens: proc_macro2::TokenStream = text.parse().unwrap();
            let error = syn::parse2::<DurationLit>(tokens).err().unwrap().to_string();
            assert!(error.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn the_longest_duration_of_each_unit_parses() {
        for text in ["18446744073709551615ms", "213503982334d"] {
            let tokens: proc_macro2::TokenStream = text.parse().unwrap();
            assert!(syn::parse2::<DurationLit>(tokens).is_ok(), "{text}");
        }
    }

    #[test]
    fn retry_counts_say_what_is_expected() {
        let expected = "expected a number of retries from 0 to 4294967294, such as `retry 3`";
        for (clauses, message) in [
            (quote! { retry -1; }, expected),
            (quote! { retry 4294967295; }, expected),
            (quote! { retry 99999999999999999999999; }, expected),
            (quote! { retry many; }, expected),
            (
                quote! { retry 3x; },
                "expected a number of retries without a unit, such as `retry 3`",
            ),
        ] {
            let error = invoke_with(clauses.clone()).err().unwrap();
            assert_eq!(error.to_string(), message, "{clauses}");
        }
        for (clauses, retries) in [(quote! { retry 0; }, 0), (quote! { retry 4294967294; }, u32::MAX - 1)] {
            assert_eq!(invoke_with(clauses).unwrap().retry.unwrap().retries, retries);
        }
    }

    #[test]
    fn duplicate_invoke_clauses_are_errors() {
        let error = parse(quote! { workflow W { state A { invoke x -> () { timeout 1s; timeout 2s; } } } })
            .err()
            .unwrap();
        assert_eq!(error.to_string(), "duplicate `timeout`: an invoke has at most one");
    }

    /// The invoke of `workflow W { state A { invoke x -> () { CLAUSES } } }`, or the parse error.
    fn invoke_with(clauses: proc_macro2::TokenStream) -> syn::Result<InvokeDef> {
        let def = parse(quote! { workflow W { state A { invoke x -> () { #clauses } } } })?;
        let Some(Item::State(state)) = def.items.into_iter().next() else {
            panic!("expected a state")
        };
        let Some(Item::Invoke(invoke)) = state.body.into_iter().next() else {
            panic!("expected `invoke`")
        };
        Ok(*invoke)
    }

    #[test]
    fn resource_and_expected_stand_among_the_other_clauses_in_any_order() {
        for clauses in [
            quote! { resource payments; expected 2s; retry 1; timeout 5s; done => B; },
            quote! { done => B; expected 2s; timeout 5s; resource payments; retry 1; },
            quote! { retry 1; resource payments; done => B; timeout 5s; expected 2s; },
        ] {
            let invoke = invoke_with(clauses.clone()).unwrap();
            assert_eq!(invoke.resource.as_ref().unwrap(), "payments", "{clauses}");
            assert_eq!(
                invoke.expected.as_ref().unwrap().value,
                Duration::from_secs(2),
                "{clauses}"
            );
            assert!(invoke.retry.is_some() && invoke.timeout.is_some() && invoke.done.is_some());
        }
        let bare = invoke_with(quote! { done => B; }).unwrap();
        assert!(bare.resource.is_none() && bare.expected.is_none());
        // Any identifier names a resource, raw ones included.
        for (clause, name) in [
            (quote! { resource Payments; }, "Payments"),
            (quote! { resource _db2; }, "_db2"),
            (quote! { resource r#type; }, "r#type"),
        ] {
            assert_eq!(invoke_with(clause).unwrap().resource.unwrap().to_string(), name);
        }
    }

    #[test]
    fn duplicate_resource_and_expected_are_errors() {
        for (clauses, message) in [
            (
                quote! { resource a; timeout 1s; resource b; },
                "duplicate `resource`: an invoke has at most one",
            ),
            (
                quote! { expected 1s; expected 2s; },
                "duplicate `expected`: an invoke has at most one",
            ),
        ] {
            let error = invoke_with(clauses).err().unwrap();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn a_resource_is_named_by_one_identifier() {
        for (clauses, message) in [
            (quote! { resource; }, "expected the name of a resource, such as `resource payments;`"),
            (
                quote! { resource },
                "unexpected end of input, expected the name of a resource, such as `resource payments;`",
            ),
            (
                quote! { resource 4; },
                "a resource is named by an identifier, such as `resource payments;`",
            ),
            (
                quote! { resource "payments"; },
                "a resource is named by an identifier, such as `resource payments;`",
            ),
            (
                quote! { resource self; },
                "a resource is named by an identifier, such as `resource payments;`",
            ),
            (
                quote! { resource pools::payments; },
                "expected `;` after the resource name: a resource is named by one identifier, such as `resource payments;`",
            ),
            (
                quote! { resource payments timeout 1s; },
                "expected `;` after the resource name: a resource is named by one identifier, such as `resource payments;`",
            ),
        ] {
            let error = invoke_with(clauses.clone()).err().unwrap();
            assert_eq!(error.to_string(), message, "{clauses}");
        }
    }

    #[test]
    fn a_malformed_expected_duration_is_an_error() {
        for (clauses, message) in [
            (quote! { expected 200; }, "this duration has no unit"),
            (quote! { expected 2x; }, "unknown duration unit `x`"),
            (quote! { expected 0.5s; }, "whole numbers"),
            (quote! { expected; }, "expected a duration such as `500ms`"),
            (quote! { expected fast; }, "expected a duration such as `500ms`"),
            (quote! { expected 2s }, "expected `;`"),
        ] {
            let error = invoke_with(clauses.clone()).err().unwrap().to_string();
            assert!(error.contains(message), "{clauses}: {error}");
        }
    }

    #[test]
    fn unknown_invoke_clauses_name_every_clause() {
        let error = invoke_with(quote! { pool payments; }).err().unwrap();
        assert_eq!(
            error.to_string(),
            "expected one of: `retry`, `timeout`, `resource`, `expected`, `done`, `error`"
        );
    }

    #[test]
    fn unknown_state_items_name_what_is_expected() {
        let error = parse(quote! { workflow W { state A { onn X => B; } } }).err().unwrap();
        let text = error.to_string();
        assert!(text.starts_with("expected one of"), "{text}");
        assert!(text.contains("`on`") && text.contains("`invoke`"), "{text}");
    }
}
