import Foundation

/// Reading and writing the Unix-seconds timestamps Intercom uses.
public enum UnixTime {
    /// Parses `2025-03-01` (midnight UTC), `2025-03-01T12:30:00Z` / `+02:00`, or Unix seconds.
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 {
            return seconds
        }
        let dateOnly = ISO8601DateFormatter()
        dateOnly.formatOptions = [.withFullDate]
        if trimmed.count == 10, let date = dateOnly.date(from: trimmed) {
            return Int(date.timeIntervalSince1970)
        }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds]] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: trimmed) {
                return Int(date.timeIntervalSince1970)
            }
        }
        return nil
    }

    /// `2025-03-01T12:30:00Z`.
    public static func iso8601(_ seconds: Int) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// `45 s`, `12 min`, `3 h`, `2 d`: how long ago, for people.
    public static func duration(_ seconds: Int) -> String {
        switch seconds {
        case ..<60: "\(seconds) s"
        case ..<3_600: "\(seconds / 60) min"
        case ..<86_400: "\(seconds / 3_600) h"
        default: "\(seconds / 86_400) d"
        }
    }
}
