import Foundation

/// Build ids as LXC image servers write them: `YYYYMMDD_HH:MM` in UTC, which sort by time.
public enum BuildID {
    static func formatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd_HH:mm"
        return formatter
    }

    public static func string(epoch: Int) -> String {
        formatter().string(from: Date(timeIntervalSince1970: TimeInterval(epoch)))
    }

    /// Epoch seconds of a build id, or nil for ids of another form.
    public static func epoch(_ build: String) -> Int? {
        formatter().date(from: build).map { Int($0.timeIntervalSince1970) }
    }
}
