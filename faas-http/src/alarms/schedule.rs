//! When an alarm fires: cron expressions (5 fields, or 6 with seconds first) in a time zone,
//! fixed intervals in minutes, and one date; bounded by `startDate`/`stopDate`. Pure
//! functions of epoch milliseconds, so the scheduler's tests drive them with an injected clock.
//!
//! The rules are those of Apache `openwhisk-package-alarms` (`provider/lib/cronAlarm.js`,
//! `intervalAlarm.js`, `dateAlarm.js`):
//!
//! * **cron** ticks are the expression's matches after the start date (or after creation);
//!   a tick after `stopDate` does not fire and ends the alarm;
//! * **interval** ticks are `startDate + k·minutes` for `k ≥ 1` (the provider starts a
//!   `setInterval` at the start date, whose first call is one interval later); without a
//!   `startDate` the start is 30 s after creation, as `alarmWebAction.js` sets it;
//! * **once** has the single tick `date`.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many ticks are counted when an alarm catches up after a pause (the count of
/// skipped ticks is a lower bound beyond it).
const MAX_COUNTED: u64 = 100_000;

/// How an alarm's ticks are computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Schedule {
    /// A cron expression in a time zone (UTC when none).
    Cron {
        /// The expression as given.
        cron: String,
        /// An IANA time zone name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
    },
    /// Every `minutes` minutes from the start.
    Interval {
        /// The period, minutes (> 0).
        minutes: u64,
    },
    /// Once, at `date` (epoch ms).
    Once {
        /// The tick, epoch ms.
        date: u64,
    },
}

/// A parsed cron expression with its zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    tz: Tz,
}

impl CronSpec {
    /// Parses `cron` (5 fields, or 6 with seconds first) in `timezone` (UTC when `None`).
    ///
    /// # Errors
    ///
    /// The Apache package's messages: `Invalid timezone.` for an unknown zone, else
    /// `cron pattern '<cron>' is not valid`.
    pub fn parse(cron: &str, timezone: Option<&str>) -> Result<Self, String> {
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name).map_err(|_| "Invalid timezone.".to_string())?,
        };
        let invalid = || format!("cron pattern '{cron}' is not valid");
        // Node's `cron` package (the one the Apache provider uses) takes 5 or 6 fields; croner
        // would also take a 7th (years) and nicknames, which that package does not.
        let fields = cron.split_whitespace().count();
        if !(5..=6).contains(&fields) || cron.contains('@') {
            return Err(invalid());
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|_| invalid())?;
        let spec = Self { cron: parsed, tz };
        // A pattern that never matches (e.g. 30 February) is as invalid as a malformed one.
        spec.next_after(0).map(|_| spec).ok_or_else(invalid)
    }

    /// The first match strictly after `after` (epoch ms), if any.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        let after = i64::try_from(after).ok()?;
        let t = self.tz.timestamp_millis_opt(after).single()?;
        let next = self.cron.find_next_occurrence(&t, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }
}

/// An alarm's timing: its schedule and bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// The schedule.
    pub schedule: Schedule,
    /// No tick before this (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// No tick after this (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<u64>,
}

impl Timing {
    /// The first tick strictly after `after`, within the bounds; `None` when the alarm has no
    /// more ticks. A cron schedule that no longer parses has none.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        self.next_with(self.cron_spec().as_ref(), after)
    }

    /// The parsed cron expression of a cron schedule.
    fn cron_spec(&self) -> Option<CronSpec> {
        match &self.schedule {
            Schedule::Cron { cron, timezone } => CronSpec::parse(cron, timezone.as_deref()).ok(),
            _ => None,
        }
    }

    /// [`next_after`](Self::next_after) with the cron expression parsed once by the caller.
    fn next_with(&self, spec: Option<&CronSpec>, after: u64) -> Option<u64> {
        let next = match &self.schedule {
            Schedule::Cron { .. } => {
                let from = match self.start {
                    Some(s) => after.max(s.saturating_sub(1)),
                    None => after,
                };
                spec?.next_after(from)?
            }
            Schedule::Interval { minutes } => {
                let period = minutes.checked_mul(60_000).filter(|p| *p > 0)?;
                let start = self.start.unwrap_or(0);
                // The smallest k >= 1 with start + k·period > after.
                let k = if after < start {
                    1
                } else {
                    (after - start) / period + 1
                };
                start.checked_add(k.checked_mul(period)?)?
            }
            Schedule::Once { date } => (*date > after).then_some(*date)?,
        };
        match self.stop {
            Some(stop) if next > stop => None,
            _ => Some(next),
        }
    }

    /// How many ticks fall in `(after, until]` (counting stops at 100 000).
    pub fn count_between(&self, after: u64, until: u64) -> u64 {
        let spec = self.cron_spec();
        let mut n = 0;
        let mut t = after;
        while n < MAX_COUNTED {
            match self.next_with(spec.as_ref(), t) {
                Some(next) if next <= until => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }
}

/// Parses a date the way JavaScript's `new Date(x)` does for the forms people pass: a number
/// of epoch milliseconds, an ISO 8601 / RFC 3339 date-time (without an offset: UTC), or a
/// date `YYYY-MM-DD` (UTC midnight). `None` when it is not a date.
pub fn parse_date(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        Value::String(s) => parse_date_str(s.trim()),
        _ => None,
    }
}

fn parse_date_str(s: &str) -> Option<u64> {
    let ms = if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        d.timestamp_millis()
    } else if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        d.timestamp_millis()
    } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        d.and_utc().timestamp_millis()
    } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        d.and_utc().timestamp_millis()
    } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()
    } else {
        return None;
    };
    u64::try_from(ms).ok()
}

/// `ms` as an ISO 8601 UTC string (what `moment(...).utc().format()` gives, without
/// fractions).
pub fn iso(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> u64 {
        parse_date(&json!(s)).expect("a date")
    }

    #[test]
    fn five_field_cron_ticks_each_minute_boundary() {
        let t = Timing {
            schedule: Schedule::Cron {
                cron: "*/5 * * * *".into(),
                timezone: None,
            },
            start: None,
            stop: None,
        };
        assert_eq!(
            t.next_after(at("2030-01-01T10:02:30Z")),
            Some(at("2030-01-01T10:05:00Z"))
        );
        // Strictly after: a tick at the instant asked is not the next one.
        assert_eq!(
            t.next_after(at("2030-01-01T10:05:00Z")),
            Some(at("2030-01-01T10:10:00Z"))
        );
    }

    #[test]
    fn six_field_cron_has_seconds_first() {
        let t = Timing {
            schedule: Schedule::Cron {
                cron: "*/2 * * * * *".into(),
                timezone: None,
            },
            start: None,
            stop: None,
        };
        let base = at("2030-01-01T10:00:01Z");
        assert_eq!(t.next_after(base), Some(base + 1000));
        assert_eq!(t.count_between(base, base + 10_000), 5);
    }

    #[test]
    fn cron_follows_its_time_zone() {
        let t = Timing {
            schedule: Schedule::Cron {
                cron: "0 9 * * *".into(),
                timezone: Some("America/New_York".into()),
            },
            start: None,
            stop: None,
        };
        // 09:00 in New York in January is 14:00 UTC.
        assert_eq!(
            t.next_after(at("2030-01-15T00:00:00Z")),
            Some(at("2030-01-15T14:00:00Z"))
        );
    }

    #[test]
    fn bad_cron_and_zone_get_the_packages_messages() {
        assert_eq!(
            CronSpec::parse("* * *", None).unwrap_err(),
            "cron pattern '* * *' is not valid"
        );
        assert_eq!(
            CronSpec::parse("61 * * * *", None).unwrap_err(),
            "cron pattern '61 * * * *' is not valid"
        );
        assert_eq!(
            CronSpec::parse("* * * * * * 2030", None).unwrap_err(),
            "cron pattern '* * * * * * 2030' is not valid"
        );
        assert_eq!(
            CronSpec::parse("* * * * *", Some("Mars/Olympus")).unwrap_err(),
            "Invalid timezone."
        );
        assert!(
            CronSpec::parse("0 0 30 2 *", None).is_err(),
            "never matches"
        );
        assert!(CronSpec::parse("*/10 * * * * *", Some("Europe/Paris")).is_ok());
    }

    #[test]
    fn start_and_stop_bound_the_ticks() {
        let t = Timing {
            schedule: Schedule::Cron {
                cron: "0 * * * *".into(),
                timezone: None,
            },
            start: Some(at("2030-01-01T12:00:00Z")),
            stop: Some(at("2030-01-01T14:00:00Z")),
        };
        // Before the start: the first tick is the start itself when it matches.
        assert_eq!(
            t.next_after(at("2030-01-01T00:00:00Z")),
            Some(at("2030-01-01T12:00:00Z"))
        );
        assert_eq!(
            t.next_after(at("2030-01-01T13:00:00Z")),
            Some(at("2030-01-01T14:00:00Z"))
        );
        assert_eq!(t.next_after(at("2030-01-01T14:00:00Z")), None);
    }

    #[test]
    fn interval_ticks_one_period_after_the_start() {
        let start = at("2030-01-01T00:00:00Z");
        let t = Timing {
            schedule: Schedule::Interval { minutes: 10 },
            start: Some(start),
            stop: Some(start + 30 * 60_000),
        };
        assert_eq!(t.next_after(start - 5), Some(start + 600_000));
        assert_eq!(t.next_after(start + 600_000), Some(start + 1_200_000));
        assert_eq!(t.next_after(start + 650_000), Some(start + 1_200_000));
        assert_eq!(t.next_after(start + 1_800_000), None);
        assert_eq!(t.count_between(start, start + 1_800_000), 3);
    }

    #[test]
    fn once_has_one_tick() {
        let date = at("2030-06-01T08:00:00Z");
        let t = Timing {
            schedule: Schedule::Once { date },
            start: None,
            stop: None,
        };
        assert_eq!(t.next_after(date - 1), Some(date));
        assert_eq!(t.next_after(date), None);
    }

    #[test]
    fn dates_parse_as_javascript_reads_them() {
        assert_eq!(
            parse_date(&json!(1_900_000_000_000u64)),
            Some(1_900_000_000_000)
        );
        assert_eq!(
            parse_date(&json!("2030-01-01T00:00:00.000Z")),
            parse_date(&json!("2030-01-01"))
        );
        assert_eq!(
            parse_date(&json!("2030-01-01T01:00:00+01:00")),
            parse_date(&json!("2030-01-01T00:00:00"))
        );
        assert_eq!(parse_date(&json!("not a date")), None);
        assert_eq!(parse_date(&json!(true)), None);
        assert_eq!(iso(at("2030-01-01T00:00:00Z")), "2030-01-01T00:00:00Z");
    }
}
