//! Spreadsheet cell values → the strings the importer sees.

use calamine::{Data, DataRef, ExcelDateTime};

pub(crate) fn data_to_string(value: &Data) -> String {
    match value {
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_to_string(*f),
        Data::String(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => datetime_to_string(dt),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(_) | Data::Empty => String::new(),
    }
}

pub(crate) fn data_ref_to_string(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_to_string(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => datetime_to_string(dt),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// Excel stores every number as a double. Integral values below 1e15 (SIREN, SIRET, postal codes
/// that lost their leading zero…) come back as plain digits; other values as Excel displays them:
/// rounded to 15 significant digits, then in the shortest form, never with an exponent.
pub(crate) fn number_to_string(f: f64) -> String {
    if !f.is_finite() {
        return String::new();
    }
    if let Some(digits) = integral_digits(f) {
        return digits;
    }
    let displayed: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if let Some(digits) = integral_digits(displayed) {
        return digits;
    }
    format!("{displayed}")
}

fn integral_digits(f: f64) -> Option<String> {
    // Below 1e15 the cast is exact; `as` also turns -0.0 into 0.
    (f.fract() == 0.0 && f.abs() < 1e15).then(|| (f as i64).to_string())
}

fn datetime_to_string(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if !serial.is_finite() {
        return String::new();
    }
    if dt.is_duration() {
        let total_ms = (serial * 86_400_000.0).round() as i64;
        let (sign, ms) = if total_ms < 0 {
            ("-", -total_ms)
        } else {
            ("", total_ms)
        };
        let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, milli) = (rest / 1000, rest % 1000);
        return if milli == 0 {
            format!("{sign}PT{h}H{m}M{s}S")
        } else {
            format!("{sign}PT{h}H{m}M{s}.{milli:03}S")
        };
    }
    let (year, month, day, hour, minute, second, milli) = dt.to_ymd_hms_milli();
    let time = if milli == 0 {
        format!("{hour:02}:{minute:02}:{second:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}.{milli:03}")
    };
    let has_time = (hour, minute, second, milli) != (0, 0, 0, 0);
    if (0.0..1.0).contains(&serial) && has_time {
        // A time of day with no date part.
        return time;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if has_time { format!("{date}T{time}") } else { date }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{CellErrorType, ExcelDateTimeType};

    #[test]
    fn numbers_come_back_as_excel_shows_them() {
        assert_eq!(number_to_string(73_282_932_000_074.0), "73282932000074");
        assert_eq!(number_to_string(12_345_678_901_234.0), "12345678901234");
        assert_eq!(number_to_string(1500.0), "1500");
        assert_eq!(number_to_string(-0.0), "0");
        assert_eq!(number_to_string(0.1 + 0.2), "0.3");
        assert_eq!(number_to_string(2.5), "2.5");
        assert_eq!(number_to_string(45.764043), "45.764043");
        assert_eq!(number_to_string(1.5e-7), "0.00000015");
        assert_eq!(number_to_string(1e15), "1000000000000000");
        assert_eq!(number_to_string(f64::NAN), "");
    }

    #[test]
    fn other_values() {
        assert_eq!(data_to_string(&Data::Bool(true)), "true");
        assert_eq!(data_to_string(&Data::Error(CellErrorType::NA)), "");
        assert_eq!(data_to_string(&Data::Int(-42)), "-42");
        assert_eq!(data_to_string(&Data::String(" a &amp; b ".into())), " a &amp; b ");
        assert_eq!(data_ref_to_string(&DataRef::SharedString("x")), "x");
        assert_eq!(data_ref_to_string(&DataRef::Empty), "");
    }

    #[test]
    fn dates_are_iso_8601() {
        let dt = |v: f64| Data::DateTime(ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        assert_eq!(data_to_string(&dt(45366.0)), "2024-03-15");
        assert_eq!(data_to_string(&dt(43647.4375)), "2019-07-01T10:30:00");
        assert_eq!(data_to_string(&dt(0.5)), "12:00:00");
        let d1904 = Data::DateTime(ExcelDateTime::new(0.0, ExcelDateTimeType::DateTime, true));
        assert_eq!(data_to_string(&d1904), "1904-01-01");
        let duration = Data::DateTime(ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false));
        assert_eq!(data_to_string(&duration), "PT36H0M0S");
    }
}
