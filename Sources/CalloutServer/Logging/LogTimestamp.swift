import Foundation

/// UTC timestamps for log lines (`2026-11-30T05:42:01.123Z`) without a Foundation formatter:
/// the date and time of day are rendered once per second and reused; each line adds only its
/// milliseconds.
public struct LogTimestamp {
    private var renderedSecond = Int.min
    /// `YYYY-MM-DDTHH:MM:SS` for `renderedSecond`.
    private var prefix: [UInt8] = []

    public init() {}

    /// The wall clock now, as whole seconds since the epoch and milliseconds.
    static func now() -> (seconds: Int, milliseconds: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int(ts.tv_sec), Int(ts.tv_nsec) / 1_000_000)
    }

    /// Appends the timestamp for the wall clock now.
    mutating func append(to buffer: inout [UInt8]) {
        let (seconds, milliseconds) = Self.now()
        append(seconds: seconds, milliseconds: milliseconds, to: &buffer)
    }

    mutating func append(seconds: Int, milliseconds: Int, to buffer: inout [UInt8]) {
        if seconds != renderedSecond {
            prefix = Self.render(seconds: seconds)
            renderedSecond = seconds
        }
        buffer.append(contentsOf: prefix)
        buffer.append(UInt8(ascii: "."))
        Self.appendDigits(milliseconds, width: 3, to: &buffer)
        buffer.append(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DDTHH:MM:SS` (UTC) for seconds since 1970-01-01T00:00:00Z.
    static func render(seconds: Int) -> [UInt8] {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(daysSinceEpoch: days)
        var out: [UInt8] = []
        out.reserveCapacity(19)
        appendDigits(year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendDigits(secondOfDay / 3600, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, width: 2, to: &out)
        return out
    }

    /// Proleptic Gregorian year, month (1...12) and day (1...31) of a day count since 1970-01-01
    /// (H. Hinnant's `civil_from_days`).
    static func civil(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Appends `value` (non-negative) in decimal, left-padded with zeros to `width` digits.
    static func appendDigits(_ value: Int, width: Int, to buffer: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var v = value
        while v / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
            v %= divisor
            divisor /= 10
        }
    }
}
