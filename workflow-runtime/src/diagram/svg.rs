//! An SVG drawing of a [`Graph`]: boxes for states, arrows for transitions, a count in each box.
//!
//! The layout is layered and deterministic: within each container (the workflow, a compound or
//! a parallel state) the children are ranked by breadth-first distance from the container's
//! initial child, one row per rank, top to bottom; a compound or parallel state is a box holding
//! its children's rows (a parallel state's regions side by side). Arrows run from the bottom of
//! a box to the top of a lower one, and back up along the right side; a transition that stays
//! in its state is a small loop. Nothing is measured: boxes have one size, and a name longer
//! than a box holds is cut short (the whole name is in the box's `<title>`).

use std::fmt::{self, Write};

use crate::graph::{Graph, StateKind, Trigger};

const BOX_W: i64 = 156;
const BOX_H: i64 = 52;
const GAP_X: i64 = 36;
const GAP_Y: i64 = 64;
/// Padding inside a container's box, and the height of its name line.
const PAD: i64 = 14;
const HEAD: i64 = 28;
const MARGIN: i64 = 16;
/// Room above the initial state for the start dot.
const START: i64 = 30;
/// How far a back edge bulges right of its boxes.
const BULGE: i64 = 44;
/// Characters of a name, and of an edge's label, drawn before the text is cut short.
const NAME_CHARS: usize = 19;
const LABEL_CHARS: usize = 22;
/// A rough width of one character of an edge label (11 px sans-serif), for the drawing's width.
const LABEL_CHAR_W: i64 = 6;

/// How hot a count is, 0 (none) to 5 (the largest): `1 + 4 · count / max`, at most 5. The SVG
/// colours each state's box by it (classes `heat-0` … `heat-5`); a page refreshing the counts
/// computes the same.
///
/// ```
/// use workflow_runtime::count_heat;
///
/// assert_eq!(count_heat(0, 10), 0);
/// assert_eq!(count_heat(1, 10), 1);
/// assert_eq!(count_heat(5, 10), 3);
/// assert_eq!(count_heat(10, 10), 5);
/// ```
pub fn count_heat(count: u64, max: u64) -> u64 {
    if count == 0 {
        0
    } else {
        (1 + 4 * count / max.max(1)).min(5)
    }
}

/// Text escaped for XML and HTML content and for double-quoted attributes (`&`, `<`, `>`, `"`
/// and `'`), as the SVG drawings write names; for pages that embed them and their own text.
///
/// ```
/// use workflow_runtime::Escaped;
/// assert_eq!(Escaped("<a href=\"x\">'&'</a>").to_string(), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
/// ```
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `text`, cut to `chars` characters with an ellipsis if longer.
fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(chars - 1).collect();
        short.push('…');
        short
    }
}

/// A box: left, top, width, height.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn right(&self) -> i64 {
        self.x + self.w
    }
    fn bottom(&self) -> i64 {
        self.y + self.h
    }
    fn mid_y(&self) -> i64 {
        self.y + self.h / 2
    }
}

/// Where every state is drawn.
struct Layout {
    boxes: Vec<Rect>,
    /// Per container (`None`: the workflow, then each state), its children's rows.
    rows: Vec<Vec<Vec<usize>>>,
    width: i64,
    height: i64,
}

/// Whether `other` stands between `a` and `b`, two boxes beside each other.
fn between(a: Rect, b: Rect, other: Rect) -> bool {
    let (left, right) = (a.right().min(b.right()), a.x.max(b.x));
    other.x >= left && other.right() <= right && other.y < a.bottom().max(b.bottom()) && other.bottom() > a.y.min(b.y)
}

fn is_container(kind: StateKind) -> bool {
    matches!(kind, StateKind::Compound { .. } | StateKind::Parallel)
}

impl Graph<'_> {
    /// Renders the workflow as an SVG drawing: each state a box, each transition an arrow
    /// labelled with its trigger (the whole label, guard and actions too, in the arrow's
    /// `<title>`), compound and parallel states as boxes holding their children, final states
    /// with a double border. The drawing names itself (`role="img"`, a `<title>` and a
    /// `<desc>`) and carries its own styles, so it stands alone as a file or inline in a page.
    pub fn to_svg(&self) -> String {
        self.svg(None)
    }

    /// [`to_svg`](Self::to_svg) with a count in each state's box: `counts[i]` for state `i`
    /// (missing ones are 0), the box coloured by [`count_heat`] of it against the largest.
    /// Each state's group carries `data-state="NAME"` and its count is the text of its
    /// `<text data-count>`, so a page can refresh them in place.
    ///
    /// ```
    /// use workflow::prelude::*;
    ///
    /// workflow! { workflow Door { initial Closed; events { Open } state Closed { on Open => Opened; } final Opened; } }
    ///
    /// let svg = Door::graph().to_svg_counted(&[3, 1]);
    /// assert!(svg.starts_with("<svg "));
    /// assert!(svg.contains("<g class=\"state heat-5\" data-state=\"Closed\">"));
    /// assert!(svg.contains("<text class=\"count\" data-count x=\"94\" y=\"88\">3</text>"));
    /// assert!(svg.contains("<text class=\"label\" x=\"94\" y=\"134\">Open</text>"));
    /// ```
    pub fn to_svg_counted(&self, counts: &[u64]) -> String {
        self.svg(Some(counts))
    }

    fn svg(&self, counts: Option<&[u64]>) -> String {
        let layout = self.layout();
        let count = |s: usize| counts.map(|c| c.get(s).copied().unwrap_or(0));
        let max = counts.map_or(0, |c| c.iter().copied().max().unwrap_or(0));

        // The arrows first (their labels widen the drawing), then the boxes, outermost first.
        let (edges, edge_right, edge_bottom) = self.svg_edges(&layout);
        let width = layout.width.max(edge_right + MARGIN);
        let height = layout.height.max(edge_bottom + MARGIN);
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"wf-diagram\" role=\"img\" \
             aria-labelledby=\"wf-title wf-desc\" viewBox=\"0 0 {width} {h}\" width=\"{width}\" height=\"{h}\">\
             <title id=\"wf-title\">{name}: states and transitions</title>\
             <desc id=\"wf-desc\">{desc}</desc>{STYLE}\
             <defs><marker id=\"wf-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
             orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#475569\"/></marker></defs>",
            h = height,
            name = Escaped(self.name),
            desc = Escaped(&self.svg_desc(counts.is_some())),
        );
        for s in 0..self.states.len() {
            self.svg_state(s, layout.boxes[s], count(s), max, &mut out);
        }
        if let Some(b) = layout.boxes.get(self.initial) {
            let x = b.x + b.w / 2;
            let _ = write!(
                out,
                "<g class=\"start\"><circle cx=\"{x}\" cy=\"{}\" r=\"6\"/><path class=\"arrow\" d=\"M{x},{}L{x},{}\"/></g>",
                b.y - START + 7,
                b.y - START + 13,
                b.y - 1
            );
        }
        out.push_str(&edges);
        out.push_str("</svg>\n");
        out
    }

    fn svg_desc(&self, counted: bool) -> String {
        let arrows: usize = self
            .transitions
            .iter()
            .filter(|t| t.trigger != Trigger::Initial)
            .map(|t| t.targets.len().max(1))
            .sum();
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut desc = format!(
            "{} and {}, from the initial state {} at the top down",
            plural(self.states.len(), "state"),
            plural(arrows, "transition"),
            self.states.get(self.initial).map_or("", |s| s.name)
        );
        if counted {
            desc.push_str(
                "; each box shows how many instances stand in its state (a compound state counts its \
                 descendants'), the more the warmer its colour",
            );
        }
        desc.push('.');
        desc
    }

    fn svg_state(&self, s: usize, b: Rect, count: Option<u64>, max: u64, out: &mut String) {
        let state = &self.states[s];
        let mut class = String::from("state");
        if is_container(state.kind) {
            class.push_str(" container");
        }
        match state.kind {
            StateKind::Parallel => class.push_str(" parallel"),
            StateKind::Final { failure } => class.push_str(if failure { " final failure" } else { " final" }),
            StateKind::History { .. } => class.push_str(" history"),
            _ => {}
        }
        if let Some(n) = count {
            let _ = write!(class, " heat-{}", count_heat(n, max));
        }
        let mut title = state.name.to_string();
        match state.kind {
            StateKind::Parallel => title.push_str(" (parallel)"),
            StateKind::Final { failure: true } => title.push_str(" (final, failure)"),
            StateKind::Final { failure: false } => title.push_str(" (final)"),
            StateKind::History { deep: true, .. } => title.push_str(" (deep history)"),
            StateKind::History { .. } => title.push_str(" (history)"),
            _ => {}
        }
        if let Some(invoke) = &state.invoke {
            let _ = write!(title, ", invokes {}", invoke.activity);
        }
        if let Some(compensate) = state.compensate {
            let _ = write!(title, ", compensated by {compensate}");
        }
        let _ = write!(
            out,
            "<g class=\"{class}\" data-state=\"{name}\"><title>{title}</title>\
             <rect class=\"box\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"8\"/>",
            name = Escaped(state.name),
            title = Escaped(&title),
            x = b.x,
            y = b.y,
            w = b.w,
            h = b.h,
        );
        if state.is_final() {
            let _ = write!(
                out,
                "<rect class=\"inner\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"5\"/>",
                b.x + 4,
                b.y + 4,
                b.w - 8,
                b.h - 8
            );
        }
        let name = match state.kind {
            StateKind::History { deep: true, .. } => format!("{} (H*)", state.name),
            StateKind::History { .. } => format!("{} (H)", state.name),
            _ => state.name.to_string(),
        };
        if is_container(state.kind) {
            // The name and count on the box's first line, left and right.
            let _ = write!(
                out,
                "<text class=\"name\" x=\"{}\" y=\"{}\">{}</text>",
                b.x + 10,
                b.y + 19,
                Escaped(&cut(&name, (b.w / 8).max(4) as usize))
            );
            if let Some(n) = count {
                let _ = write!(
                    out,
                    "<text class=\"count\" data-count x=\"{}\" y=\"{}\" text-anchor=\"end\">{n}</text>",
                    b.right() - 10,
                    b.y + 20
                );
            }
        } else {
            let x = b.x + b.w / 2;
            let name_y = if count.is_some() { b.y + 21 } else { b.mid_y() + 5 };
            let _ = write!(
                out,
                "<text class=\"name\" x=\"{x}\" y=\"{name_y}\" text-anchor=\"middle\">{}</text>",
                Escaped(&cut(&name, NAME_CHARS))
            );
            if let Some(n) = count {
                let _ = write!(
                    out,
                    "<text class=\"count\" data-count x=\"{x}\" y=\"{}\">{n}</text>",
                    b.y + 42
                );
            }
        }
        out.push_str("</g>");
    }

    /// The arrows, and the rightmost and lowest points they (and their labels) reach.
    fn svg_edges(&self, layout: &Layout) -> (String, i64, i64) {
        // (source, target: None for a targetless transition, trigger, whole label)
        let mut edges: Vec<(usize, Option<usize>, String, String)> = Vec::new();
        for t in self.transitions {
            if t.trigger == Trigger::Initial {
                continue;
            }
            let full = if matches!(self.states[t.source].kind, StateKind::History { .. }) {
                "default".to_string()
            } else {
                self.label(t)
            };
            // The trigger alone is drawn; guard and actions are in the title.
            let short = full.split(" [").next().unwrap_or("");
            let short = short.split(" /").next().unwrap_or("").to_string();
            if t.targets.is_empty() {
                edges.push((t.source, None, short.clone(), full.clone()));
            }
            for &target in t.targets {
                let target = (target != t.source).then_some(target);
                edges.push((t.source, target, short.clone(), full.clone()));
            }
        }
        // Downward arrows share the bottom of their source and the top of their target:
        // each gets its own port, spread along the side in the order of the other ends.
        let b = &layout.boxes;
        let down = |s: usize, t: usize| b[t].y >= b[s].bottom();
        let mut out_ports: Vec<Vec<(i64, usize)>> = vec![Vec::new(); b.len()];
        let mut in_ports: Vec<Vec<(i64, usize)>> = vec![Vec::new(); b.len()];
        for (i, (s, t, _, _)) in edges.iter().enumerate() {
            if let Some(t) = *t {
                if down(*s, t) {
                    out_ports[*s].push((b[t].x + b[t].w / 2, i));
                    in_ports[t].push((b[*s].x + b[*s].w / 2, i));
                }
            }
        }
        let port = |ports: &mut Vec<Vec<(i64, usize)>>, s: usize, edge: usize| {
            let list = &mut ports[s];
            list.sort();
            let k = list.iter().position(|&(_, e)| e == edge).unwrap_or(0) as i64;
            let n = list.len() as i64;
            let width = b[s].w.min(BOX_W);
            b[s].x + (b[s].w - width) / 2 + width * (k + 1) / (n + 1)
        };
        let mut back_count = vec![0_i64; b.len()];
        let (mut right, mut bottom) = (0, 0);
        let mut placed: Vec<(i64, i64, i64)> = Vec::new();
        let mut out = String::new();
        for (i, (s, t, short, full)) in edges.iter().enumerate() {
            let (s, src) = (*s, b[*s]);
            let (path, label_at, anchor) = match *t {
                None => {
                    // A loop on the right side.
                    let (x, y) = (src.right(), src.y);
                    let k = back_count[s] * 8;
                    back_count[s] += 1;
                    (
                        format!(
                            "M{x},{}C{},{} {},{} {x},{}",
                            y + 14,
                            x + 30 + k,
                            y + 2,
                            x + 30 + k,
                            y + src.h - 2,
                            y + src.h - 14
                        ),
                        None,
                        "start",
                    )
                }
                Some(t) if down(s, t) => {
                    let (x1, y1) = (port(&mut out_ports, s, i), src.bottom());
                    let (x2, y2) = (port(&mut in_ports, t, i), b[t].y);
                    let dy = (y2 - y1) / 2;
                    (
                        format!("M{x1},{y1}C{x1},{} {x2},{} {x2},{y2}", y1 + dy, y2 - dy),
                        Some(((x1 + x2) / 2, (y1 + y2) / 2 + 4)),
                        "middle",
                    )
                }
                Some(t) if b[t].bottom() <= src.y => {
                    // Back up, along the right of both boxes.
                    let dst = b[t];
                    let k = back_count[s] * 10;
                    back_count[s] += 1;
                    let (x1, y1, x2, y2) = (src.right(), src.mid_y() + 6, dst.right(), dst.mid_y() + 6);
                    let bulge = x1.max(x2) + BULGE + k;
                    (
                        format!("M{x1},{y1}C{bulge},{y1} {bulge},{y2} {x2},{y2}"),
                        Some((bulge - 8, (y1 + y2) / 2 + 4)),
                        "start",
                    )
                }
                Some(t)
                    if b.iter()
                        .enumerate()
                        .any(|(o, ob)| o != s && o != t && between(src, b[t], *ob)) =>
                {
                    // Beside it with boxes between: under them.
                    let dst = b[t];
                    let (x1, x2) = (src.x + src.w / 2, dst.x + dst.w / 2);
                    let low = src.bottom().max(dst.bottom()) + 36;
                    bottom = bottom.max(low);
                    (
                        format!("M{x1},{}C{x1},{low} {x2},{low} {x2},{}", src.bottom(), dst.bottom()),
                        Some(((x1 + x2) / 2, low - 4)),
                        "middle",
                    )
                }
                Some(t) => {
                    // Beside it: from the facing side.
                    let dst = b[t];
                    let (x1, x2) = if dst.x >= src.right() {
                        (src.right(), dst.x)
                    } else {
                        (src.x, dst.right())
                    };
                    let (y1, y2) = (src.mid_y() + 8, dst.mid_y() + 8);
                    (
                        format!("M{x1},{y1}C{},{y1} {},{y2} {x2},{y2}", (x1 + x2) / 2, (x1 + x2) / 2),
                        Some(((x1 + x2) / 2, (y1 + y2) / 2 - 6)),
                        "middle",
                    )
                }
            };
            let _ = write!(
                out,
                "<g class=\"edge\"><title>{}</title><path class=\"arrow\" d=\"{path}\"/>",
                Escaped(&format!(
                    "{} → {}: {full}",
                    self.states[s].name,
                    self.states[t.unwrap_or(s)].name
                ))
            );
            right = right.max(src.right() + 34 + back_count[s] * 8);
            if let Some((x, mut y)) = label_at.filter(|_| !short.is_empty()) {
                let text = cut(short, LABEL_CHARS);
                let width = text.chars().count() as i64 * LABEL_CHAR_W;
                // Below any label already drawn where this one would go.
                let (x0, x1) = if anchor == "start" {
                    (x, x + width)
                } else {
                    (x - width / 2, x + width / 2)
                };
                while placed
                    .iter()
                    .any(|&(a0, a1, ay)| a0 < x1 && x0 < a1 && (ay - y).abs() < 13)
                {
                    y += 13;
                }
                placed.push((x0, x1, y));
                bottom = bottom.max(y + 4);
                right = right.max(if anchor == "start" { x + width } else { x + width / 2 });
                let anchor = if anchor == "start" {
                    " text-anchor=\"start\""
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<text class=\"label\" x=\"{x}\" y=\"{y}\"{anchor}>{}</text>",
                    Escaped(&text)
                );
            }
            out.push_str("</g>");
        }
        (out, right, bottom)
    }

    /// Ranks, sizes and places every state.
    fn layout(&self) -> Layout {
        let n = self.states.len();
        let mut layout = Layout {
            boxes: vec![Rect::default(); n],
            rows: vec![Vec::new(); n + 1],
            width: 0,
            height: 0,
        };
        let (w, h) = self.measure(None, &mut layout);
        self.place(None, MARGIN, MARGIN + START, w, &mut layout);
        layout.width = w + 2 * MARGIN;
        layout.height = h + 2 * MARGIN + START;
        layout
    }

    /// `s`'s ancestor-or-self whose parent is `container`, if any.
    fn lift(&self, mut s: usize, container: Option<usize>) -> Option<usize> {
        loop {
            let parent = self.states[s].parent;
            if parent == container {
                return Some(s);
            }
            s = parent?;
        }
    }

    /// The rows of `container`'s children: by breadth-first distance from its initial child
    /// over the transitions between them (a transition from or to a descendant counts as its
    /// ancestor's), unreached children after, each row ordered under its predecessors.
    fn ranks(&self, container: Option<usize>) -> Vec<Vec<usize>> {
        let children: Vec<usize> = self.children(container).collect();
        if container.is_some_and(|c| self.states[c].kind == StateKind::Parallel) {
            return vec![children];
        }
        let start = match container {
            None => self
                .states
                .get(self.initial)
                .and_then(|_| self.lift(self.initial, None)),
            Some(c) => match self.states[c].kind {
                StateKind::Compound { initial } => self.lift(initial, Some(c)),
                _ => None,
            },
        };
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); self.states.len()];
        for t in self.transitions {
            for &target in t.targets {
                if let (Some(a), Some(b)) = (self.lift(t.source, container), self.lift(target, container)) {
                    if a != b && !next[a].contains(&b) {
                        next[a].push(b);
                    }
                }
            }
        }
        let mut rank: Vec<Option<usize>> = vec![None; self.states.len()];
        let mut deepest = 0;
        let seeds = start.into_iter().chain(children.iter().copied());
        for seed in seeds {
            if rank[seed].is_some() {
                continue;
            }
            let first = if start == Some(seed) { 0 } else { deepest + 1 };
            rank[seed] = Some(first);
            let mut queue = std::collections::VecDeque::from([seed]);
            while let Some(s) = queue.pop_front() {
                let r = rank[s].unwrap_or(0);
                deepest = deepest.max(r);
                for &t in &next[s] {
                    if rank[t].is_none() {
                        rank[t] = Some(r + 1);
                        queue.push_back(t);
                    }
                }
            }
        }
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); deepest + 1];
        for &c in &children {
            rows[rank[c].unwrap_or(0)].push(c);
        }
        // Under its predecessors: by the first place in the row above that leads to it.
        for r in 1..rows.len() {
            let (above, below) = rows.split_at_mut(r);
            let above = &above[r - 1];
            below[0].sort_by_key(|&c| above.iter().position(|&p| next[p].contains(&c)).unwrap_or(usize::MAX));
        }
        rows.retain(|row| !row.is_empty());
        rows
    }

    /// Sizes `container`'s content (its children's rows), recording the rows; gives its size.
    fn measure(&self, container: Option<usize>, layout: &mut Layout) -> (i64, i64) {
        let rows = self.ranks(container);
        let (mut width, mut height) = (0, 0);
        for (r, row) in rows.iter().enumerate() {
            let mut row_w = 0;
            let mut row_h = 0;
            for (i, &c) in row.iter().enumerate() {
                let (w, h) = if is_container(self.states[c].kind) {
                    let (w, h) = self.measure(Some(c), layout);
                    (
                        (w + 2 * PAD).max(BOX_W),
                        h + HEAD + PAD + if h > 0 { 0 } else { BOX_H - HEAD - PAD },
                    )
                } else {
                    (BOX_W, BOX_H)
                };
                layout.boxes[c].w = w;
                layout.boxes[c].h = h;
                row_w += w + if i > 0 { GAP_X } else { 0 };
                row_h = row_h.max(h);
            }
            width = width.max(row_w);
            height += row_h + if r > 0 { GAP_Y } else { 0 };
        }
        layout.rows[container.map_or(0, |c| c + 1)] = rows;
        (width, height)
    }

    /// Places `container`'s content at `x`, `y` within `width`: each row centred.
    fn place(&self, container: Option<usize>, x: i64, mut y: i64, width: i64, layout: &mut Layout) {
        let rows = std::mem::take(&mut layout.rows[container.map_or(0, |c| c + 1)]);
        for row in &rows {
            let row_w: i64 = row.iter().map(|&c| layout.boxes[c].w).sum::<i64>() + GAP_X * (row.len() as i64 - 1);
            let row_h = row.iter().map(|&c| layout.boxes[c].h).max().unwrap_or(0);
            let mut left = x + (width - row_w) / 2;
            for &c in row {
                let b = &mut layout.boxes[c];
                b.x = left;
                b.y = y;
                let (w, inner) = (b.w, b.w - 2 * PAD);
                if is_container(self.states[c].kind) {
                    self.place(Some(c), left + PAD, y + HEAD, inner, layout);
                }
                left += w + GAP_X;
            }
            y += row_h + GAP_Y;
        }
        layout.rows[container.map_or(0, |c| c + 1)] = rows;
    }
}

/// The drawing's styles: inside the SVG, so that a file of it looks the same as a page showing
/// it; every rule is scoped to `.wf-diagram`. Heat colours go from grey to red; the text on
/// each is dark enough for WCAG AA.
const STYLE: &str = "<style>\
.wf-diagram text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;fill:#111827}\
.wf-diagram .name{font-size:13px;font-weight:600}\
.wf-diagram .count{font-size:16px;font-weight:700;text-anchor:middle}\
.wf-diagram .container>.count{font-size:14px}\
.wf-diagram .box{fill:#f9fafb;stroke:#4b5563;stroke-width:1.2}\
.wf-diagram .container>.box{fill:#ffffff;fill-opacity:.6;stroke:#64748b}\
.wf-diagram .parallel>.box{stroke-dasharray:6 4}\
.wf-diagram .inner{fill:none;stroke:#4b5563;stroke-width:1.2}\
.wf-diagram .failure>.box,.wf-diagram .failure>.inner{stroke:#b91c1c}\
.wf-diagram .history>.box{stroke-dasharray:2 3}\
.wf-diagram .heat-1>.box{fill:#e0f2fe}\
.wf-diagram .heat-2>.box{fill:#bae6fd}\
.wf-diagram .heat-3>.box{fill:#fef08a}\
.wf-diagram .heat-4>.box{fill:#fed7aa}\
.wf-diagram .heat-5>.box{fill:#fecaca;stroke:#b91c1c;stroke-width:2}\
.wf-diagram .container.heat-1>.box,.wf-diagram .container.heat-2>.box,.wf-diagram .container.heat-3>.box,\
.wf-diagram .container.heat-4>.box,.wf-diagram .container.heat-5>.box{fill-opacity:.45}\
.wf-diagram .arrow{fill:none;stroke:#475569;stroke-width:1.4;marker-end:url(#wf-arrow)}\
.wf-diagram .start circle{fill:#1f2937}\
.wf-diagram .label{font-size:11px;text-anchor:middle;fill:#1f2937;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}\
.wf-diagram .edge:hover .arrow{stroke:#0b57d0;stroke-width:2.2}\
</style>";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::tests::{state, DOOR, JOB, PLAIN_CHILD};
    use crate::graph::TransitionInfo;

    /// The markup of state `name`'s group.
    fn group<'s>(svg: &'s str, name: &str) -> &'s str {
        let at = svg
            .find(&format!("data-state=\"{name}\">"))
            .unwrap_or_else(|| panic!("no state {name} in {svg}"));
        let start = svg[..at].rfind("<g ").unwrap_or(at);
        let end = at + svg[at..].find("</g>").unwrap_or(0);
        &svg[start..end]
    }

    fn inside(inner: Rect, outer: Rect) -> bool {
        inner.x > outer.x && inner.y > outer.y && inner.right() < outer.right() && inner.bottom() < outer.bottom()
    }

    fn apart(a: Rect, b: Rect) -> bool {
        a.right() <= b.x || b.right() <= a.x || a.bottom() <= b.y || b.bottom() <= a.y
    }

    #[test]
    fn every_state_and_transition_is_drawn_with_its_count() {
        let svg = DOOR.to_svg_counted(&[2, 0, 1]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"wf-diagram\" role=\"img\""));
        assert!(svg.contains("<title id=\"wf-title\">Door: states and transitions</title>"));
        assert!(svg.ends_with("</svg>\n"));
        for (name, class, count) in [
            ("Closed", "state heat-5", 2),
            ("Open", "state heat-0", 0),
            ("Broken", "state final failure heat-3", 1),
        ] {
            let g = group(&svg, name);
            assert!(
                g.starts_with(&format!("<g class=\"{class}\" data-state=\"{name}\">")),
                "{g}"
            );
            assert!(g.contains("data-count x="), "{g}");
            assert!(g.contains(&format!(">{count}</text>")), "{g}");
        }
        assert!(
            group(&svg, "Broken").contains("<rect class=\"inner\""),
            "a final's double border"
        );
        assert!(!group(&svg, "Open").contains("<rect class=\"inner\""));
        // Four arrows: each with its whole label as its title, the trigger drawn.
        assert_eq!(svg.matches("<g class=\"edge\">").count(), 4, "{svg}");
        for title in [
            "Closed → Open: Push [unlocked] / creak, count",
            "Open → Closed: after 2h",
            "Open → Broken: Kick | Knock",
            "Open → Open: _ / answer",
        ] {
            assert!(svg.contains(&format!("<title>{title}</title>")), "{title} in {svg}");
        }
        for label in ["Push", "after 2h", "Kick | Knock"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label} in {svg}");
        }
        assert_eq!(
            svg.matches("<path class=\"arrow\"").count(),
            5,
            "four arrows and the start's"
        );
    }

    #[test]
    fn states_are_ranked_from_the_initial_one_down() {
        let layout = DOOR.layout();
        let [closed, open, broken] = [0, 1, 2].map(|s| layout.boxes[s]);
        assert!(
            closed.bottom() < open.y && open.bottom() < broken.y,
            "{:?}",
            layout.boxes
        );
        assert_eq!((closed.w, closed.h), (BOX_W, BOX_H));
        assert_eq!(closed.x, open.x, "one per row, centred");
        // The back arrow Open → Closed runs right of them, inside the drawing.
        let svg = DOOR.to_svg_counted(&[0, 0, 0]);
        let width: i64 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|w| w.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        assert!(width >= open.right() + BULGE, "{width}");
    }

    #[test]
    fn children_are_drawn_inside_their_parents() {
        let layout = JOB.layout();
        let b = &layout.boxes;
        for (s, state) in JOB.states.iter().enumerate() {
            if let Some(parent) = state.parent {
                assert!(inside(b[s], b[parent]), "{} {:?} in {:?}", state.name, b[s], b[parent]);
            }
            for other in s + 1..JOB.states.len() {
                if JOB.states[other].parent == state.parent {
                    assert!(
                        apart(b[s], b[other]),
                        "{} and {} overlap",
                        state.name,
                        JOB.states[other].name
                    );
                }
            }
        }
        // The parallel state's regions side by side, the history above the default it leads to.
        assert_eq!(b[3].y, b[5].y);
        assert!(b[1].bottom() < b[2].y || b[2].bottom() < b[1].y);
        let svg = JOB.to_svg_counted(&[3, 0, 3, 2, 2, 1, 1, 0]);
        assert!(group(&svg, "Work").starts_with("<g class=\"state container parallel heat-5\""));
        assert!(group(&svg, "H").contains(">H (H*)</text>"));
        assert!(group(&svg, "Job").contains("text-anchor=\"end\">3</text>"));
        // A compound's default child follows it in the plain workflow too.
        let plain = PLAIN_CHILD.layout();
        assert!(plain.boxes[1].bottom() < plain.boxes[2].y);
        assert!(inside(plain.boxes[2], plain.boxes[0]));
        assert!(plain.boxes[0].bottom() < plain.boxes[3].y);
    }

    static ODD: Graph<'static> = Graph {
        name: "Odd<&>",
        initial: 0,
        states: &[
            state("A<b>&\"c'", StateKind::Atomic, None, 1, [0, 1]),
            state("AVeryLongStateNameThatDoesNotFit", StateKind::Atomic, None, 2, [1, 1]),
        ],
        events: &[],
        transitions: &[TransitionInfo {
            source: 0,
            trigger: Trigger::Always,
            guard: Some("x<y"),
            in_states: &[],
            not_in_states: &[],
            targets: &[1],
            internal: false,
            actions: &[],
        }],
    };

    #[test]
    fn names_are_escaped_and_cut_short() {
        let svg = ODD.to_svg();
        assert!(svg.contains("data-state=\"A&lt;b&gt;&amp;&quot;c&#39;\""), "{svg}");
        assert!(svg.contains(">A&lt;b&gt;&amp;&quot;c&#39;</text>"), "{svg}");
        assert!(svg.contains(
            "<title>A&lt;b&gt;&amp;&quot;c&#39; → AVeryLongStateNameThatDoesNotFit: always [x&lt;y]</title>"
        ));
        assert!(svg.contains("Odd&lt;&amp;&gt;: states"));
        assert!(
            svg.contains("<desc id=\"wf-desc\">2 states and 1 transition, from"),
            "{svg}"
        );
        assert!(!svg.contains("<b>") && !svg.contains("x<y") && !svg.contains("Odd<"));
        assert!(svg.contains(">AVeryLongStateName…</text>"), "{svg}");
        assert!(svg.contains("<title>AVeryLongStateNameThatDoesNotFit</title>"));
        // Without counts: no count, no heat.
        assert!(!svg.contains("data-count") && !svg.contains(" heat-"));
    }

    #[test]
    fn the_drawing_is_deterministic() {
        for graph in [&DOOR, &JOB, &PLAIN_CHILD, &ODD] {
            let counts: Vec<u64> = (0..graph.states.len() as u64).collect();
            assert_eq!(graph.to_svg_counted(&counts), graph.to_svg_counted(&counts));
            assert_eq!(graph.to_svg(), graph.to_svg());
        }
    }

    #[test]
    fn heat_rises_with_the_count() {
        assert_eq!(count_heat(0, 0), 0);
        assert_eq!(count_heat(3, 0), 5);
        let levels: Vec<u64> = (0..=8).map(|n| count_heat(n, 8)).collect();
        assert_eq!(levels, [0, 1, 2, 2, 3, 3, 4, 4, 5]);
    }
}
