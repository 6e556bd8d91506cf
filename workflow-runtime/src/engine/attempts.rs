//! What the journal keeps of an activity's or a compensation's attempts: the log of one call,
//! filled from the history records of its attempts as they come in, and journaled with the
//! call's outcome.

use std::time::Duration;

use super::{Record, RecordKind, RecordedError};
use crate::activity::Attempt;
use crate::journal;

/// What an instance's history records of what [`run_observed`](crate::activity::run_observed)
/// reported of an attempt of `activity`.
pub(super) fn record(activity: &'static str, attempt: Attempt<'_>) -> RecordKind {
    match attempt {
        Attempt::Started { attempt, .. } => RecordKind::AttemptStarted { activity, attempt },
        Attempt::Ended {
            attempt,
            elapsed,
            error,
        } => RecordKind::AttemptEnded {
            activity,
            attempt,
            duration: elapsed,
            error: error.map(RecordedError::from),
        },
    }
}

/// The attempts of one call, for its outcome's row: empty until an attempt fails, so that the
/// common call (one attempt, which succeeds) allocates nothing and its row does not grow; from
/// then on, every attempt (so once the first fails, all of them).
#[derive(Default)]
pub(super) struct AttemptLog {
    /// When the running attempt started, since the engine's epoch (a [`Record::at`]).
    started: Duration,
    kept: Vec<journal::Attempt>,
}

impl AttemptLog {
    /// Keeps what the journal needs of `record`, if it is an attempt's start or end; `wall`
    /// turns a [`Record::at`] into milliseconds since the Unix epoch.
    pub(super) fn keep(&mut self, record: &Record, wall: impl FnOnce(Duration) -> u64) {
        match &record.kind {
            RecordKind::AttemptStarted { .. } => self.started = record.at,
            RecordKind::AttemptEnded {
                attempt,
                duration,
                error,
                ..
            } if error.is_some() || !self.kept.is_empty() => {
                self.kept.push(journal::Attempt::new(
                    *attempt,
                    wall(self.started),
                    *duration,
                    error.as_ref(),
                ));
            }
            _ => {}
        }
    }

    /// The attempts to journal with the call's outcome.
    pub(super) fn attempts(&self) -> &[journal::Attempt] {
        &self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{ActivityError, ErrorKind};

    /// `attempt`'s start at `started` ms and end 1.5 ms later, with `error`, into `log` (whose
    /// clock starts at 1,000 ms).
    fn run(log: &mut AttemptLog, attempt: u32, started: u64, error: Option<&ActivityError>) {
        let wall = |at: Duration| 1_000 + at.as_millis() as u64;
        let start = Record {
            at: Duration::from_millis(started),
            kind: record(
                "pay",
                Attempt::Started {
                    attempt,
                    queued: Duration::ZERO,
                },
            ),
        };
        log.keep(&start, wall);
        let end = Attempt::Ended {
            attempt,
            elapsed: Duration::from_micros(1_500),
            error,
        };
        let end = Record {
            at: Duration::from_millis(started + 2),
            kind: record("pay", end),
        };
        log.keep(&end, wall);
    }

    #[test]
    fn a_first_attempt_that_succeeds_keeps_nothing() {
        let mut log = AttemptLog::default();
        run(&mut log, 1, 10, None);
        assert!(log.attempts().is_empty());
        assert_eq!(log.kept.capacity(), 0, "nothing allocated");
    }

    #[test]
    fn once_one_fails_every_attempt_is_kept() {
        let busy = ActivityError::new("busy");
        let mut log = AttemptLog::default();
        run(&mut log, 1, 100, Some(&busy));
        run(&mut log, 2, 200, None);
        let took = Duration::from_micros(1_500);
        let failed = RecordedError::new(ErrorKind::Failed, "busy");
        assert_eq!(
            log.attempts(),
            [
                journal::Attempt::new(1, 1_100, took, Some(&failed)),
                journal::Attempt::new(2, 1_200, took, None)
            ]
        );
        assert_eq!(
            (log.attempts()[0].error.as_deref(), log.attempts()[0].kind),
            (Some("busy"), Some(ErrorKind::Failed))
        );
    }

    #[test]
    fn a_lone_attempt_that_fails_is_kept_and_other_records_are_not() {
        let declined = ActivityError::non_retryable("declined");
        let mut log = AttemptLog::default();
        run(&mut log, 1, 7, Some(&declined));
        let other = Record {
            at: Duration::from_millis(9),
            kind: RecordKind::TimerFired("Tick"),
        };
        log.keep(&other, |_| 0);
        assert_eq!(log.attempts().len(), 1);
        assert_eq!(
            (log.attempts()[0].at, log.attempts()[0].kind),
            (1_007, Some(ErrorKind::NonRetryable))
        );
    }
}
