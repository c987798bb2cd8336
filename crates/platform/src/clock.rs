//! The one clock every service reads. Business dates — a contract's start, a payroll month,
//! "today" at the end of a public notice — are dates in China Standard Time (UTC+8), never the
//! UTC date: at 23:30 UTC it is already tomorrow in Zaozhuang and Chongqing. Tests set the time.

use std::sync::{Arc, Mutex};

use time::{Date, OffsetDateTime, UtcOffset};

/// China Standard Time, UTC+8, the zone of every business date.
pub const CHINA_STANDARD_TIME: UtcOffset = time::macros::offset!(+8);

/// The business date (China Standard Time) of an instant.
pub fn business_date(instant: OffsetDateTime) -> Date {
    instant.to_offset(CHINA_STANDARD_TIME).date()
}

/// A source of the current instant.
pub trait TimeSource: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTime;

impl TimeSource for SystemTime {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualTime(Mutex<OffsetDateTime>);

impl ManualTime {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl TimeSource for ManualTime {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The injectable clock handed to every service.
#[derive(Debug, Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(SystemTime))
    }

    /// A clock a test controls through the returned handle.
    pub fn manual(at: OffsetDateTime) -> (Self, Arc<ManualTime>) {
        let source = Arc::new(ManualTime::new(at));
        (Self(source.clone()), source)
    }

    /// The current instant, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        self.0.now().to_offset(UtcOffset::UTC)
    }

    /// Today's business date in China Standard Time.
    pub fn today(&self) -> Date {
        business_date(self.0.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn at_23_30_utc_today_is_already_the_next_day() {
        let (clock, _) = Clock::manual(datetime!(2026-03-31 23:30 UTC));
        assert_eq!(clock.today(), date!(2026 - 04 - 01));
        assert_eq!(clock.now().date(), date!(2026 - 03 - 31));
    }

    #[test]
    fn before_16_00_utc_the_business_date_is_the_utc_date() {
        let (clock, _) = Clock::manual(datetime!(2026-12-31 15:59:59 UTC));
        assert_eq!(clock.today(), date!(2026 - 12 - 31));
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let (clock, handle) = Clock::manual(datetime!(2026-01-31 16:00 UTC));
        assert_eq!(clock.today(), date!(2026 - 02 - 01));
        handle.advance(time::Duration::days(28));
        assert_eq!(clock.today(), date!(2026 - 03 - 01));
    }
}
