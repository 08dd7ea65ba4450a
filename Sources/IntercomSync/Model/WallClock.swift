import Foundation

/// Where the engine reads the time of day: when a contact was staged, when a version was last
/// confirmed, when a deferred entry is due.
///
/// Swift's `Clock` measures intervals (its instants have no calendar date), while the mirror
/// records Unix times that Intercom compares with its own, so the engine takes this instead.
/// Tests and previews pin it with ``fixed(_:)``, or drive it with ``init(_:)``.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Date

    /// A clock that answers `now()`.
    public init(_ now: @escaping @Sendable () -> Date) {
        read = now
    }

    /// The system's clock.
    public static let system = WallClock { Date() }

    /// A clock that always answers `date`.
    public static func fixed(_ date: Date) -> WallClock {
        WallClock { date }
    }

    /// The current time.
    public var now: Date { read() }

    /// The current time in whole Unix seconds, as the mirror stores times.
    var unixSeconds: Int { Int(read().timeIntervalSince1970) }

    /// `unixSeconds` as the closure the engine's parts take.
    var secondsSource: @Sendable () -> Int {
        let read = self.read
        return { Int(read().timeIntervalSince1970) }
    }
}
