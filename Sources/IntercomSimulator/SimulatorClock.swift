import Foundation

/// The simulator's time in Unix seconds: the wall clock, or a fixed time that tests move.
public final class SimulatorClock: @unchecked Sendable {
    private let lock = NSLock()
    private var fixed: Int?
    private var offset = 0

    public init(startingAt start: Int? = nil) {
        fixed = start
    }

    public var now: Int {
        lock.withLock { fixed ?? Int(Date().timeIntervalSince1970) + offset }
    }

    /// Moves time forward (or back, with a negative amount).
    public func advance(by seconds: Int) {
        lock.withLock {
            if let time = fixed {
                fixed = time + seconds
            } else {
                offset += seconds
            }
        }
    }

    /// Stops the clock at `time`.
    public func set(_ time: Int) {
        lock.withLock { fixed = time }
    }
}
