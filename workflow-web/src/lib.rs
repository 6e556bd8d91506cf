//! A web view of workflow stores and live engines, as an [axum] router an application mounts
//! (or the `workflow serve` command runs over a store): pages for the workflows, a diagram
//! with live counts per state, the instance list with filters and each instance's timeline;
//! the same as JSON under `/api`; the engines' figures in the Prometheus text format at
//! `/metrics`; and, only when the application enables them with a token, actions on its live
//! engines (cancel, send an event, retry a failed instance).
//!
//! Everything the pages need is in the router itself (no CDN, no network at run time).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the workflows in the store |
//! | `GET /workflows/{workflow}` | its diagram (an SVG drawing), with the count of instances in each state, refreshed every second |
//! | `GET /instances?workflow=&state=&status=&prefix=&after=&before=&cursor=` | the instances, newest first, filtered, paged |
//! | `GET /instances/{workflow}/{id}` | an instance's status, context and timeline |
//! | `GET /api/workflows`, `/api/workflows/{workflow}/diagram?format=mermaid\|dot\|svg`, `/api/instances?…`, `/api/instances/{workflow}/{id}` | the same as JSON ([`workflow_runtime::inspect`]'s types) |
//! | `GET /metrics` | the engines' figures ([`workflow_runtime::prometheus`]) |
//! | `POST /api/instances/{workflow}/{id}/cancel`, `…/retry`, `…/send` (body: the event as JSON) | actions, when enabled |
//!
//! Actions are refused unless the application called [`WebConfig::actions`]; then each must
//! be a `POST` (a `GET` gets 405), come from the view's own origin (a browser's `Origin` and
//! `Sec-Fetch-Site` say so) and carry the token in the `x-workflow-token` header (compared in
//! constant time). Each one goes through the engine's own API, so it is in the instance's
//! journal as the engine's step: `cancelled`, a `transition`, `retried`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use workflow_runtime::inspect::Inspector;
//! use workflow_web::WebConfig;
//! # async fn mount(engine: Arc<dyn workflow_runtime::Control>) -> Result<(), Box<dyn std::error::Error>> {
//! // Beside the application's engine, on the store it writes:
//! let inspector = Inspector::open("orders.db").await?;
//! let config = WebConfig::new(inspector)
//!     .engine(engine)
//!     .actions(&std::env::var("WORKFLOW_WEB_TOKEN")?)?;
//! let app = axum::Router::new().nest("/workflows", workflow_web::router(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use workflow_runtime::inspect::Inspector;
use workflow_runtime::Control;

mod api;
mod assets;
mod guard;
mod html;
mod pages;

pub use guard::{MIN_TOKEN_LEN, TOKEN_HEADER};

/// What the router serves: the store it reads, the live engines it reports and may steer.
pub struct WebConfig {
    inspector: Arc<Inspector>,
    engines: HashMap<String, Arc<dyn Control>>,
    token: Option<guard::Token>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut engines: Vec<&String> = self.engines.keys().collect();
        engines.sort();
        f.debug_struct("WebConfig")
            .field("inspector", &self.inspector)
            .field("engines", &engines)
            .field("actions", &self.token.is_some())
            .finish()
    }
}

/// Why [`WebConfig::actions`] refused a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebError {
    /// The token is shorter than [`MIN_TOKEN_LEN`] bytes.
    WeakToken {
        /// Its length.
        len: usize,
    },
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::WeakToken { len } => write!(
                f,
                "the actions' token has {len} bytes; it needs at least {MIN_TOKEN_LEN} (a random one: \
                 `openssl rand -hex 16`)"
            ),
        }
    }
}

impl std::error::Error for WebError {}

impl WebConfig {
    /// A read-only view of the store `inspector` reads.
    pub fn new(inspector: Inspector) -> Self {
        WebConfig {
            inspector: Arc::new(inspector),
            engines: HashMap::new(),
            token: None,
        }
    }

    /// Adds a live engine: its figures at `/metrics`, and with [`actions`](Self::actions) its
    /// instances' actions. One engine per workflow (a second one of the same workflow takes
    /// the first one's place).
    pub fn engine(mut self, engine: Arc<dyn Control>) -> Self {
        self.engines.insert(engine.workflow().to_string(), engine);
        self
    }

    /// Enables actions on the engines, for requests that carry `token`: at least
    /// [`MIN_TOKEN_LEN`] bytes, else [`WebError::WeakToken`].
    pub fn actions(mut self, token: &str) -> Result<Self, WebError> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(WebError::WeakToken { len: token.len() });
        }
        self.token = Some(guard::Token::new(token));
        Ok(self)
    }
}

/// What every handler shares.
pub(crate) struct Web {
    inspector: Arc<Inspector>,
    engines: HashMap<String, Arc<dyn Control>>,
    token: Option<guard::Token>,
}

/// Serves [`router`] of `config` on `listener` until the process ends: what `workflow serve`
/// runs.
pub async fn serve(listener: tokio::net::TcpListener, config: WebConfig) -> std::io::Result<()> {
    axum::serve(listener, router(config)).await
}

/// The router: mount it anywhere (`Router::nest`), its pages link relative to where it is.
pub fn router(config: WebConfig) -> Router {
    let actions = config.token.is_some();
    let web = Arc::new(Web {
        inspector: config.inspector,
        engines: config.engines,
        token: config.token,
    });
    let mut router = Router::new()
        .route("/", get(pages::workflows))
        .route("/workflows/{workflow}", get(pages::diagram))
        .route("/instances", get(pages::instances))
        .route("/instances/{workflow}/{id}", get(pages::instance))
        .route("/api/workflows", get(api::workflows))
        .route("/api/workflows/{workflow}/diagram", get(api::diagram))
        .route("/api/instances", get(api::instances))
        .route("/api/instances/{workflow}/{id}", get(api::instance))
        .route("/metrics", get(api::metrics))
        .route("/assets/{file}", get(assets::serve));
    if actions {
        // POST only: axum answers any other method on these paths with 405.
        router = router.route("/api/instances/{workflow}/{id}/{action}", post(api::act));
    }
    router.with_state(web)
}
