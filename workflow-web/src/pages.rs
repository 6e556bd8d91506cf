//! The HTML pages, written on the server (the script only refreshes counts and sends actions).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use workflow_runtime::inspect::{
    attempt_outcome, format_micros, Diagram, DiagramFormat, InspectError, InstanceRow, Page, TimelineEntry,
};
use workflow_runtime::journal::Attempt;

use crate::api::{inspect_status, ListQuery};
use crate::html::{page, time, Esc, Nav, Pct};
use crate::Web;

/// A page for an error, with its status.
fn error_page(base: &str, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        status.as_u16(),
        Esc(message)
    );
    (status, Html(page("error", base, Nav::Workflows, &body))).into_response()
}

fn inspect_error(base: &str, error: &InspectError) -> Response {
    error_page(base, inspect_status(error), &error.to_string())
}

fn when(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_string(), time)
}

/// `GET /`: the workflows in the store.
pub(crate) async fn workflows(State(web): State<Arc<Web>>) -> Response {
    let base = "./";
    let workflows = match web.inspector.workflows().await {
        Ok(workflows) => workflows,
        Err(error) => return inspect_error(base, &error),
    };
    let mut body = String::from("<h1>Workflows</h1>");
    if workflows.is_empty() {
        body.push_str("<p>The store holds no workflow yet.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\" role=\"region\" aria-label=\"Workflows\" tabindex=\"0\"><table><thead><tr>\
             <th scope=\"col\">Workflow</th><th scope=\"col\" class=\"n\">Instances</th><th scope=\"col\" class=\"n\">Running</th>\
             <th scope=\"col\" class=\"n\">Finished</th><th scope=\"col\" class=\"n\">Failed</th><th scope=\"col\" class=\"n\">Cancelled</th>\
             <th scope=\"col\">Definitions</th></tr></thead><tbody>",
        );
        for w in &workflows {
            let _ = write!(
                body,
                "<tr><th scope=\"row\"><a href=\"{base}workflows/{p}\">{name}</a></th>\
                 <td class=\"n\"><a href=\"{base}instances?workflow={p}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                w.instances,
                w.running,
                w.finished,
                w.failed,
                w.cancelled,
                w.definitions.len(),
                p = Pct(&w.name),
                name = Esc(&w.name),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    if !web.engines.is_empty() {
        let mut names: Vec<&String> = web.engines.keys().collect();
        names.sort();
        let names: Vec<String> = names.iter().map(|n| Esc(n).to_string()).collect();
        let _ = write!(
            body,
            "<p>Live engines here: {}. Their figures: <a href=\"{base}metrics\">metrics</a>.</p>",
            names.join(", ")
        );
    }
    Html(page("Workflows", base, Nav::Workflows, &body)).into_response()
}

/// The counts as a table, each state linking to its instances: what the drawing shows, for
/// reading and for screen readers.
fn count_table(diagram: &Diagram, base: &str) -> String {
    let mut out = String::from(
        "<div class=\"scroll\" role=\"region\" aria-label=\"Instances per state\" tabindex=\"0\"><table class=\"counts\"><thead><tr>\
         <th scope=\"col\">State</th><th scope=\"col\" class=\"n\">Instances</th><th scope=\"col\" class=\"n\">Running</th></tr></thead><tbody>",
    );
    for c in &diagram.counts {
        let _ = write!(
            out,
            "<tr data-state=\"{s}\"><th scope=\"row\"><a href=\"{base}instances?workflow={w}&amp;state={ps}\">{s}</a></th>\
             <td class=\"n\" data-count>{n}</td><td class=\"n\" data-running>{r}</td></tr>",
            s = Esc(&c.state),
            ps = Pct(&c.state),
            w = Pct(&diagram.workflow),
            n = c.instances,
            r = c.running,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `GET /workflows/{workflow}`: the diagram with its live counts.
pub(crate) async fn diagram(State(web): State<Arc<Web>>, Path(workflow): Path<String>) -> Response {
    let base = "../";
    let drawing = match web.inspector.diagram(&workflow, DiagramFormat::Svg).await {
        Ok(diagram) => diagram,
        Err(error) => return inspect_error(base, &error),
    };
    let mut body = format!(
        "<h1>{name}</h1><p>Instances in each state (a compound state counts its descendants'), \
         the more the warmer its colour, refreshed every second. <span class=\"live\" role=\"status\" data-live-status>live</span></p>\
         <section class=\"live-diagram\" aria-label=\"Diagram of {name}\" data-live-diagram=\"{base}api/workflows/{p}/diagram\">\
         <div class=\"scroll diagram\" role=\"region\" aria-label=\"Drawing\" tabindex=\"0\">{svg}</div>\
         <h2>Instances per state</h2>{table}</section>\
         <p><a href=\"{base}instances?workflow={p}\">All instances of {name}</a></p>",
        name = Esc(&drawing.workflow),
        p = Pct(&drawing.workflow),
        // The runtime's drawing, its names escaped there.
        svg = drawing.text,
        table = count_table(&drawing, base),
    );
    for (format, title) in [(DiagramFormat::Mermaid, "Mermaid"), (DiagramFormat::Dot, "DOT")] {
        if let Ok(text) = web.inspector.diagram(&workflow, format).await {
            let _ = write!(
                body,
                "<details><summary>{title}</summary><pre>{}</pre></details>",
                Esc(&text.text)
            );
        }
    }
    Html(page(&drawing.workflow, base, Nav::Workflows, &body)).into_response()
}

/// The filter form, filled with the query.
fn filter_form(query: &ListQuery, workflows: &[String], base: &str) -> String {
    let value = |v: &Option<String>| Esc(v.as_deref().unwrap_or("")).to_string();
    let mut options = String::from("<option value=\"\">any</option>");
    for w in workflows {
        let selected = if query.workflow.as_deref() == Some(w) {
            " selected"
        } else {
            ""
        };
        let _ = write!(options, "<option value=\"{w}\"{selected}>{w}</option>", w = Esc(w));
    }
    let mut statuses = String::from("<option value=\"\">any</option>");
    for s in ["running", "finished", "failed", "cancelled"] {
        let selected = if query.status.as_deref() == Some(s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(statuses, "<option value=\"{s}\"{selected}>{s}</option>");
    }
    format!(
        "<form class=\"filters\" method=\"get\" action=\"{base}instances\" aria-label=\"Filters\">\
         <label>Workflow <select name=\"workflow\">{options}</select></label>\
         <label>State <input name=\"state\" value=\"{state}\"></label>\
         <label>Status <select name=\"status\">{statuses}</select></label>\
         <label>Id starts with <input name=\"prefix\" value=\"{prefix}\"></label>\
         <label>Started after (UTC) <input name=\"after\" type=\"datetime-local\" step=\"1\" value=\"{after}\"></label>\
         <label>Started before (UTC) <input name=\"before\" type=\"datetime-local\" step=\"1\" value=\"{before}\"></label>\
         <button type=\"submit\">Filter</button></form>",
        state = value(&query.state),
        prefix = value(&query.prefix),
        after = value(&query.after),
        before = value(&query.before),
    )
}

fn status_name(row: &InstanceRow) -> &'static str {
    row.status.map_or("unknown", |s| s.as_str())
}

fn instance_table(page: &Page, base: &str) -> String {
    let mut out = String::from(
        "<div class=\"scroll\" role=\"region\" aria-label=\"Instances\" tabindex=\"0\"><table class=\"instances\"><thead><tr>\
         <th scope=\"col\">Id</th><th scope=\"col\">Workflow</th><th scope=\"col\">State</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Started (UTC)</th><th scope=\"col\">Updated (UTC)</th><th scope=\"col\" class=\"n\">Steps</th></tr></thead><tbody>",
    );
    for row in &page.instances {
        let status = status_name(row);
        let _ = write!(
            out,
            "<tr data-id=\"{id}\"><th scope=\"row\"><a href=\"{base}instances/{w}/{pid}\">{id}</a></th><td>{wf}</td><td>{state}</td>\
             <td><span class=\"status {status}\">{status}</span></td><td>{started}</td><td>{updated}</td><td class=\"n\">{rows}</td></tr>",
            id = Esc(&row.id),
            pid = Pct(&row.id),
            w = Pct(&row.workflow),
            wf = Esc(&row.workflow),
            state = Esc(row.state.as_deref().unwrap_or("—")),
            started = when(row.started),
            updated = when(row.updated),
            rows = row.rows,
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `GET /instances`: the instances, filtered and paged.
pub(crate) async fn instances(State(web): State<Arc<Web>>, Query(query): Query<ListQuery>) -> Response {
    let base = "./";
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(error) => return error_page(base, error.0, &error.1),
    };
    let listed = match web.inspector.list(&filter).await {
        Ok(page) => page,
        Err(error) => return inspect_error(base, &error),
    };
    let names: Vec<String> = match web.inspector.workflows().await {
        Ok(workflows) => workflows.into_iter().map(|w| w.name).collect(),
        Err(error) => return inspect_error(base, &error),
    };
    let mut body = String::from("<h1>Instances</h1>");
    body.push_str(&filter_form(&query, &names, base));
    let _ = write!(
        body,
        "<p role=\"status\" data-total=\"{t}\">{t} instance{s} match, newest first.</p>",
        t = listed.total,
        s = if listed.total == 1 { "" } else { "es" }
    );
    body.push_str(&instance_table(&listed, base));
    if let Some(next) = &listed.next {
        // The same filters, from the next page's cursor.
        let mut link = format!("{base}instances?cursor={}", Pct(next));
        for (key, value) in [
            ("workflow", &query.workflow),
            ("state", &query.state),
            ("status", &query.status),
            ("prefix", &query.prefix),
            ("after", &query.after),
            ("before", &query.before),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                let _ = write!(link, "&{key}={}", Pct(value));
            }
        }
        let _ = write!(body, "<p><a rel=\"next\" href=\"{}\">Next page</a></p>", Esc(&link));
    }
    Html(page("Instances", base, Nav::Instances, &body)).into_response()
}

fn timeline_row(entry: &TimelineEntry) -> String {
    let opt = |v: &Option<String>| Esc(v.as_deref().unwrap_or("")).to_string();
    let moved = match (&entry.from, &entry.to) {
        (Some(from), Some(to)) => format!("{} → {}", Esc(from), Esc(to)),
        (None, Some(to)) => Esc(to).to_string(),
        _ => String::new(),
    };
    let mut activity = entry.activity.as_ref().map_or_else(String::new, |a| {
        let took = a.duration_ms.map_or_else(String::new, |ms| format!(" in {ms} ms"));
        format!("{} {}{took}", Esc(&a.name), Esc(&a.outcome))
    });
    activity.push_str(&attempt_list(&entry.attempts));
    let detail = [entry.compensation.as_deref(), entry.error.as_deref()]
        .into_iter()
        .flatten()
        .map(|t| Esc(t).to_string())
        .collect::<Vec<_>>()
        .join(" · ");
    format!(
        "<tr data-step=\"{step}\"><td class=\"n\">{seq}</td><td>{at}</td><td>{step}</td><td>{event}</td><td>{moved}</td><td>{activity}</td><td>{detail}</td></tr>",
        seq = entry.seq,
        at = when(entry.at),
        step = Esc(&entry.step),
        event = opt(&entry.event),
    )
}

/// The attempts of the call whose outcome a timeline row is, in its activity cell: each one's
/// number, start, duration and how it ended.
fn attempt_list(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ol class=\"attempts\">");
    for a in attempts {
        let _ = write!(
            out,
            "<li data-attempt=\"{n}\">attempt {n} · {at} · {took} · {ended}</li>",
            n = a.attempt,
            at = time(a.at),
            took = format_micros(a.duration_us),
            ended = Esc(&attempt_outcome(a)),
        );
    }
    out.push_str("</ol>");
    out
}

/// `GET /instances/{workflow}/{id}`: one instance, its timeline, and its actions if enabled.
pub(crate) async fn instance(State(web): State<Arc<Web>>, Path((workflow, id)): Path<(String, String)>) -> Response {
    let base = "../../";
    let detail = match web.inspector.show(&id, Some(&workflow)).await {
        Ok(detail) => detail,
        Err(error) => return inspect_error(base, &error),
    };
    let row = &detail.row;
    let status = status_name(row);
    let mut body = format!(
        "<h1>{id} <small>{wf}</small></h1><dl class=\"facts\">\
         <dt>Status</dt><dd><span class=\"status {status}\" data-status>{status}</span></dd>\
         <dt>State</dt><dd data-state>{state}</dd><dt>Started (UTC)</dt><dd>{started}</dd>\
         <dt>Updated (UTC)</dt><dd>{updated}</dd>",
        id = Esc(&row.id),
        wf = Esc(&row.workflow),
        state = Esc(row.state.as_deref().unwrap_or("—")),
        started = when(row.started),
        updated = when(row.updated),
    );
    if let Some(reason) = &detail.reason {
        let _ = write!(body, "<dt>Reason</dt><dd>{}</dd>", Esc(reason));
    }
    body.push_str("</dl>");
    if web.token.is_some() && web.engines.contains_key(&row.workflow) {
        let _ = write!(
            body,
            "<section class=\"actions\" aria-labelledby=\"actions\" data-actions=\"{base}api/instances/{w}/{pid}/\">\
             <h2 id=\"actions\">Actions</h2>\
             <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" data-token></label>\
             <div class=\"buttons\"><button type=\"button\" data-action=\"cancel\">Cancel instance</button>\
             <button type=\"button\" data-action=\"retry\">Retry</button></div>\
             <label>Event (JSON) <textarea name=\"event\" rows=\"2\" data-event>\"\"</textarea></label>\
             <div class=\"buttons\"><button type=\"button\" data-action=\"send\">Send event</button></div>\
             <output role=\"status\" data-action-result></output></section>",
            w = Pct(&row.workflow),
            pid = Pct(&row.id),
        );
    }
    if let Some(context) = &detail.context {
        let pretty = serde_json::to_string_pretty(context).unwrap_or_default();
        let _ = write!(body, "<h2>Context</h2><pre>{}</pre>", Esc(&pretty));
    }
    body.push_str(
        "<h2>Timeline</h2><div class=\"scroll\" role=\"region\" aria-label=\"Timeline\" tabindex=\"0\"><table class=\"timeline\"><thead><tr>\
         <th scope=\"col\" class=\"n\">#</th><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Step</th><th scope=\"col\">Event</th>\
         <th scope=\"col\">From → to</th><th scope=\"col\">Activity</th><th scope=\"col\">Detail</th></tr></thead><tbody>",
    );
    for entry in &detail.timeline {
        body.push_str(&timeline_row(entry));
    }
    body.push_str("</tbody></table></div>");
    Html(page(&row.id, base, Nav::Instances, &body)).into_response()
}
