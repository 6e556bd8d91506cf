//! Orthogonal routing of a drawing's arrows: each arrow a path of horizontal and vertical
//! segments from a port on its source's border to one on its target's, around the boxes it must
//! not cross, found by a shortest-path search over the lines the boxes' sides define.
//!
//! A path's cost is its length, plus a fixed cost per bend, plus extra for running along or
//! across an arrow routed before it: so arrows take short, straight, separate courses. Every
//! choice breaks ties the same way, so a drawing is the same each time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Rect, Segment};

/// How far a path keeps from a box it goes around.
pub(super) const CLEAR: i64 = 7;
/// How far a path runs straight out of (or into) a port, at least.
pub(super) const STUB: i64 = 12;
/// The cost of a bend, in pixels of length.
const BEND: i64 = 28;
/// The extra cost per pixel of running along an earlier path, and of crossing one.
const ALONG: i64 = 3;
const ACROSS: i64 = 18;

/// A direction of travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    Right,
    Left,
    Down,
    Up,
}

impl Dir {
    const ALL: [Dir; 4] = [Dir::Right, Dir::Left, Dir::Down, Dir::Up];

    fn step(self) -> (i64, i64) {
        match self {
            Dir::Right => (1, 0),
            Dir::Left => (-1, 0),
            Dir::Down => (0, 1),
            Dir::Up => (0, -1),
        }
    }

    pub(super) fn back(self) -> Dir {
        match self {
            Dir::Right => Dir::Left,
            Dir::Left => Dir::Right,
            Dir::Down => Dir::Up,
            Dir::Up => Dir::Down,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where a path may meet a box: a point of its border, the direction the path leaves it in
/// (for a target: the direction it would leave in, the reverse of its arrival), how far it runs
/// straight that way, and what choosing it costs beyond the path's own length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Port {
    pub at: (i64, i64),
    pub dir: Dir,
    pub reach: i64,
    pub cost: i64,
}

impl Port {
    /// The end of the straight piece out of the port.
    fn stub(&self) -> (i64, i64) {
        let (dx, dy) = self.dir.step();
        (self.at.0 + dx * self.reach, self.at.1 + dy * self.reach)
    }
}

/// The paths routed so far, which later ones keep apart from.
#[derive(Default)]
pub(super) struct Router {
    drawn: Vec<Segment>,
}

/// The search's grid: the lines a path may run on, and what each step costs.
struct Grid {
    xs: Vec<i64>,
    ys: Vec<i64>,
    /// Per point: inside an obstacle.
    blocked: Vec<bool>,
    /// Per point and axis (0 horizontal, 1 vertical): the step from it to the next point along
    /// that axis crosses an obstacle / runs along an earlier path.
    wall: Vec<[bool; 2]>,
    along: Vec<[bool; 2]>,
    /// Per point: an earlier path passes through it.
    crossed: Vec<bool>,
    /// Per point and axis: the step runs along a border it should cross, not follow.
    hug: Vec<[bool; 2]>,
}

impl Grid {
    fn point(&self, i: usize, j: usize) -> usize {
        j * self.xs.len() + i
    }

    fn find(&self, (x, y): (i64, i64)) -> Option<(usize, usize)> {
        Some((self.xs.binary_search(&x).ok()?, self.ys.binary_search(&y).ok()?))
    }
}

/// Sorted, without repeats, with a line midway in every wide gap (the middle of a channel
/// between boxes).
fn lines(mut values: Vec<i64>) -> Vec<i64> {
    values.sort_unstable();
    values.dedup();
    let mut out = Vec::with_capacity(values.len() * 2);
    for pair in values.windows(2) {
        out.push(pair[0]);
        if pair[1] - pair[0] > 3 * CLEAR {
            out.push((pair[0] + pair[1]) / 2);
        }
    }
    out.extend(values.last());
    out
}

impl Router {
    /// The cheapest path from one of `from` to one of `to` that enters no `obstacles` (nor comes
    /// within [`CLEAR`] of one) and runs along none of the borders of `crossed` (boxes it may
    /// cross into), as its corner points from the source's port to the target's; `None` if there
    /// is none. The path is remembered, for the next ones to keep apart from.
    pub(super) fn route(
        &mut self,
        obstacles: &[Rect],
        crossed: &[Rect],
        from: &[Port],
        to: &[Port],
    ) -> Option<Vec<(i64, i64)>> {
        let walls: Vec<Rect> = obstacles.iter().map(|o| o.grow(CLEAR)).collect();
        // A port is usable when its straight piece ends clear of the walls and crosses none
        // but its own box's.
        let usable = |p: &&Port| {
            let (x, y) = p.stub();
            x >= CLEAR
                && y >= CLEAR
                && !walls
                    .iter()
                    .any(|w| w.surrounds((x, y)) || (!w.surrounds(p.at) && w.cut_by(p.at, (x, y))))
        };
        let from: Vec<Port> = from.iter().filter(usable).copied().collect();
        let to: Vec<Port> = to.iter().filter(usable).copied().collect();
        if from.is_empty() || to.is_empty() {
            return None;
        }
        let grid = self.grid(&walls, crossed, &from, &to);
        let path = search(&grid, &from, &to)?;
        for pair in path.windows(2) {
            self.drawn.push((pair[0], pair[1]));
        }
        Some(path)
    }

    fn grid(&self, walls: &[Rect], crossed: &[Rect], from: &[Port], to: &[Port]) -> Grid {
        let ends = from.iter().chain(to).map(Port::stub);
        let (mut xs, mut ys): (Vec<i64>, Vec<i64>) = ends.clone().unzip();
        for w in walls {
            xs.extend([w.x, w.right()]);
            ys.extend([w.y, w.bottom()]);
        }
        for &(a, b) in &self.drawn {
            xs.extend([a.0, b.0]);
            ys.extend([a.1, b.1]);
        }
        // Lines clear of the borders to cross, either side.
        for c in crossed {
            xs.extend([c.x - CLEAR, c.x + CLEAR, c.right() - CLEAR, c.right() + CLEAR]);
            ys.extend([c.y - CLEAR, c.y + CLEAR, c.bottom() - CLEAR, c.bottom() + CLEAR]);
        }
        // Room to go round everything, but not off the drawing's top or left.
        let (x_min, x_max) = (
            xs.iter().min().copied().unwrap_or(0),
            xs.iter().max().copied().unwrap_or(0),
        );
        let (y_min, y_max) = (
            ys.iter().min().copied().unwrap_or(0),
            ys.iter().max().copied().unwrap_or(0),
        );
        xs.extend([(x_min - 2 * CLEAR).max(CLEAR), x_max + 2 * CLEAR]);
        ys.extend([(y_min - 2 * CLEAR).max(CLEAR), y_max + 2 * CLEAR]);
        let (xs, ys) = (lines(xs), lines(ys));
        let n = xs.len() * ys.len();
        let mut grid = Grid {
            blocked: vec![false; n],
            wall: vec![[false; 2]; n],
            along: vec![[false; 2]; n],
            crossed: vec![false; n],
            hug: vec![[false; 2]; n],
            xs,
            ys,
        };
        let span = |values: &[i64], lo: i64, hi: i64| {
            values.partition_point(|&v| v < lo)..values.partition_point(|&v| v <= hi)
        };
        for w in walls {
            for j in span(&grid.ys, w.y, w.bottom()) {
                for i in span(&grid.xs, w.x, w.right()) {
                    let (x, y) = (grid.xs[i], grid.ys[j]);
                    let p = grid.point(i, j);
                    let strictly = |v: i64, lo: i64, hi: i64| v > lo && v < hi;
                    if strictly(x, w.x, w.right()) && strictly(y, w.y, w.bottom()) {
                        grid.blocked[p] = true;
                    }
                    // The step right (down) from here runs inside when it starts inside the
                    // wall's span on that axis and lies strictly within it on the other.
                    if strictly(y, w.y, w.bottom()) && x < w.right() && i + 1 < grid.xs.len() {
                        grid.wall[p][0] = true;
                    }
                    if strictly(x, w.x, w.right()) && y < w.bottom() && j + 1 < grid.ys.len() {
                        grid.wall[p][1] = true;
                    }
                }
            }
        }
        // Steps within CLEAR of a border, along it: only the bands round the borders.
        let band = |values: &[i64], border: i64| span(values, border - CLEAR + 1, border + CLEAR - 1);
        for c in crossed {
            for j in band(&grid.ys, c.y).chain(band(&grid.ys, c.bottom())) {
                for i in span(&grid.xs, c.x, c.right() - 1) {
                    let p = grid.point(i, j);
                    grid.hug[p][0] = true;
                }
            }
            for i in band(&grid.xs, c.x).chain(band(&grid.xs, c.right())) {
                for j in span(&grid.ys, c.y, c.bottom() - 1) {
                    let p = grid.point(i, j);
                    grid.hug[p][1] = true;
                }
            }
        }
        for &(a, b) in &self.drawn {
            let (Some(start), Some(end)) = (grid.find(a), grid.find(b)) else {
                continue;
            };
            let axis = usize::from(a.0 == b.0);
            let (lo, hi) = if axis == 0 {
                (start.0.min(end.0), start.0.max(end.0))
            } else {
                (start.1.min(end.1), start.1.max(end.1))
            };
            for k in lo..=hi {
                let p = if axis == 0 {
                    grid.point(k, start.1)
                } else {
                    grid.point(start.0, k)
                };
                grid.crossed[p] = true;
                if k < hi {
                    grid.along[p][axis] = true;
                }
            }
        }
        grid
    }
}

/// The search itself: Dijkstra's over (point, direction of arrival), guided by the distance
/// left (A*); the ports' straight pieces are its first and last steps.
fn search(grid: &Grid, from: &[Port], to: &[Port]) -> Option<Vec<(i64, i64)>> {
    let nx = grid.xs.len();
    let states = grid.blocked.len() * 4;
    let mut best = vec![i64::MAX; states];
    let mut came: Vec<u32> = vec![u32::MAX; states];
    let mut heap = BinaryHeap::new();
    let targets: Vec<(usize, Port)> = to
        .iter()
        .filter_map(|t| grid.find(t.stub()).map(|(i, j)| (grid.point(i, j), *t)))
        .collect();
    let mut is_target = vec![false; grid.blocked.len()];
    for &(q, _) in &targets {
        is_target[q] = true;
    }
    // The distance left, at least: to the box round every target's straight piece.
    let (x0, x1, y0, y1) = targets
        .iter()
        .map(|(_, t)| t.stub())
        .fold((i64::MAX, i64::MIN, i64::MAX, i64::MIN), |(x0, x1, y0, y1), (x, y)| {
            (x0.min(x), x1.max(x), y0.min(y), y1.max(y))
        });
    let left = |p: usize| -> i64 {
        let (x, y) = (grid.xs[p % nx], grid.ys[p / nx]);
        (x0 - x).max(0) + (x - x1).max(0) + (y0 - y).max(0) + (y - y1).max(0)
    };
    for port in from {
        let Some((i, j)) = grid.find(port.stub()) else { continue };
        let p = grid.point(i, j);
        let state = p * 4 + port.dir.index();
        let cost = port.cost + port.reach;
        if cost < best[state] {
            best[state] = cost;
            heap.push(Reverse((cost + left(p), cost, state)));
        }
    }
    // The cheapest finish: (total, state reached, target port).
    let mut finish: Option<(i64, usize, Port)> = None;
    while let Some(Reverse((estimate, cost, state))) = heap.pop() {
        if finish.is_some_and(|(total, _, _)| total <= estimate) {
            break;
        }
        if cost > best[state] {
            continue;
        }
        let (p, dir) = (state / 4, Dir::ALL[state % 4]);
        for (q, port) in targets.iter().filter(|(q, _)| is_target[p] && *q == p) {
            let arrive = port.dir.back();
            let turn = if dir == arrive {
                0
            } else if dir == port.dir {
                continue;
            } else {
                BEND
            };
            let total = cost + turn + port.reach + port.cost;
            if finish.is_none_or(|(t, _, _)| total < t) {
                finish = Some((total, *q * 4 + dir.index(), *port));
            }
        }
        let (i, j) = (p % nx, p / nx);
        for next in Dir::ALL {
            if next == dir.back() {
                continue;
            }
            // The neighbouring point that way, and the step's own point and axis in the tables.
            let (q, step_at, axis) = match next {
                Dir::Right if i + 1 < nx => (p + 1, p, 0),
                Dir::Left if i > 0 => (p - 1, p - 1, 0),
                Dir::Down if j + 1 < grid.ys.len() => (p + nx, p, 1),
                Dir::Up if j > 0 => (p - nx, p - nx, 1),
                _ => continue,
            };
            if grid.blocked[q] || grid.wall[step_at][axis] {
                continue;
            }
            let length = (grid.xs[q % nx] - grid.xs[i]).abs() + (grid.ys[q / nx] - grid.ys[j]).abs();
            let mut step = length;
            if next != dir {
                step += BEND;
            }
            if grid.along[step_at][axis] || grid.hug[step_at][axis] {
                step += ALONG * length;
            } else if grid.crossed[q] {
                step += ACROSS;
            }
            let state_next = q * 4 + next.index();
            let cost_next = cost + step;
            if cost_next < best[state_next] {
                best[state_next] = cost_next;
                came[state_next] = state as u32;
                heap.push(Reverse((cost_next + left(q), cost_next, state_next)));
            }
        }
    }
    let (_, mut state, port) = finish?;
    let mut points = vec![port.at];
    loop {
        let p = state / 4;
        points.push((grid.xs[p % nx], grid.ys[p / nx]));
        match came[state] {
            u32::MAX => break,
            previous => state = previous as usize,
        }
    }
    // The first state is a source port's straight piece: its end, in its direction.
    let (end, dir) = (points.last().copied(), Dir::ALL[state % 4]);
    let port = from.iter().find(|f| Some(f.stub()) == end && f.dir == dir)?;
    points.push(port.at);
    points.reverse();
    Some(simplify(points))
}

/// `points` without repeats and without the middle of three in a line.
fn simplify(points: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(points.len());
    for p in points {
        if out.last() == Some(&p) {
            continue;
        }
        if out.len() >= 2 {
            let (a, b) = (out[out.len() - 2], out[out.len() - 1]);
            if (a.0 == b.0 && b.0 == p.0) || (a.1 == b.1 && b.1 == p.1) {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: i64, y: i64, w: i64, h: i64) -> Rect {
        Rect { x, y, w, h }
    }

    fn port(at: (i64, i64), dir: Dir) -> Port {
        Port {
            at,
            dir,
            reach: STUB,
            cost: 0,
        }
    }

    #[test]
    fn a_path_goes_round_what_stands_between() {
        // A above B, a wall between them wider than both.
        let (a, b, wall) = (rect(100, 10, 40, 20), rect(100, 120, 40, 20), rect(60, 60, 160, 20));
        let path = Router::default()
            .route(
                &[a, b, wall],
                &[],
                &[port((120, 30), Dir::Down)],
                &[port((120, 120), Dir::Up)],
            )
            .expect("a way round");
        assert_eq!((path.first(), path.last()), (Some(&(120, 30)), Some(&(120, 120))));
        let last = path.len() - 2;
        for (k, w) in path.windows(2).enumerate() {
            assert!(w[0].0 == w[1].0 || w[0].1 == w[1].1, "{path:?}");
            // Clear of every box by CLEAR, but for the straight pieces out of and into the ends.
            let ends: &[Rect] = if k == 0 {
                &[b]
            } else if k == last {
                &[a]
            } else {
                &[a, b]
            };
            for r in ends.iter().chain([&wall]) {
                assert!(!r.grow(CLEAR - 1).cut_by(w[0], w[1]), "{path:?} through {r:?}");
            }
        }
        // Round the nearer end of the wall, with no more bends than that takes.
        assert!(path.iter().all(|p| p.0 < 220), "{path:?}");
        assert_eq!(path.len(), 6, "{path:?}");
    }

    #[test]
    fn a_later_path_keeps_off_an_earlier_one() {
        let (a, b) = (rect(100, 10, 60, 20), rect(100, 120, 60, 20));
        let from = [port((120, 30), Dir::Down), port((140, 30), Dir::Down)];
        let to = [port((120, 120), Dir::Up), port((140, 120), Dir::Up)];
        let mut router = Router::default();
        let first = router.route(&[a, b], &[], &from, &to).expect("a way");
        let second = router.route(&[a, b], &[], &from, &to).expect("a way");
        assert_eq!(first, [(120, 30), (120, 120)]);
        assert_eq!(second, [(140, 30), (140, 120)]);
    }

    #[test]
    fn a_path_runs_along_no_border_it_crosses() {
        // From A, inside C near its left side, to B below C: straight down would run along C's
        // left border, 2 px inside it; the path steps out of C first.
        let c = rect(100, 0, 200, 100);
        let (a, b) = (rect(114, 40, 60, 20), rect(72, 160, 60, 20));
        let path = Router::default()
            .route(
                &[a, b],
                &[c],
                &[port((114, 50), Dir::Left)],
                &[port((102, 160), Dir::Up)],
            )
            .expect("a way");
        for w in path.windows(2) {
            let along_side = w[0].0 == w[1].0 && (w[0].0 - c.x).abs() < CLEAR && w[0].1.min(w[1].1) < c.bottom();
            assert!(!along_side, "{path:?}");
        }
        // Without C, straight down.
        let path = Router::default()
            .route(
                &[a, b],
                &[],
                &[port((114, 50), Dir::Left)],
                &[port((102, 160), Dir::Up)],
            )
            .expect("a way");
        assert_eq!(path, [(114, 50), (102, 50), (102, 160)]);
    }

    #[test]
    fn no_way_out_is_none() {
        // The target inside a closed ring of boxes.
        let ring = [
            rect(60, 60, 100, 10),
            rect(60, 150, 100, 10),
            rect(60, 60, 10, 100),
            rect(150, 60, 10, 100),
        ];
        let target = rect(100, 100, 20, 20);
        let mut obstacles = ring.to_vec();
        obstacles.push(target);
        let mut router = Router::default();
        let to = [port((110, 100), Dir::Up), port((120, 110), Dir::Right)];
        assert_eq!(router.route(&obstacles, &[], &[port((20, 20), Dir::Right)], &to), None);
        // Nor is there one from a port whose straight piece ends in a box.
        assert_eq!(router.route(&obstacles, &[], &[port((55, 110), Dir::Right)], &to), None);
    }
}
