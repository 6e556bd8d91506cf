//! Drawing a workflow as SVG (`Graph::to_svg_counted`: what `workflow diagram --format svg` and
//! the web view's diagram page run), on a chart larger than any in the repository: 28 states
//! nested three deep with a parallel state, 38 arrows, among them arrows out of nested states
//! past their siblings, bundles of transitions between the same two states, and loops.
//!
//! Sections: `diagram/svg/chart` (that chart), `diagram/svg/ten_in_a_row` (a plain chain of ten
//! states, each with a way back to the first).
//!
//! Run: `cargo bench -p workflow-benches --bench diagram`.

use std::hint::black_box;

use criterion::Criterion;
use workflow::prelude::*;
use workflow::Graph;

workflow! {
    /// A claim handled in parallel (documents and payment), reviewed, and closed.
    #[allow(unreachable_state, no_path_to_final, dead_end, shadowed_transition)]
    pub workflow Claim {
        initial Intake;
        events { Next, Back, Fail, Retry, Ping, Nudge, Cancel, Escalate, Approve, Reject, Appeal, Reopen }
        state Intake {
            initial Filed;
            on Cancel => Withdrawn;
            state Filed { on Next => Triaged; on Ping; on Nudge; }
            state Triaged { on Next => Handling; on Back => Filed; on Fail => Rejected; }
            parallel Handling {
                state Documents {
                    state Requested { on Next => Received; on Nudge; }
                    state Received { on Next => Checked; on Fail => Requested; }
                    final Checked;
                }
                state Payment {
                    state Quoted { on Next => Agreed; on Back => Quoted; }
                    state Agreed { on Next => Paid; on Fail => Disputed; }
                    state Disputed { on Retry => Agreed; on Escalate => Escalated; }
                    final Paid;
                }
                on done => Review;
            }
            state Review {
                initial Reading;
                state Reading { on Approve => Approved; on Reject => Rejected; on Appeal => Appealed; }
                state Appealed { on Approve => Approved; on Reject => Rejected; on Back => Reading; }
                on Escalate => Escalated;
            }
        }
        state Escalated { on Approve => Approved; on Reject => Rejected; on Reopen => Intake; on Ping; }
        final Approved;
        final Rejected (failure);
        final Withdrawn;
    }
}

workflow! {
    /// Ten steps in a row, each of which can start over.
    #[allow(no_path_to_final)]
    pub workflow Chain {
        initial S0;
        events { Step, Restart }
        state S0 { on Step => S1; }
        state S1 { on Step => S2; on Restart => S0; }
        state S2 { on Step => S3; on Restart => S0; }
        state S3 { on Step => S4; on Restart => S0; }
        state S4 { on Step => S5; on Restart => S0; }
        state S5 { on Step => S6; on Restart => S0; }
        state S6 { on Step => S7; on Restart => S0; }
        state S7 { on Step => S8; on Restart => S0; }
        state S8 { on Step => S9; on Restart => S0; }
        state S9 { on Restart => S0; }
    }
}

fn draw(c: &mut Criterion, name: &str, graph: &Graph<'_>) {
    let counts: Vec<u64> = (0..graph.states.len() as u64).map(|s| s * 7 % 5).collect();
    c.bench_function(&format!("diagram/svg/{name}"), |b| {
        b.iter(|| black_box(graph).to_svg_counted(&counts))
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    draw(&mut c, "chart", Claim::graph());
    draw(&mut c, "ten_in_a_row", Chain::graph());
    c.final_summary();
}
