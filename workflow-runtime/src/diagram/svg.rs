//! An SVG drawing of a [`Graph`]: boxes for states, arrows for transitions, a count in each box.
//!
//! The layout is layered and deterministic: within each container (the workflow, a compound or
//! a parallel state) the children are ranked by breadth-first distance from the container's
//! initial child, one row per rank, top to bottom; a compound or parallel state is a box holding
//! its children's rows (a parallel state's regions side by side), neighbours in a row far enough
//! apart for the labels of the arrows between them. Each arrow is then routed (module `route`)
//! as horizontal and vertical segments around every box that is neither its source, its target
//! nor an ancestor of either, crossing an ancestor's border but not its name; arrows between the
//! same two states the same way share one path, and a transition that stays in its state is a
//! loop on the box's side. Each label (the trigger) goes on or beside its arrow, clear of the
//! boxes and of the other labels; when one finds no room, the gaps widen and the drawing starts
//! again. Text is not measured: boxes have one size, a name longer than a box holds is cut short
//! (the whole name is in the box's `<title>`), and a label's box is sized from a generous width
//! per character.

mod route;

#[cfg(test)]
mod check;

use std::fmt::{self, Write};

use crate::graph::{Graph, StateKind, Trigger};
use route::{Dir, Port, Router, STUB};

const BOX_W: i64 = 156;
const BOX_H: i64 = 52;
const GAP_X: i64 = 40;
const GAP_Y: i64 = 64;
/// How much the gaps widen each time the labels do not all find room, and how many times.
const WIDEN: i64 = 24;
const WIDENINGS: i64 = 4;
/// Padding inside a container's box, and the height of its name line.
const PAD: i64 = 14;
const HEAD: i64 = 28;
const MARGIN: i64 = 16;
/// Room above the initial state for the start dot.
const START: i64 = 30;
/// Characters of a name, and of an edge's label, drawn before the text is cut short.
const NAME_CHARS: usize = 19;
const LABEL_CHARS: usize = 22;
/// The height of a label's box, and the room each side of its text.
const LABEL_H: i64 = 16;
const LABEL_PAD: i64 = 4;

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

/// A point, and a segment from one to another.
type Point = (i64, i64);
type Segment = (Point, Point);

/// A container's name as its box's first line shows it: cut to the box's width.
fn head_name(name: &str, b: Rect) -> String {
    cut(name, (b.w / 8).max(4) as usize)
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
    fn mid_x(&self) -> i64 {
        self.x + self.w / 2
    }
    fn mid_y(&self) -> i64 {
        self.y + self.h / 2
    }
    /// The box grown by `by` on every side.
    fn grow(&self, by: i64) -> Rect {
        Rect {
            x: self.x - by,
            y: self.y - by,
            w: self.w + 2 * by,
            h: self.h + 2 * by,
        }
    }
    /// Whether the interiors meet.
    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right() && other.x < self.right() && self.y < other.bottom() && other.y < self.bottom()
    }
    /// Whether `p` is inside, not on the border.
    fn surrounds(&self, (x, y): (i64, i64)) -> bool {
        x > self.x && x < self.right() && y > self.y && y < self.bottom()
    }
    /// Whether the horizontal or vertical segment `a`–`b` passes through the interior.
    fn cut_by(&self, a: (i64, i64), b: (i64, i64)) -> bool {
        let (x0, x1) = (a.0.min(b.0), a.0.max(b.0));
        let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
        x0 < self.right() && x1 > self.x && y0 < self.bottom() && y1 > self.y
    }
}

/// Where every state is drawn.
struct Layout {
    boxes: Vec<Rect>,
    /// The gaps between boxes side by side, and between rows, at least.
    gap: (i64, i64),
    /// Each arrow's ends and the width of its label's box.
    labels: Vec<(usize, usize, i64)>,
    /// Per container (`None`: the workflow, then each state), its children's rows.
    rows: Vec<Vec<Vec<usize>>>,
    width: i64,
    height: i64,
}

/// One drawn transition (one per target): its ends, its text, its path and its label's box.
struct Arrow {
    source: usize,
    /// `None` for a transition without targets, drawn as a loop on its source.
    target: Option<usize>,
    /// The trigger, drawn; the whole label, in the arrow's title.
    short: String,
    full: String,
    points: Vec<(i64, i64)>,
    label: Option<Rect>,
}

/// Everything drawn, and the drawing's size.
struct Drawing {
    layout: Layout,
    arrows: Vec<Arrow>,
    width: i64,
    height: i64,
}

/// A generous width of `text` in 11 px sans-serif (the labels' font), from rough widths of
/// narrow, common and wide characters: so that a label's box holds its text in the fonts the
/// drawing names.
fn text_width(text: &str) -> i64 {
    let tenths: i64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | 'I' | '!' | '.' | ',' | ':' | ';' | '|' | '\'' => 35,
            'f' | 't' | 'r' | ' ' | '(' | ')' | '[' | ']' | '/' | '-' => 45,
            'm' | 'w' | 'M' | 'W' => 100,
            'A'..='Z' | '_' | '&' | '%' | '@' => 80,
            c if c.is_ascii() => 68,
            _ => 110,
        })
        .sum();
    (tenths + 9) / 10
}

/// The width of the box of the label drawn for an arrow with trigger `short` (0: none).
fn label_width(short: &str) -> i64 {
    let text = cut(short, LABEL_CHARS);
    if text.is_empty() {
        0
    } else {
        text_width(&text) + 2 * LABEL_PAD
    }
}

/// The box of a label of `size` (width, height) for the arrow through `points`: on the arrow or
/// beside it, as near its middle as leaves it clear of `keep_off` (and of the drawing's top and
/// left edges), crossing as few `others` (other arrows' segments) as it can; and whether it is
/// clear.
fn place_label(points: &[(i64, i64)], (width, h): (i64, i64), keep_off: &[Rect], others: &[Segment]) -> (Rect, bool) {
    let length: i64 = points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).abs() + (w[1].1 - w[0].1).abs())
        .sum();
    // The point halfway along the path.
    let mut middle = points.first().copied().unwrap_or((0, 0));
    let mut to_go = length / 2;
    for w in points.windows(2) {
        let d = (w[1].0 - w[0].0).abs() + (w[1].1 - w[0].1).abs();
        if to_go <= d {
            let (sx, sy) = ((w[1].0 - w[0].0).signum(), (w[1].1 - w[0].1).signum());
            middle = (w[0].0 + sx * to_go, w[0].1 + sy * to_go);
            break;
        }
        to_go -= d;
    }
    // Every place to try, (how far from the middle it is, the place, beside the line, the
    // segment it is on), nearest first.
    let mut places: Vec<(i64, (i64, i64), bool, usize)> = Vec::new();
    for (k, w) in points.windows(2).enumerate() {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let (lo, hi) = if x0 == x1 {
            (y0.min(y1), y0.max(y1))
        } else {
            (x0.min(x1), x0.max(x1))
        };
        // Along the segment, 4 px at a time: centred on it where it is long enough (some of it
        // showing either side), beside it (either side) anywhere along it or half past its ends.
        let along = if x0 == x1 { h } else { width };
        let mut at = lo - along / 2;
        while at <= hi + along / 2 {
            let on = at - along / 2 - 8 >= lo && at + along / 2 + 8 <= hi;
            let (on_it, beside) = if x0 == x1 {
                ((x0, at), [(x0 + width / 2 + 4, at), (x0 - width / 2 - 4, at)])
            } else {
                ((at, y0), [(at, y0 - h / 2 - 3), (at, y0 + h / 2 + 3)])
            };
            let away = |c: (i64, i64)| (c.0 - middle.0).abs() + (c.1 - middle.1).abs();
            if on {
                places.push((away(on_it), on_it, false, k));
            }
            for centre in beside {
                places.push((away(centre) + 10, centre, true, k));
            }
            at += 4;
        }
    }
    places.sort_unstable();
    // The clear place with the lowest score (its distance plus what it crosses), or the lowest
    // of all if none is clear; a place whose distance alone is more than a clear one's score
    // cannot beat it.
    let mut best: Option<(bool, i64, Rect)> = None;
    for (away, centre, _, carrier) in places {
        if best.is_some_and(|(clear, score, _)| clear && away >= score) {
            break;
        }
        let r = Rect {
            x: centre.0 - width / 2,
            y: centre.1 - h / 2,
            w: width,
            h,
        };
        let clear = r.x >= 2 && r.y >= 2 && !keep_off.iter().any(|k| k.overlaps(&r));
        if !clear && best.is_some_and(|(clear, _, _)| clear) {
            continue;
        }
        let crossings = others.iter().filter(|&&(a, b)| r.cut_by(a, b)).count() as i64;
        // Another arrow close by makes it unclear which arrow the label names.
        let near = others.iter().filter(|&&(a, b)| r.grow(8).cut_by(a, b)).count() as i64;
        let own = points
            .windows(2)
            .enumerate()
            .filter(|&(k, w)| k != carrier && r.cut_by(w[0], w[1]))
            .count() as i64;
        let score = away + 60 * (crossings + own) + 20 * near;
        if best.is_none_or(|(c, s, _)| (clear, -score) > (c, -s)) {
            best = Some((clear, score, r));
        }
    }
    match best {
        Some((clear, _, r)) => (r, clear),
        None => (Rect::default(), false),
    }
}

/// SVG path data for `points`, the corners rounded.
fn path_data(points: &[(i64, i64)]) -> String {
    const RADIUS: i64 = 8;
    let mut d = String::new();
    let distance = |a: (i64, i64), b: (i64, i64)| (a.0 - b.0).abs() + (a.1 - b.1).abs();
    let toward = |from: (i64, i64), to: (i64, i64), by: i64| {
        (
            from.0 + (to.0 - from.0).signum() * by,
            from.1 + (to.1 - from.1).signum() * by,
        )
    };
    for (k, &p) in points.iter().enumerate() {
        if k == 0 {
            let _ = write!(d, "M{},{}", p.0, p.1);
        } else if k + 1 == points.len() {
            let _ = write!(d, "L{},{}", p.0, p.1);
        } else {
            let (a, c) = (points[k - 1], points[k + 1]);
            let r = RADIUS.min(distance(a, p) / 2).min(distance(p, c) / 2);
            let (before, after) = (toward(p, a, r), toward(p, c, r));
            let _ = write!(d, "L{},{}Q{},{} {},{}", before.0, before.1, p.0, p.1, after.0, after.1);
        }
    }
    d
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
        let Drawing {
            layout,
            arrows,
            width,
            height,
        } = self.drawing();
        let count = |s: usize| counts.map(|c| c.get(s).copied().unwrap_or(0));
        let max = counts.map_or(0, |c| c.iter().copied().max().unwrap_or(0));

        // The boxes, outermost first, then the arrows over them.
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
        for arrow in &arrows {
            self.svg_arrow(arrow, &mut out);
        }
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
                Escaped(&head_name(&name, b))
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

    /// One arrow per target of each transition (a loop for one without targets), in the
    /// transitions' order, not yet routed.
    fn arrows(&self) -> Vec<Arrow> {
        let mut arrows = Vec::new();
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
            let targets = t.targets.iter().map(|&target| Some(target));
            let targets: Vec<Option<usize>> = if t.targets.is_empty() {
                vec![None]
            } else {
                targets.collect()
            };
            for target in targets {
                arrows.push(Arrow {
                    source: t.source,
                    target,
                    short: short.clone(),
                    full: full.clone(),
                    points: Vec::new(),
                    label: None,
                });
            }
        }
        arrows
    }

    /// The layout with its arrows routed and labelled: the first whose labels all find room,
    /// widening the gaps between boxes until they do (or giving up after [`WIDENINGS`]).
    fn drawing(&self) -> Drawing {
        let mut arrows = self.arrows();
        let mut widen = 0;
        loop {
            let layout = self.layout(widen * WIDEN);
            let misfits = self.route(&layout, &mut arrows);
            if misfits == 0 || widen == WIDENINGS {
                let mut width = layout.width;
                let mut height = layout.height;
                for arrow in &arrows {
                    for &(x, y) in &arrow.points {
                        width = width.max(x + MARGIN);
                        height = height.max(y + MARGIN);
                    }
                    if let Some(label) = arrow.label {
                        width = width.max(label.right() + MARGIN);
                        height = height.max(label.bottom() + MARGIN);
                    }
                }
                return Drawing {
                    layout,
                    arrows,
                    width,
                    height,
                };
            }
            widen += 1;
        }
    }

    /// Whether `a` is a proper ancestor of `x`.
    fn holds(&self, a: usize, x: usize) -> bool {
        a < x && x < self.states[a].end
    }

    /// Where a container's name and count are written, which arrows and labels keep off.
    fn header(&self, s: usize, b: Rect) -> [Rect; 2] {
        let name = head_name(self.states[s].name, b);
        [
            Rect {
                x: b.x + 6,
                y: b.y + 4,
                w: text_width(&name) * 13 / 10 + 8,
                h: HEAD - 8,
            },
            Rect {
                x: b.right() - 40,
                y: b.y + 4,
                w: 34,
                h: HEAD - 8,
            },
        ]
    }

    /// The start dot and its arrow, above the initial state.
    fn start_mark(&self, layout: &Layout) -> Option<Rect> {
        layout.boxes.get(self.initial).map(|b| Rect {
            x: b.mid_x() - 8,
            y: b.y - START + 1,
            w: 16,
            h: START - 1,
        })
    }

    /// What an arrow from `s` to `t` must keep off: every box but theirs and their ancestors'
    /// (their own too when it does not hold the other end), the ancestors' headers, the start;
    /// and the ancestors' boxes, whose borders it crosses rather than runs along.
    fn obstacles(&self, layout: &Layout, s: usize, t: usize) -> (Vec<Rect>, Vec<Rect>) {
        let b = &layout.boxes;
        let mut out: Vec<Rect> = self.start_mark(layout).into_iter().collect();
        let mut crossed = Vec::new();
        // Whether a state's whole box is an obstacle: its descendants need no check of their own.
        let mut whole = vec![false; b.len()];
        for o in 0..b.len() {
            if self.states[o].parent.is_some_and(|p| whole[p]) {
                continue;
            }
            if self.holds(o, s) || self.holds(o, t) {
                out.extend(self.header(o, b[o]));
                crossed.push(b[o]);
            } else {
                whole[o] = true;
                out.push(b[o]);
            }
        }
        (out, crossed)
    }

    /// The ports of state `x`'s box for an arrow whose other end is `other`: points spread along
    /// each side (a container's sides below its header), leaving the box, or going into it when
    /// it holds `other`. The middle of a side costs least; a port an arrow already uses, more.
    /// A loop (`other` is `x`) reaches further out, from a left or right side, the right
    /// preferably.
    fn ports(&self, layout: &Layout, x: usize, other: usize, used: &[(i64, i64)]) -> Vec<Port> {
        let r = layout.boxes[x];
        let inward = self.holds(x, other);
        let looped = x == other;
        let top = if is_container(self.states[x].kind) {
            r.y + HEAD
        } else {
            r.y
        };
        let mut out = Vec::new();
        let mut add = |at: (i64, i64), dir: Dir, off_centre: i64| {
            let mut cost = 2 * off_centre + if used.contains(&at) { 60 } else { 0 };
            if looped && dir != Dir::Right {
                cost += 40;
            }
            out.push(Port {
                at,
                dir: if inward { dir.back() } else { dir },
                reach: if looped { 2 * STUB } else { STUB },
                cost,
            });
        };
        // An odd number a side, so that one is in the middle.
        let across = ((r.w / 26) | 1).clamp(3, 9);
        for k in (1..=across).filter(|_| !looped) {
            let x = r.x + r.w * k / (across + 1);
            let off = (2 * k - across - 1).abs() / 2;
            add((x, r.y), Dir::Up, off);
            add((x, r.bottom()), Dir::Down, off);
        }
        let side = r.bottom() - top;
        // A loop's two ends a good way apart, a quarter from either end of a side.
        let down = if looped { 3 } else { ((side / 18) | 1).clamp(1, 7) };
        for k in (1..=down).filter(|&k| !looped || k != 2) {
            let y = top + side * k / (down + 1);
            let off = (2 * k - down - 1).abs() / 2;
            add((r.x, y), Dir::Left, off);
            add((r.right(), y), Dir::Right, off);
        }
        out
    }

    /// Routes every arrow over `layout` and places its label; gives how many labels found no
    /// room (and arrows no way) and were put where they overlap something. Arrows between the
    /// same two states the same way (and loops on the same state) share one path, their labels
    /// stacked in one column beside it.
    fn route(&self, layout: &Layout, arrows: &mut [Arrow]) -> usize {
        let b = &layout.boxes;
        let ends = |a: &Arrow| (a.source, a.target.unwrap_or(a.source));
        let mut bundles: Vec<Vec<usize>> = Vec::new();
        for (i, arrow) in arrows.iter().enumerate() {
            match bundles
                .iter_mut()
                .find(|bundle| ends(&arrows[bundle[0]]) == ends(arrow))
            {
                Some(bundle) => bundle.push(i),
                None => bundles.push(vec![i]),
            }
        }
        let mut router = Router::default();
        let mut used: Vec<(i64, i64)> = Vec::new();
        let mut misfits = 0;
        // The shortest first: they get the straightest ways.
        bundles.sort_by_key(|bundle| {
            let (s, t) = ends(&arrows[bundle[0]]);
            (
                (b[s].mid_x() - b[t].mid_x()).abs() + (b[s].mid_y() - b[t].mid_y()).abs(),
                bundle[0],
            )
        });
        for bundle in &bundles {
            let (s, t) = ends(&arrows[bundle[0]]);
            let from = self.ports(layout, s, t, &used);
            let to = self.ports(layout, t, s, &used);
            let (obstacles, crossed) = self.obstacles(layout, s, t);
            let points = match router.route(&obstacles, &crossed, &from, &to) {
                Some(points) => points,
                None => {
                    // No way round: straight across, counted as a misfit for a wider layout.
                    misfits += 1;
                    vec![
                        (b[s].mid_x(), b[s].bottom()),
                        (b[s].mid_x(), b[t].y),
                        (b[t].mid_x(), b[t].y),
                    ]
                }
            };
            used.extend(points.first().into_iter().chain(points.last()));
            for &i in bundle {
                arrows[i].points.clone_from(&points);
            }
        }
        let start = self.start_mark(layout);
        // The widest first: the narrower fit round them.
        let widths: Vec<i64> = arrows.iter().map(|a| label_width(&a.short)).collect();
        let width = |bundle: &[usize]| bundle.iter().map(|&i| widths[i]).max().unwrap_or(0);
        bundles.sort_by_key(|bundle| (-width(bundle), bundle[0]));
        let mut placed: Vec<Rect> = Vec::new();
        for bundle in &bundles {
            let (s, t) = ends(&arrows[bundle[0]]);
            let labelled: Vec<usize> = bundle.iter().copied().filter(|&i| widths[i] > 0).collect();
            if labelled.is_empty() {
                continue;
            }
            // What the labels must not cover: the boxes but their ends' ancestors (their headers
            // included), the start, the labels placed before them.
            let mut keep_off: Vec<Rect> = start.into_iter().collect();
            for (o, r) in b.iter().enumerate() {
                if self.holds(o, s) || self.holds(o, t) {
                    keep_off.extend(self.header(o, *r));
                } else {
                    keep_off.push(*r);
                }
            }
            keep_off.extend(placed.iter().map(|l| l.grow(2)));
            let others: Vec<Segment> = bundles
                .iter()
                .filter(|other| other[0] != bundle[0])
                .flat_map(|other| arrows[other[0]].points.windows(2).map(|w| (w[0], w[1])))
                .collect();
            let size = (width(bundle), LABEL_H * labelled.len() as i64);
            let (column, fits) = place_label(&arrows[bundle[0]].points, size, &keep_off, &others);
            misfits += usize::from(!fits);
            for (k, &i) in labelled.iter().enumerate() {
                let w = widths[i];
                let label = Rect {
                    x: column.mid_x() - w / 2,
                    y: column.y + LABEL_H * k as i64,
                    w,
                    h: LABEL_H,
                };
                arrows[i].label = Some(label);
                placed.push(label);
            }
        }
        misfits
    }

    fn svg_arrow(&self, arrow: &Arrow, out: &mut String) {
        let target = arrow.target.unwrap_or(arrow.source);
        let _ = write!(
            out,
            "<g class=\"edge\"><title>{}</title><path class=\"arrow\" d=\"{}\"/>",
            Escaped(&format!(
                "{} → {}: {}",
                self.states[arrow.source].name, self.states[target].name, arrow.full
            )),
            path_data(&arrow.points)
        );
        if let Some(l) = arrow.label {
            let _ = write!(
                out,
                "<rect class=\"label-box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\"/>\
                 <text class=\"label\" x=\"{}\" y=\"{}\">{}</text>",
                l.x,
                l.y,
                l.w,
                l.h,
                l.mid_x(),
                l.mid_y() + 4,
                Escaped(&cut(&arrow.short, LABEL_CHARS))
            );
        }
        out.push_str("</g>");
    }

    /// Ranks, sizes and places every state, the gaps between boxes `widen` wider than usual.
    fn layout(&self, widen: i64) -> Layout {
        let n = self.states.len();
        let mut layout = Layout {
            boxes: vec![Rect::default(); n],
            gap: (GAP_X + widen, GAP_Y + widen),
            labels: self
                .arrows()
                .iter()
                .map(|a| (a.source, a.target.unwrap_or(a.source), label_width(&a.short)))
                .collect(),
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
                row_w += w + if i > 0 {
                    self.gap(layout, container, row[i - 1], c)
                } else {
                    0
                };
                row_h = row_h.max(h);
            }
            width = width.max(row_w);
            height += row_h + if r > 0 { layout.gap.1 } else { 0 };
        }
        layout.rows[container.map_or(0, |c| c + 1)] = rows;
        (width, height)
    }

    /// The gap between `a` and `b`, neighbours in a row of `container` (`a` on the left): room
    /// for the labels of the arrows between them (or their descendants) side by side, and for
    /// the loops on `a`'s right with their labels; or the usual gap.
    fn gap(&self, layout: &Layout, container: Option<usize>, a: usize, b: usize) -> i64 {
        // The widest label of each bundle (the arrows between two states one way share a
        // column), and of the loops on `a`'s right.
        let mut bundles: Vec<((usize, usize), i64)> = Vec::new();
        let mut loops = 0;
        for &(s, t, w) in &layout.labels {
            match (self.lift(s, container), self.lift(t, container)) {
                (Some(x), Some(y)) if (x, y) == (a, b) || (x, y) == (b, a) => {
                    match bundles.iter_mut().find(|(ends, _)| *ends == (s, t)) {
                        Some((_, widest)) => *widest = (*widest).max(w),
                        None => bundles.push(((s, t), w)),
                    }
                }
                (Some(x), _) if s == t && x == a => loops = loops.max(w + 2 * STUB + 8),
                _ => {}
            }
        }
        let labels: i64 = bundles.iter().map(|(_, w)| w + 8).sum();
        layout.gap.0.max(labels + loops + 2 * MARGIN)
    }

    /// Places `container`'s content at `x`, `y` within `width`: each row centred.
    fn place(&self, container: Option<usize>, x: i64, mut y: i64, width: i64, layout: &mut Layout) {
        let rows = std::mem::take(&mut layout.rows[container.map_or(0, |c| c + 1)]);
        for row in &rows {
            let gaps: Vec<i64> = row
                .windows(2)
                .map(|p| self.gap(layout, container, p[0], p[1]))
                .collect();
            let row_w: i64 = row.iter().map(|&c| layout.boxes[c].w).sum::<i64>() + gaps.iter().sum::<i64>();
            let row_h = row.iter().map(|&c| layout.boxes[c].h).max().unwrap_or(0);
            let mut left = x + (width - row_w) / 2;
            for (i, &c) in row.iter().enumerate() {
                let b = &mut layout.boxes[c];
                b.x = left;
                b.y = y;
                let (w, inner) = (b.w, b.w - 2 * PAD);
                if is_container(self.states[c].kind) {
                    self.place(Some(c), left + PAD, y + HEAD, inner, layout);
                }
                left += w + gaps.get(i).copied().unwrap_or(0);
            }
            y += row_h + layout.gap.1;
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
.wf-diagram .label{font-size:11px;text-anchor:middle;fill:#1f2937}\
.wf-diagram .label-box{fill:#fff;fill-opacity:.92}\
.wf-diagram .edge:hover .arrow{stroke:#0b57d0;stroke-width:2.2}\
</style>";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::tests::{event, state, DOOR, JOB, PLAIN_CHILD};
    use crate::graph::EventKind;
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
        let layout = DOOR.layout(0);
        let [closed, open, broken] = [0, 1, 2].map(|s| layout.boxes[s]);
        assert!(
            closed.bottom() < open.y && open.bottom() < broken.y,
            "{:?}",
            layout.boxes
        );
        assert_eq!((closed.w, closed.h), (BOX_W, BOX_H));
        assert_eq!(closed.x, open.x, "one per row, centred");
        // Every arrow from its source's border to its target's, around the boxes.
        let svg = DOOR.to_svg_counted(&[0, 0, 0]);
        assert_eq!(check::faults(&svg), Vec::<String>::new(), "{svg}");
    }

    #[test]
    fn children_are_drawn_inside_their_parents() {
        let layout = JOB.layout(0);
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
        let plain = PLAIN_CHILD.layout(0);
        assert!(plain.boxes[1].bottom() < plain.boxes[2].y);
        assert!(inside(plain.boxes[2], plain.boxes[0]));
        assert!(plain.boxes[0].bottom() < plain.boxes[3].y);
    }

    const fn go(source: usize, event: &'static [usize], targets: &'static [usize]) -> TransitionInfo<'static> {
        TransitionInfo {
            source,
            trigger: Trigger::Events(event),
            guard: None,
            in_states: &[],
            not_in_states: &[],
            targets,
            internal: false,
            actions: &[],
        }
    }

    /// Work { A; B; C; D } with arrows out of it past its other children, into it from below,
    /// and a loop on a nested state: the weak spots of drawings with nested states.
    static NESTED: Graph<'static> = Graph {
        name: "Nested",
        initial: 0,
        states: &[
            state("Work", StateKind::Compound { initial: 1 }, None, 5, [0, 0]),
            state("A", StateKind::Atomic, Some(0), 2, [0, 4]),
            state("B", StateKind::Atomic, Some(0), 3, [4, 5]),
            state("C", StateKind::Atomic, Some(0), 4, [5, 6]),
            state("D", StateKind::Atomic, Some(0), 5, [6, 6]),
            state("Out", StateKind::Final { failure: true }, None, 6, [6, 6]),
            state("Side", StateKind::Atomic, None, 7, [6, 8]),
        ],
        events: &[],
        transitions: &[
            go(1, &[0], &[2]),
            go(1, &[1], &[3]),
            go(1, &[2], &[5]),
            go(1, &[3], &[]),
            go(2, &[4], &[4]),
            go(3, &[5], &[6]),
            go(6, &[6], &[1]),
            go(6, &[7], &[0]),
        ],
    };

    /// Two states with five transitions between them one way, two the other, and three loops.
    static MANY: Graph<'static> = Graph {
        name: "Many",
        initial: 0,
        states: &[
            state("Here", StateKind::Atomic, None, 1, [0, 5]),
            state("There", StateKind::Atomic, None, 2, [5, 10]),
        ],
        events: &[],
        transitions: &[
            go(0, &[0], &[1]),
            go(0, &[1], &[1]),
            go(0, &[2], &[1]),
            go(0, &[3], &[1]),
            go(0, &[4], &[1]),
            go(1, &[5], &[0]),
            go(1, &[6], &[0]),
            go(1, &[7], &[]),
            go(1, &[8], &[1]),
            go(1, &[9], &[]),
        ],
    };

    #[test]
    fn arrows_and_labels_keep_clear_of_boxes_and_each_other() {
        for graph in [&DOOR, &JOB, &PLAIN_CHILD, &ODD, &NESTED, &MANY, &WIDE] {
            let counts: Vec<u64> = (0..graph.states.len() as u64).collect();
            for svg in [graph.to_svg(), graph.to_svg_counted(&counts)] {
                assert_eq!(check::faults(&svg), Vec::<String>::new(), "{}: {svg}", graph.name);
            }
            // Nor over a container's name and count, nor over the start.
            let Drawing { layout, arrows, .. } = graph.drawing();
            let start = graph.start_mark(&layout);
            for arrow in &arrows {
                for (s, b) in layout.boxes.iter().enumerate() {
                    if !is_container(graph.states[s].kind) {
                        continue;
                    }
                    for header in graph.header(s, *b).iter().chain(start.iter()) {
                        let crossing = arrow.points.windows(2).any(|w| header.cut_by(w[0], w[1]));
                        assert!(!crossing, "{}: {:?} over {header:?}", graph.name, arrow.points);
                        assert!(!arrow.label.is_some_and(|l| l.overlaps(header)), "{}", graph.name);
                    }
                }
            }
        }
    }

    #[test]
    fn arrows_leave_nested_states_through_their_parents_side() {
        let Drawing { layout, arrows, .. } = NESTED.drawing();
        let b = &layout.boxes;
        // A → Out: from A, down past B, C and D or round them, out of Work, into Out.
        let out = arrows
            .iter()
            .find(|a| a.source == 1 && a.target == Some(5))
            .map(|a| &a.points);
        let out = out.expect("A → Out is drawn");
        assert!(
            b[1].cut_by(out[0], out[0]) || out[0].1 == b[1].bottom() || out[0].0 == b[1].x || out[0].0 == b[1].right()
        );
        for sibling in [2, 3, 4] {
            assert!(
                !out.windows(2).any(|w| b[sibling].cut_by(w[0], w[1])),
                "{out:?} through {:?}",
                b[sibling]
            );
        }
        assert_eq!(out.last().map(|p| p.1), Some(b[5].y), "into Out from above: {out:?}");
        // Each path is made of horizontal and vertical segments.
        for arrow in &arrows {
            assert!(
                arrow.points.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1),
                "{:?}",
                arrow.points
            );
        }
    }

    #[test]
    fn labels_between_the_same_states_are_stacked_apart() {
        let Drawing { arrows, .. } = MANY.drawing();
        let labels: Vec<Rect> = arrows.iter().filter_map(|a| a.label).collect();
        assert_eq!(labels.len(), 10);
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
        }
    }

    /// Top over Bottom with six long-labelled transitions between them: more labels than the
    /// usual gap between rows holds.
    static WIDE: Graph<'static> = Graph {
        name: "Wide",
        initial: 0,
        states: &[
            state("Top", StateKind::Atomic, None, 1, [0, 6]),
            state("Bottom", StateKind::Atomic, None, 2, [6, 6]),
        ],
        events: &[
            event("CustomerAskedForRefund", EventKind::Declared),
            event("WarehouseLostThePackage", EventKind::Declared),
            event("CarrierReturnedTheParcel", EventKind::Declared),
            event("PaymentProviderReversed", EventKind::Declared),
            event("FraudCheckFailedLater", EventKind::Declared),
            event("ManualReviewRejectedIt", EventKind::Declared),
        ],
        transitions: &[
            go(0, &[0], &[1]),
            go(0, &[1], &[1]),
            go(0, &[2], &[1]),
            go(0, &[3], &[1]),
            go(0, &[4], &[1]),
            go(0, &[5], &[1]),
        ],
    };

    #[test]
    fn gaps_widen_until_the_labels_fit() {
        let first = WIDE.layout(0);
        let mut arrows = WIDE.arrows();
        assert!(WIDE.route(&first, &mut arrows) > 0, "the usual gaps are too narrow");
        let drawing = WIDE.drawing();
        assert!(drawing.layout.gap.1 > GAP_Y, "{:?}", drawing.layout.gap);
        assert_eq!(check::faults(&WIDE.to_svg()), Vec::<String>::new());
    }

    #[test]
    fn the_check_finds_what_is_wrong() {
        // P holds A; B and C below it, D off to the right.
        let drawing = |arrows: &str| {
            let state = |name: &str, x: i64, y: i64, w: i64, h: i64| {
                format!("<g class=\"state\" data-state=\"{name}\"><rect class=\"box\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"/></g>")
            };
            format!(
                "<svg viewBox=\"0 0 300 300\">{}{}{}{}{}{arrows}</svg>",
                state("P", 0, 0, 140, 70),
                state("A", 10, 20, 100, 40),
                state("B", 10, 100, 100, 40),
                state("C", 10, 190, 100, 40),
                state("D", 180, 100, 100, 40)
            )
        };
        let arrow = |ends: &str, d: &str, label: &str| {
            format!("<g class=\"edge\"><title>{ends}: go</title><path class=\"arrow\" d=\"{d}\"/>{label}</g>")
        };
        let label = |x: i64, y: i64| {
            format!("<rect class=\"label-box\" x=\"{x}\" y=\"{y}\" width=\"30\" height=\"16\"/><text class=\"label\">go</text>")
        };
        let fine = arrow("A → B", "M60,60L60,100", &label(45, 72))
            + &arrow(
                "A → C",
                "M110,40L150,40Q160,40 160,50L160,210L110,210",
                &label(145, 150),
            );
        assert_eq!(check::faults(&drawing(&fine)), Vec::<String>::new());
        for (arrows, fault) in [
            (
                arrow("A → C", "M60,60L60,190", ""),
                "A → C: go: the segment (60.0, 60.0)–(60.0, 190.0) crosses the box of B",
            ),
            (
                arrow("B → C", "M60,140C260,80 260,250 60,190", ""),
                "B → C: go: the segment",
            ),
            (
                arrow("A → B", "M60,50L60,100", ""),
                "A → B: go: starts at (60.0, 50.0), off its source's border",
            ),
            (
                arrow("A → B", "M60,60L60,110", ""),
                "A → B: go: ends at (60.0, 110.0), off its target's border",
            ),
            (
                arrow("A → B", "M60,60L60,100", &label(20, 110)),
                "A → B: go: its label Area { x0: 20.0, y0: 110.0, x1: 50.0, y1: 126.0 } covers the box of B",
            ),
            (
                arrow("A → B", "M60,60L60,100", &label(45, 72)) + &arrow("B → C", "M60,140L60,190", &label(50, 80)),
                "A → B: go: its label Area { x0: 45.0, y0: 72.0, x1: 75.0, y1: 88.0 } meets the label of B → C: go",
            ),
            (
                arrow("B → D", "M110,120L140,120L140,310L230,310L230,140", ""),
                "B → D: go: leaves the view box",
            ),
            (arrow("B → X", "M110,120L250,120", ""), "B → X: go: an end is not drawn"),
        ] {
            let faults = check::faults(&drawing(&arrows));
            assert!(faults.iter().any(|f| f.starts_with(fault)), "{fault} in {faults:?}");
        }
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
