import Foundation

/// How a request is retried after a transient failure: capped, jittered exponential backoff and
/// a bounded number of attempts (the guarantee that retries are bounded and told apart). A 429 waits for the window's reset
/// instead, and keeps waiting for as long as `rateLimitPatience` allows.
package struct RetryPolicy: Sendable {
    /// Which transient failures may be retried.
    package enum Scope: Sendable {
        /// Every transient failure: for reads and for writes that are safe to repeat.
        case anyTransient
        /// Only failures where Intercom certainly did not act on the request (the host was
        /// unreachable, or it answered 429): for writes that must not happen twice.
        case unprocessedOnly
    }

    package var maximumAttempts: Int
    /// Timeouts one request may meet before it gives up: a server that accepts connections
    /// but never answers costs this many full timeouts, not `maximumAttempts` of them.
    package var maximumTimeouts: Int
    package var baseDelay: Double
    package var maximumDelay: Double
    package var scope: Scope
    /// Seconds a request keeps waiting through answers of 429 (rate limited), which do not
    /// count as attempts: a 429 is Intercom saying "later", not an error. Past it the 429 is
    /// the request's error. 0 counts each 429 as an attempt.
    package var rateLimitPatience: Double

    /// Ten minutes: a burst of 429s that lasts longer is an outage of the rate limit rather
    /// than a full window.
    package static let defaultRateLimitPatience: Double = 600

    package init(
        maximumAttempts: Int = 6, maximumTimeouts: Int = 2, baseDelay: Double = 0.25, maximumDelay: Double = 8,
        scope: Scope = .anyTransient, rateLimitPatience: Double = RetryPolicy.defaultRateLimitPatience
    ) {
        self.rateLimitPatience = max(0, rateLimitPatience)
        self.maximumAttempts = max(1, maximumAttempts)
        self.maximumTimeouts = max(1, maximumTimeouts)
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
        self.scope = scope
    }

    package static let standard = RetryPolicy()
    /// One quick try: for reads the mirror can answer anyway when the network is gone.
    package static let once = RetryPolicy(maximumAttempts: 1, rateLimitPatience: 0)

    /// The same policy with another scope.
    package func scoped(_ scope: Scope) -> RetryPolicy {
        var policy = self
        policy.scope = scope
        return policy
    }

    /// The pause before retry number `attempt` (1-based): "full jitter" over an exponential
    /// ceiling, so that clients that failed together do not retry together.
    func delay(beforeRetry attempt: Int) -> Double {
        let ceiling = min(maximumDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    /// Whether attempt number `attempt` (1-based), which failed with `error` and was the
    /// request's `timeouts`th timeout so far, may be followed by another.
    func allowsRetry(of error: IntercomError, attempt: Int, timeouts: Int = 0) -> Bool {
        guard error.kind == .transient, attempt < maximumAttempts, timeouts < maximumTimeouts else { return false }
        switch scope {
        case .anyTransient: return true
        case .unprocessedOnly: return error.isOffline || error.status == 429
        }
    }
}
