import Foundation
import IntercomJSON
import NIOCore

/// What every API request meets before its route: its id and log entry, the token, the
/// window's budget, and the fault plan. Asked by the middleware (`SimMiddleware.swift`).
extension SimulatedWorkspace {

    /// A new request's id; its connection, when it has one, counted.
    func begin(connection: (any Channel)?) -> String {
        requestCounter += 1
        if let connection, connections.count < 10_000 {
            // Held, so that a closed channel's identifier is never taken by a new one.
            connections[ObjectIdentifier(connection)] = connection
        }
        return "sim-\(configuration.seed)-\(requestCounter)"
    }

    func logRequest(_ request: SimRequest, status: Int, lost: Bool, rateLimitReset: Int?) {
        if log.count >= max(configuration.requestLogCapacity, 2) {
            log.removeFirst(log.count - max(configuration.requestLogCapacity, 2) / 2)
        }
        log.append(
            LoggedRequest(
                method: request.method, path: request.path, status: status, lost: lost, time: clock.now,
                rateLimitReset: rateLimitReset))
    }

    func isFaulty(_ request: SimRequest) -> Bool {
        !faults.isEmpty && faults.applies(method: request.method, path: request.path)
    }

    /// What becomes of a faulty request's answer: lost or truncated (a success only), and its
    /// delay.
    func fate(ofAnswerWithStatus status: Int, contacts: Int) -> (lost: Bool, truncated: Bool, delayMilliseconds: Int) {
        var fate = (lost: false, truncated: false, delayMilliseconds: 0)
        if status < 300 {
            if random.chance(faults.lostResponseRate) {
                fate.lost = true
            } else if random.chance(faults.truncatedBodyRate) {
                fate.truncated = true
            }
        }
        if faults.latencyMilliseconds > 0 || faults.jitterMilliseconds > 0 || faults.perContactMicroseconds > 0 {
            fate.delayMilliseconds =
                faults.latencyMilliseconds + (faults.jitterMilliseconds > 0 ? random.below(faults.jitterMilliseconds + 1) : 0)
                + contacts * faults.perContactMicroseconds / 1000
        }
        return fate
    }

    /// Why the request's bearer token is refused, if it is.
    func authenticationError(_ request: SimRequest) -> APIError? {
        let token = bearerToken(request)
        guard let token, tokens.contains(token), !revoked.contains(token) else {
            return token.map(revoked.contains) == true
                ? APIError(401, "token_revoked", "Token revoked") : APIError(401, "unauthorized", "Access Token Invalid")
        }
        return nil
    }

    func bearerToken(_ request: SimRequest) -> String? {
        guard let header = request.headers["authorization"], header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    /// Counts the request against the window: the 429 it gets over the limit (or in an injected
    /// burst), and the window's headers.
    func spendBudget(faulty: Bool) -> (limited: APIError?, headers: [(String, String)]) {
        let window = configuration.rateLimitWindowSeconds
        let index = clock.now / window
        if index != windowIndex {
            windowIndex = index
            windowUsed = 0
        }
        windowUsed += 1
        let headers = [
            ("X-RateLimit-Limit", String(configuration.rateLimit)),
            ("X-RateLimit-Remaining", String(max(0, configuration.rateLimit - windowUsed))),
            ("X-RateLimit-Reset", String((index + 1) * window)),
        ]
        guard windowUsed > configuration.rateLimit || (faulty && startsOrContinuesBurst()) else { return (nil, headers) }
        let limited = APIError(
            429, "rate_limit_exceeded",
            "Exceeded rate limit of \(configuration.rateLimit) in \(configuration.rateLimitWindowSeconds)_seconds")
        return (limited, headers)
    }

    func startsOrContinuesBurst() -> Bool {
        if burstRemaining > 0 {
            burstRemaining -= 1
            return true
        }
        if faults.rateLimitBurstRate > 0, random.chance(faults.rateLimitBurstRate) {
            burstRemaining = max(0, faults.rateLimitBurstLength - 1)
            return true
        }
        return false
    }

    /// An injected server error's status, at the fault plan's rate.
    func drawServerError() -> Int? {
        random.chance(faults.serverErrorRate) ? [500, 502, 503][random.below(3)] : nil
    }
}
