//! Opening hours: Web1on1's `startDay`–`endDay` and `startTime`–`endTime`, read in the
//! organization's time zone. A pure function of the local time, so that windows that
//! wrap past midnight or past Sunday are tested without a clock.

use jiff::civil::{DateTime, Weekday};
use serde::Deserialize;

/// A time of day to the minute, given as `"HH:MM"` (`"00:00"`–`"23:59"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    /// `hours:minutes`; `None` outside a day.
    pub fn new(hours: u8, minutes: u8) -> Option<Self> {
        (hours < 24 && minutes < 60).then(|| ClockTime(u16::from(hours) * 60 + u16::from(minutes)))
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("expected a time \"HH:MM\" from \"00:00\" to \"23:59\", got {s:?}");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (Ok(h), Ok(m)) = (h.parse::<u8>(), m.parse::<u8>()) else {
            return Err(bad());
        };
        ClockTime::new(h, m).ok_or_else(bad)
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A day of the week, given as `"MONDAY"` … `"SUNDAY"` (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Day(pub Weekday);

const DAYS: [(&str, Weekday); 7] = [
    ("MONDAY", Weekday::Monday),
    ("TUESDAY", Weekday::Tuesday),
    ("WEDNESDAY", Weekday::Wednesday),
    ("THURSDAY", Weekday::Thursday),
    ("FRIDAY", Weekday::Friday),
    ("SATURDAY", Weekday::Saturday),
    ("SUNDAY", Weekday::Sunday),
];

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DAYS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(_, d)| Day(*d))
            .ok_or_else(|| format!("expected a day MONDAY … SUNDAY, got {s:?}"))
    }
}

/// When the business answers: every day from `start_day` to `end_day` (wrapping past
/// Sunday: FRIDAY–MONDAY is Friday, Saturday, Sunday and Monday), from `start` to `end`
/// inclusive of the end minute, so that Web1on1's default `00:00`–`23:59` is the whole day.
/// A window whose end is before its start runs overnight, and the hours after midnight
/// belong to the day it started: MONDAY–FRIDAY 22:00–06:00 is open early Saturday
/// morning and closed early Monday morning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First day.
    pub start_day: Weekday,
    /// Last day.
    pub end_day: Weekday,
    /// Opening time.
    pub start: ClockTime,
    /// Closing time, inclusive.
    pub end: ClockTime,
}

impl Window {
    /// Whether the business is open at this local time.
    pub fn is_open(&self, local: DateTime) -> bool {
        let now = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        let (start, end) = (self.start.minutes(), self.end.minutes());
        let shift_day = if start <= end {
            (start..=end).contains(&now).then(|| local.weekday())
        } else if now >= start {
            Some(local.weekday())
        } else if now <= end {
            Some(local.weekday().wrapping_sub(1))
        } else {
            None
        };
        shift_day.is_some_and(|d| self.has_day(d))
    }

    fn has_day(&self, day: Weekday) -> bool {
        let (s, e, d) = (
            self.start_day.to_monday_zero_offset(),
            self.end_day.to_monday_zero_offset(),
            day.to_monday_zero_offset(),
        );
        if s <= e {
            (s..=e).contains(&d)
        } else {
            d >= s || d <= e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn t(s: &str) -> ClockTime {
        ClockTime::try_from(s.to_owned()).unwrap()
    }

    fn day(s: &str) -> Weekday {
        Day::try_from(s.to_owned()).unwrap().0
    }

    fn window(days: (&str, &str), times: (&str, &str)) -> Window {
        Window {
            start_day: day(days.0),
            end_day: day(days.1),
            start: t(times.0),
            end: t(times.1),
        }
    }

    /// 2026-03-02 is a Monday.
    fn at(weekday_offset: i8, hh: i8, mm: i8) -> DateTime {
        date(2026, 3, 2 + weekday_offset).at(hh, mm, 30, 0)
    }

    #[test]
    fn parses_seed_values_and_refuses_others() {
        assert_eq!(t("00:00").minutes(), 0);
        assert_eq!(t("23:59").minutes(), 23 * 60 + 59);
        assert_eq!(t("09:05").to_string(), "09:05");
        for bad in ["24:00", "9:00", "09:60", "0900", "", "ab:cd", "09:00:00"] {
            let err = ClockTime::try_from(bad.to_owned()).unwrap_err();
            assert!(err.starts_with("expected a time \"HH:MM\""), "{bad}: {err}");
        }
        assert_eq!(day("MONDAY"), Weekday::Monday);
        assert_eq!(day("sunday"), Weekday::Sunday);
        assert!(Day::try_from("MON".to_owned()).is_err());
    }

    #[test]
    fn the_seed_default_is_always_open() {
        let w = window(("MONDAY", "SUNDAY"), ("00:00", "23:59"));
        for d in 0..7 {
            for (h, m) in [(0, 0), (12, 0), (23, 59)] {
                assert!(w.is_open(at(d, h, m)), "{d} {h}:{m}");
            }
        }
    }

    #[test]
    fn office_hours_include_the_end_minute() {
        let w = window(("MONDAY", "FRIDAY"), ("09:00", "17:00"));
        assert!(!w.is_open(at(0, 8, 59)));
        assert!(w.is_open(at(0, 9, 0)));
        assert!(w.is_open(at(2, 17, 0)));
        assert!(!w.is_open(at(2, 17, 1)));
        assert!(w.is_open(at(4, 12, 0)), "Friday");
        assert!(!w.is_open(at(5, 12, 0)), "Saturday");
        assert!(!w.is_open(at(6, 12, 0)), "Sunday");
    }

    #[test]
    fn overnight_windows_belong_to_the_day_they_start() {
        let w = window(("MONDAY", "FRIDAY"), ("22:00", "06:00"));
        assert!(
            !w.is_open(at(0, 3, 0)),
            "Monday 03:00 is Sunday night's shift"
        );
        assert!(w.is_open(at(0, 22, 0)));
        assert!(w.is_open(at(1, 3, 0)), "Tuesday 03:00 is Monday night's");
        assert!(w.is_open(at(1, 6, 0)));
        assert!(!w.is_open(at(1, 6, 1)));
        assert!(!w.is_open(at(1, 12, 0)));
        assert!(w.is_open(at(4, 23, 0)), "Friday night");
        assert!(
            w.is_open(at(5, 5, 0)),
            "early Saturday is Friday night's shift"
        );
        assert!(!w.is_open(at(5, 22, 0)), "Saturday night has no shift");
    }

    #[test]
    fn day_ranges_wrap_past_sunday() {
        let w = window(("FRIDAY", "MONDAY"), ("10:00", "16:00"));
        let open: Vec<bool> = (0..7).map(|d| w.is_open(at(d, 12, 0))).collect();
        assert_eq!(open, [true, false, false, false, true, true, true]);
        let one = window(("SUNDAY", "SUNDAY"), ("00:00", "23:59"));
        let open: Vec<bool> = (0..7).map(|d| one.is_open(at(d, 12, 0))).collect();
        assert_eq!(open, [false, false, false, false, false, false, true]);
    }

    #[test]
    fn both_wraps_at_once() {
        // Saturday night to Monday morning, shifts starting Saturday and Sunday.
        let w = window(("SATURDAY", "SUNDAY"), ("20:00", "08:00"));
        assert!(w.is_open(at(5, 21, 0)), "Saturday evening");
        assert!(w.is_open(at(6, 7, 0)), "Sunday morning: Saturday's shift");
        assert!(!w.is_open(at(6, 12, 0)), "Sunday noon");
        assert!(w.is_open(at(6, 23, 0)), "Sunday night");
        assert!(w.is_open(at(0, 7, 59)), "Monday morning: Sunday's shift");
        assert!(!w.is_open(at(0, 8, 1)));
        assert!(
            !w.is_open(at(4, 7, 0)),
            "Friday morning: Thursday had no shift"
        );
    }
}
