//! What the journal keeps of an activity's or a compensation's attempts: the log one call fills
//! as its attempts run, journaled with its outcome.

use super::{RecordKind, RecordedError};
use crate::activity::Attempt;
use crate::journal;

/// The attempts of one call, for its outcome's row: empty while the first attempt has not
/// failed, so that the common call (one attempt, which succeeds) allocates nothing and its row
/// does not grow; once an attempt fails, that one and every one after it. (The first attempt
/// failing means every attempt is kept.)
#[derive(Default)]
pub(super) struct AttemptLog {
    /// When the running attempt started, in milliseconds since the Unix epoch.
    started: u64,
    kept: Vec<journal::Attempt>,
}

impl AttemptLog {
    /// Notes what [`run_observed`](crate::activity::run_observed) reported of an attempt of
    /// `activity`, at `wall` (milliseconds since the Unix epoch), and gives what the instance's
    /// history records of it.
    pub(super) fn note(&mut self, activity: &'static str, attempt: Attempt<'_>, wall: u64) -> RecordKind {
        match attempt {
            Attempt::Started { attempt, .. } => {
                self.started = wall;
                RecordKind::AttemptStarted { activity, attempt }
            }
            Attempt::Ended {
                attempt,
                elapsed,
                error,
            } => {
                if error.is_some() || !self.kept.is_empty() {
                    self.kept
                        .push(journal::Attempt::new(attempt, self.started, elapsed, error));
                }
                RecordKind::AttemptEnded {
                    activity,
                    attempt,
                    duration: elapsed,
                    error: error.map(RecordedError::from),
                }
            }
        }
    }

    /// The attempts to journal with the call's outcome (none, without allocating, if its first
    /// attempt succeeded).
    pub(super) fn into_attempts(self) -> Box<[journal::Attempt]> {
        self.kept.into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::activity::{ActivityError, ErrorKind};

    fn ended(attempt: u32, error: Option<&ActivityError>) -> Attempt<'_> {
        Attempt::Ended {
            attempt,
            elapsed: Duration::from_micros(1_500),
            error,
        }
    }

    #[test]
    fn a_first_attempt_that_succeeds_keeps_nothing() {
        let mut log = AttemptLog::default();
        log.note(
            "pay",
            Attempt::Started {
                attempt: 1,
                queued: Duration::ZERO,
            },
            10,
        );
        let record = log.note("pay", ended(1, None), 12);
        assert!(matches!(
            record,
            RecordKind::AttemptEnded {
                attempt: 1,
                error: None,
                ..
            }
        ));
        assert!(log.into_attempts().is_empty());
    }

    #[test]
    fn once_one_fails_every_attempt_is_kept() {
        let busy = ActivityError::new("busy");
        let mut log = AttemptLog::default();
        for (attempt, at) in [(1, 100), (2, 200)] {
            log.note(
                "pay",
                Attempt::Started {
                    attempt,
                    queued: Duration::ZERO,
                },
                at,
            );
            log.note("pay", ended(attempt, (attempt == 1).then_some(&busy)), at + 2);
        }
        let kept = log.into_attempts();
        let seen: Vec<(u32, u64, u64, Option<&str>, Option<ErrorKind>)> = kept
            .iter()
            .map(|a| (a.attempt, a.at, a.duration_us, a.error.as_deref(), a.kind))
            .collect();
        assert_eq!(
            seen,
            [
                (1, 100, 1_500, Some("busy"), Some(ErrorKind::Failed)),
                (2, 200, 1_500, None, None)
            ]
        );
    }

    #[test]
    fn a_lone_attempt_that_fails_is_kept() {
        let declined = ActivityError::non_retryable("declined");
        let mut log = AttemptLog::default();
        log.note(
            "pay",
            Attempt::Started {
                attempt: 1,
                queued: Duration::ZERO,
            },
            7,
        );
        log.note("pay", ended(1, Some(&declined)), 8);
        let kept = log.into_attempts();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].at, kept[0].kind), (7, Some(ErrorKind::NonRetryable)));
    }
}
