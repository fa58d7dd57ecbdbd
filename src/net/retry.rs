//! GitHub's retry rules: how long and how often to retry, and how long a rate limit asks to
//! wait. <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>

use std::fmt;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use jiff::Timestamp;

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// First backoff after a server error; doubled each time.
    pub backoff: Duration,
    /// The longest single wait a rate limit may ask for before we give up.
    pub max_wait: Duration,
    /// Time allowed for one attempt (connect, send, read).
    pub attempt_timeout: Duration,
    /// Time allowed for one request, its retries and waits included.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// The policy bounded by `total`: no single attempt or wait may exceed it.
    pub fn within(self, total: Duration) -> Self {
        Self {
            max_wait: self.max_wait.min(total),
            attempt_timeout: self.attempt_timeout.min(total),
            deadline: total,
            ..self
        }
    }

    /// The one retry loop of every GitHub call (the REST API, the artifacts' downloads, the
    /// results service, the App's token calls): repeats `attempt` while it says
    /// [`Attempt::Retry`], waiting as GitHub asked ([`Wait::Told`]; longer than
    /// [`Self::max_wait`] gives up at once) or backing off exponentially, within
    /// [`Self::attempts`] and [`Self::deadline`], and says so before each new attempt.
    /// `exhausted` turns giving up into the caller's error.
    pub(crate) async fn run<T, R, E, F, Fut>(
        &self,
        label: &str,
        mut attempt: F,
        exhausted: impl FnOnce(Exhausted<R>) -> E,
    ) -> Result<T, E>
    where
        R: fmt::Display,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T, R, E>>,
    {
        let started = Instant::now();
        let mut backoff = self.backoff;
        let mut tried = 1;
        loop {
            let (wait, why) = match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { wait, why } => (wait, why),
            };
            let wait = match wait {
                Wait::Told(wait) if wait > self.max_wait => {
                    return Err(exhausted(Exhausted::WaitTooLong { wait }))
                }
                Wait::Told(wait) => wait,
                Wait::Backoff { at_least } => backoff.max(at_least),
            };
            if tried >= self.attempts || started.elapsed() + wait > self.deadline {
                return Err(exhausted(Exhausted::GaveUp {
                    seconds: started.elapsed().as_secs(),
                    last: why,
                }));
            }
            crate::workflow::print_line(&format!(
                "{label}: {why}; retrying in {:.1} s (attempt {}/{})",
                wait.as_secs_f64(),
                tried + 1,
                self.attempts
            ));
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2);
            tried += 1;
        }
    }
}

/// What one attempt of a call came to.
pub(crate) enum Attempt<T, R, E> {
    /// It worked (or failed in a way the caller reads from the answer).
    Done(T),
    /// A transient failure (a server error, a rate limit, a transport failure): try again.
    Retry {
        /// How long to wait first.
        wait: Wait,
        /// What failed, for the log and the final error.
        why: R,
    },
    /// A permanent failure.
    Fail(E),
}

/// Why [`RetryPolicy::run`] stopped retrying.
pub(crate) enum Exhausted<R> {
    /// GitHub asked to wait longer than [`RetryPolicy::max_wait`].
    WaitTooLong {
        /// How long it asked for.
        wait: Duration,
    },
    /// The attempts or the deadline ran out.
    GaveUp {
        /// How long the retries took.
        seconds: u64,
        /// The last failure.
        last: R,
    },
}

/// A transient failure with no wait of GitHub's: back off.
pub(crate) fn backoff<T, R, E>(why: R) -> Attempt<T, R, E> {
    Attempt::Retry {
        wait: Wait::Backoff {
            at_least: Duration::ZERO,
        },
        why,
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }
}
/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// As long as GitHub said (`retry-after`, `x-ratelimit-reset`).
    Told(Duration),
    /// Exponential backoff, but at least this long.
    Backoff {
        /// The shortest wait.
        at_least: Duration,
    },
}

/// GitHub's rules: honour `retry-after`; else, with `x-ratelimit-remaining: 0`, wait until
/// `x-ratelimit-reset`; else a secondary rate limit waits at least a minute.
pub(crate) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
) -> Option<Wait> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Wait::Told(Duration::from_secs(seconds)));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())?;
        let now = Timestamp::now().as_second();
        return Some(Wait::Told(Duration::from_secs(
            reset.saturating_sub(now).max(1) as u64,
        )));
    }
    let secondary = message
        .to_ascii_lowercase()
        .contains("secondary rate limit");
    (status == StatusCode::TOO_MANY_REQUESTS || secondary).then_some(Wait::Backoff {
        at_least: Duration::from_secs(60),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_follow_githubs_rules() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers, "Resource not accessible"),
            None
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers,
                "You have exceeded a secondary rate limit"
            ),
            Some(Wait::Backoff {
                at_least: Duration::from_secs(60)
            })
        );
        headers.insert("retry-after", http::HeaderValue::from_static("3"));
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            Some(Wait::Told(Duration::from_secs(3)))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::INTERNAL_SERVER_ERROR, &headers, ""),
            None
        );
    }
}
