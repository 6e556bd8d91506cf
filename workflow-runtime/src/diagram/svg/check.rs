//! Geometric checks of a drawing [`Graph::to_svg`](crate::Graph::to_svg) made, read back from the
//! SVG text alone: the tests of the drawing and the test that draws every workflow of the
//! repository (`conformance/tests/diagrams.rs`, which includes this file) share it.
//!
//! What a drawing must be: no arrow through a box that is neither its source, its target, nor
//! an ancestor of either; each arrow from its source's border to its target's; no label over
//! another label or over a box that is not an ancestor of its arrow's ends; everything inside
//! the view box.

/// A rectangle by its left, top, right and bottom.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Area {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Area {
    fn contains(&self, other: &Area) -> bool {
        self != other && self.x0 <= other.x0 && self.y0 <= other.y0 && other.x1 <= self.x1 && other.y1 <= self.y1
    }

    /// Whether the interiors meet.
    fn overlaps(&self, other: &Area) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }

    /// Whether the segment `a`–`b` passes through the interior (Liang–Barsky, on the area
    /// shrunk by half a pixel so that running along a border is not crossing it).
    fn cut_by(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let (x0, y0, x1, y1) = (self.x0 + 0.5, self.y0 + 0.5, self.x1 - 0.5, self.y1 - 0.5);
        if x0 >= x1 || y0 >= y1 {
            return false;
        }
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
        for (p, q) in [(-dx, a.0 - x0), (dx, x1 - a.0), (-dy, a.1 - y0), (dy, y1 - a.1)] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        t0 < t1
    }

    /// Whether `p` lies on the border, give or take a pixel.
    fn on_border(&self, p: (f64, f64)) -> bool {
        let near = |v: f64, w: f64| (v - w).abs() <= 1.0;
        let within_x = p.0 >= self.x0 - 1.0 && p.0 <= self.x1 + 1.0;
        let within_y = p.1 >= self.y0 - 1.0 && p.1 <= self.y1 + 1.0;
        (within_x && (near(p.1, self.y0) || near(p.1, self.y1)))
            || (within_y && (near(p.0, self.x0) || near(p.0, self.x1)))
    }
}

/// A drawn state: its name and box.
struct Drawn {
    name: String,
    area: Area,
}

/// A drawn arrow: its ends' names, its points (curves flattened), its label's box if it has one.
struct Arrow {
    title: String,
    source: String,
    target: String,
    points: Vec<(f64, f64)>,
    label: Option<Area>,
}

/// What is wrong with the drawing `svg`, one line each; empty when nothing is.
pub fn faults(svg: &str) -> Vec<String> {
    let mut faults = Vec::new();
    let Some(view) = view_box(svg) else {
        return vec!["no view box".to_string()];
    };
    let states = states(svg);
    let arrows = arrows(svg);
    let index = |name: &str| states.iter().position(|s| s.name == name);
    // The ancestors of a state, and it: the boxes that hold its box.
    let around = |s: usize| -> Vec<usize> {
        (0..states.len())
            .filter(|&o| o == s || states[o].area.contains(&states[s].area))
            .collect()
    };
    for s in &states {
        if !view.contains(&s.area) {
            faults.push(format!("the box of {} is outside the view box", s.name));
        }
    }
    for (i, arrow) in arrows.iter().enumerate() {
        let (Some(source), Some(target)) = (index(&arrow.source), index(&arrow.target)) else {
            faults.push(format!("{}: an end is not drawn", arrow.title));
            continue;
        };
        let mut allowed = around(source);
        allowed.extend(around(target));
        match (arrow.points.first(), arrow.points.last()) {
            (Some(&first), Some(&last)) => {
                if !states[source].area.on_border(first) {
                    faults.push(format!("{}: starts at {first:?}, off its source's border", arrow.title));
                }
                if !states[target].area.on_border(last) {
                    faults.push(format!("{}: ends at {last:?}, off its target's border", arrow.title));
                }
            }
            _ => faults.push(format!("{}: no path", arrow.title)),
        }
        for pair in arrow.points.windows(2) {
            if let Some(o) =
                (0..states.len()).find(|&o| !allowed.contains(&o) && states[o].area.cut_by(pair[0], pair[1]))
            {
                faults.push(format!(
                    "{}: the segment {:?}–{:?} crosses the box of {}",
                    arrow.title, pair[0], pair[1], states[o].name
                ));
                break;
            }
        }
        if arrow
            .points
            .iter()
            .any(|&(x, y)| x < view.x0 || y < view.y0 || x > view.x1 || y > view.y1)
        {
            faults.push(format!("{}: leaves the view box", arrow.title));
        }
        let Some(label) = arrow.label else { continue };
        if !view.contains(&label) {
            faults.push(format!("{}: its label {label:?} is outside the view box", arrow.title));
        }
        // Not over its own ends either: only their ancestors may hold it.
        let holder = |o: usize| {
            [source, target]
                .iter()
                .any(|&e| states[o].area.contains(&states[e].area))
        };
        if let Some(o) = (0..states.len()).find(|&o| !holder(o) && states[o].area.overlaps(&label)) {
            faults.push(format!(
                "{}: its label {label:?} covers the box of {}",
                arrow.title, states[o].name
            ));
        }
        for other in &arrows[i + 1..] {
            if other.label.is_some_and(|l| l.overlaps(&label)) {
                faults.push(format!(
                    "{}: its label {label:?} meets the label of {}",
                    arrow.title, other.title
                ));
            }
        }
    }
    faults
}

fn view_box(svg: &str) -> Option<Area> {
    let at = svg.find("viewBox=\"")? + "viewBox=\"".len();
    let numbers: Vec<f64> = svg[at..at + svg[at..].find('"')?]
        .split(' ')
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [x, y, w, h] => Some(Area {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }),
        _ => None,
    }
}

/// The number in attribute `name` of the element starting `tag`.
fn attr(tag: &str, name: &str) -> f64 {
    let key = format!(" {name}=\"");
    let end = tag.find('>').unwrap_or(tag.len());
    tag[..end]
        .find(&key)
        .and_then(|at| {
            let from = at + key.len();
            tag[from..].find('"').and_then(|len| tag[from..from + len].parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn rect(tag: &str) -> Area {
    let (x, y) = (attr(tag, "x"), attr(tag, "y"));
    Area {
        x0: x,
        y0: y,
        x1: x + attr(tag, "width"),
        y1: y + attr(tag, "height"),
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Each group of class `class` (its markup up to its `</g>`).
fn groups<'s>(svg: &'s str, class: &str) -> Vec<&'s str> {
    let start = format!("<g class=\"{class}");
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find(&start) {
        let group = &rest[at..];
        let end = group.find("</g>").unwrap_or(group.len());
        out.push(&group[..end]);
        rest = &group[end..];
    }
    out
}

fn states(svg: &str) -> Vec<Drawn> {
    groups(svg, "state")
        .into_iter()
        .map(|g| {
            let name = g
                .split("data-state=\"")
                .nth(1)
                .and_then(|n| n.split('"').next())
                .unwrap_or("");
            let at = g.find("<rect class=\"box\"").unwrap_or(0);
            Drawn {
                name: unescape(name),
                area: rect(&g[at..]),
            }
        })
        .collect()
}

fn arrows(svg: &str) -> Vec<Arrow> {
    groups(svg, "edge")
        .into_iter()
        .map(|g| {
            let title = g
                .split("<title>")
                .nth(1)
                .and_then(|t| t.split("</title>").next())
                .unwrap_or("");
            let title = unescape(title);
            let (source, rest) = title.split_once(" → ").unwrap_or(("", ""));
            let target = rest.split_once(": ").map_or(rest, |(t, _)| t);
            let d = g.split(" d=\"").nth(1).and_then(|d| d.split('"').next()).unwrap_or("");
            let label = g.find("<rect class=\"label-box\"").map(|at| rect(&g[at..]));
            Arrow {
                source: source.to_string(),
                target: target.to_string(),
                points: flatten(d),
                label,
                title,
            }
        })
        .collect()
}

/// The points of path data `d` (absolute `M`, `L`, `Q`, `C`), curves flattened.
fn flatten(d: &str) -> Vec<(f64, f64)> {
    let mut tokens: Vec<String> = Vec::new();
    for c in d.chars() {
        if c.is_ascii_alphabetic() {
            tokens.push(c.to_string());
            tokens.push(String::new());
        } else if c == ',' || c == ' ' {
            tokens.push(String::new());
        } else if let Some(last) = tokens.last_mut() {
            last.push(c);
        }
    }
    tokens.retain(|t| !t.is_empty());
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    let mut command = ' ';
    let number = |i: usize| tokens.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::NAN);
    while i < tokens.len() {
        if let Some(c) = tokens[i].chars().next().filter(char::is_ascii_alphabetic) {
            command = c;
            i += 1;
            continue;
        }
        let at = points.last().copied().unwrap_or((0.0, 0.0));
        let arity = match command {
            'M' | 'L' => 2,
            'Q' => 4,
            'C' => 6,
            _ => return vec![(f64::NAN, f64::NAN)],
        };
        let n: Vec<f64> = (i..i + arity).map(number).collect();
        i += arity;
        let steps = 16;
        match command {
            'M' | 'L' => points.push((n[0], n[1])),
            'Q' => points.extend((1..=steps).map(|k| {
                let t = k as f64 / steps as f64;
                let u = 1.0 - t;
                (
                    u * u * at.0 + 2.0 * u * t * n[0] + t * t * n[2],
                    u * u * at.1 + 2.0 * u * t * n[1] + t * t * n[3],
                )
            })),
            _ => points.extend((1..=steps).map(|k| {
                let t = k as f64 / steps as f64;
                let u = 1.0 - t;
                let (a, b, c, e) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                (
                    a * at.0 + b * n[0] + c * n[2] + e * n[4],
                    a * at.1 + b * n[1] + c * n[3] + e * n[5],
                )
            })),
        }
    }
    points
}
