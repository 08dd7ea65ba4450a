import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM, taken as a request to stop between two pieces of work rather than at
/// once: a long-running command asks `requested` where it may stop, and sleeps through
/// `sleep(seconds:)`, which a signal cuts short.
final class StopSignal {
    private final class Flag: Sendable {
        let raised = Mutex(false)
    }

    private let flag = Flag()
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32] = [SIGINT, SIGTERM]) {
        let flag = self.flag
        sources = signals.map { number in
            // The default action would end the process mid-transaction: the source takes the signal instead.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.raised.withLock { $0 = true } }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    var requested: Bool { flag.raised.withLock { $0 } }

    /// Sleeps for `seconds`, or until a stop is requested.
    func sleep(seconds: Double) async {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !requested, ContinuousClock.now < end {
            try? await Task.sleep(for: min(.milliseconds(100), end - ContinuousClock.now))
        }
    }
}
