//! Log time for people: a record's `Timestamp` (seconds since the Unix
//! epoch, UTC) as a calendar date and time, without a date library. The
//! daily-volume chart groups transactions by [`utc_day`].

use ledger::Timestamp;

/// Seconds in a calendar day (UTC has no leap seconds in Unix time).
pub const SECS_PER_DAY: u64 = 86_400;

/// The calendar day (days since 1970-01-01, UTC) of `at`.
pub fn utc_day(at: Timestamp) -> u64 {
    at.0 / SECS_PER_DAY
}

/// `(year, month 1..=12, day 1..=31)` of a day number: the proleptic
/// Gregorian calendar, by Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(day: u64) -> (u64, u32, u32) {
    // Shifted to start on 0000-03-01 so leap days fall at the end of a year.
    let z = day + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    // Both fit: d in 1..=31, m in 1..=12.
    let d = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + u64::from(m <= 2);
    (year, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: u64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a timestamp.
pub fn format_utc(at: Timestamp) -> String {
    let secs = at.0 % SECS_PER_DAY;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        format_day(utc_day(at)),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_format_as_the_calendar_says() {
        assert_eq!(format_utc(Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_utc(Timestamp(1_767_225_600)),
            "2026-01-01 00:00:00 UTC"
        );
        // A leap day, and the second before midnight.
        assert_eq!(
            format_utc(Timestamp(951_868_799)),
            "2000-02-29 23:59:59 UTC"
        );
        assert_eq!(
            format_utc(Timestamp(2_000_000_000)),
            "2033-05-18 03:33:20 UTC"
        );
        assert_eq!(format_day(utc_day(Timestamp(1_709_251_200))), "2024-03-01");
    }
}
