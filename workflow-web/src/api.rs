//! The JSON endpoints, `/metrics`, and the actions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use workflow_runtime::inspect::{DiagramFormat, Filter, InspectError};
use workflow_runtime::store::InstanceStatus;
use workflow_runtime::{ControlError, EngineError};

use crate::{guard, html, Web};

/// An error as JSON: `{"error": "…"}` with its status.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<InspectError> for ApiError {
    fn from(error: InspectError) -> Self {
        ApiError(inspect_status(&error), error.to_string())
    }
}

/// The HTTP status of what the inspector answered.
pub(crate) fn inspect_status(error: &InspectError) -> StatusCode {
    match error {
        InspectError::UnknownWorkflow { .. } | InspectError::UnknownInstance { .. } => StatusCode::NOT_FOUND,
        InspectError::Ambiguous { .. } | InspectError::BadCursor { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The list's filters, as a query string (an HTML form's empty fields say nothing).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub workflow: Option<String>,
    pub state: Option<String>,
    pub status: Option<String>,
    pub prefix: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl ListQuery {
    /// The inspector's filter, or why the query is not one.
    pub(crate) fn filter(&self) -> Result<Filter, ApiError> {
        let bad = |what: &str, value: &str| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "{what}: `{value}` is not {}",
                    match what {
                        "status" => "running, finished, failed or cancelled",
                        _ => "a time (YYYY-MM-DDTHH:MM, UTC, or milliseconds since 1970)",
                    }
                ),
            )
        };
        let status = match given(&self.status) {
            None => None,
            Some(s) => Some(
                InstanceStatus::ALL
                    .into_iter()
                    .find(|status| status.as_str() == s)
                    .ok_or_else(|| bad("status", &s))?,
            ),
        };
        let time = |what: &str, value: &Option<String>| match given(value) {
            None => Ok(None),
            Some(v) => html::parse_time(&v).map(Some).ok_or_else(|| bad(what, &v)),
        };
        Ok(Filter {
            workflow: given(&self.workflow),
            state: given(&self.state),
            status,
            started_after: time("after", &self.after)?,
            started_before: time("before", &self.before)?,
            id_prefix: given(&self.prefix),
            limit: self.limit.unwrap_or(0),
            cursor: given(&self.cursor),
        })
    }
}

pub(crate) async fn workflows(State(web): State<Arc<Web>>) -> Result<Response, ApiError> {
    Ok(Json(web.inspector.workflows().await?).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DiagramQuery {
    format: Option<String>,
}

pub(crate) async fn diagram(
    State(web): State<Arc<Web>>,
    Path(workflow): Path<String>,
    Query(query): Query<DiagramQuery>,
) -> Result<Response, ApiError> {
    let format = match query.format.as_deref() {
        None | Some("mermaid") => DiagramFormat::Mermaid,
        Some("dot") => DiagramFormat::Dot,
        Some("svg") => DiagramFormat::Svg,
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("format: `{other}` is not mermaid, dot or svg"),
            ))
        }
    };
    Ok(Json(web.inspector.diagram(&workflow, format).await?).into_response())
}

pub(crate) async fn instances(
    State(web): State<Arc<Web>>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    Ok(Json(web.inspector.list(&filter).await?).into_response())
}

pub(crate) async fn instance(
    State(web): State<Arc<Web>>,
    Path((workflow, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(Json(web.inspector.show(&id, Some(&workflow)).await?).into_response())
}

/// The live engines' figures, by workflow name.
pub(crate) async fn metrics(State(web): State<Arc<Web>>) -> Response {
    let mut engines: Vec<_> = web.engines.iter().collect();
    engines.sort_by(|a, b| a.0.cmp(b.0));
    let figures: Vec<_> = engines.into_iter().map(|(_, engine)| engine.metrics()).collect();
    (
        [(header::CONTENT_TYPE, workflow_runtime::prometheus::CONTENT_TYPE)],
        workflow_runtime::prometheus::encode(&figures),
    )
        .into_response()
}

/// An action on a live engine's instance: refused cross-origin, without the token, for a
/// workflow with no live engine here; then the engine's own `cancel`, `retry` or `send`.
pub(crate) async fn act(
    State(web): State<Arc<Web>>,
    Path((workflow, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let refused = |(status, why): guard::Refusal| ApiError(status, why.to_string());
    let Some(token) = &web.token else {
        return Err(ApiError(StatusCode::NOT_FOUND, "actions are not enabled".into()));
    };
    guard::same_origin(&headers).map_err(refused)?;
    guard::authorised(&headers, token).map_err(refused)?;
    let engine = web.engines.get(&workflow).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no live engine of workflow `{workflow}` here"),
        )
    })?;
    let done = match action.as_str() {
        "cancel" => engine.cancel(&id).await,
        "retry" => engine.retry(&id).await,
        "send" => {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return Err(ApiError(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send: the event comes as application/json".into(),
                ));
            }
            let event: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("send: the body is not JSON: {e}")))?;
            engine.send(&id, &event).await
        }
        other => return Err(ApiError(StatusCode::NOT_FOUND, format!("no action `{other}`"))),
    };
    match done {
        Ok(()) => Ok(
            Json(serde_json::json!({ "ok": true, "workflow": workflow, "id": id, "action": action })).into_response(),
        ),
        Err(error) => Err(ApiError(control_status(&error), error.to_string())),
    }
}

fn control_status(error: &ControlError) -> StatusCode {
    match error {
        ControlError::BadEvent { .. } => StatusCode::BAD_REQUEST,
        ControlError::Engine(EngineError::UnknownInstance(_)) => StatusCode::NOT_FOUND,
        ControlError::Engine(EngineError::ShutDown) => StatusCode::SERVICE_UNAVAILABLE,
        ControlError::Engine(EngineError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        // Not failed, stopped, rejected, a full mailbox…: the instance's state decides.
        ControlError::Engine(_) => StatusCode::CONFLICT,
    }
}
