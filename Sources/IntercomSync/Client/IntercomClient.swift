import Foundation
import Synchronization

/// Talks to one Intercom workspace: sends the headers Intercom expects, paces every request
/// through the shared `RateLimitGovernor`, retries transient failures by its `RetryPolicy`, and
/// turns every other answer into a typed `IntercomError`.
package final class IntercomClient: Sendable {
    /// What a client has done so far, for summaries and benchmarks.
    package struct Counters: Sendable, Equatable {
        package var requests = 0
        package var rateLimited = 0
        package var retries = 0
        /// The requests a rate-limit window allows (`X-RateLimit-Limit` of the latest answer).
        package var windowLimit: Int?
        /// The shortest time from sending a request to its answer so far, in seconds: the
        /// server's round trip with no queue in front of it.
        package var fastestRoundTrip: Double?
    }

    package let connection: IntercomConnection
    package let governor: RateLimitGovernor
    package let retryPolicy: RetryPolicy
    private let transport: any HTTPTransport
    private let state = Mutex(Counters())
    /// Told, at each 429 a request waits through, how long it has waited so far (seconds): a
    /// wait of minutes should not be silent.
    private let onRateLimitWait: (@Sendable (_ waited: Double) -> Void)?

    /// `transport` defaults to `defaultHTTPTransport`, bounded by the connection's timeout.
    package init(
        connection: IntercomConnection, transport: (any HTTPTransport)? = nil,
        governor: RateLimitGovernor = RateLimitGovernor(), retryPolicy: RetryPolicy = .standard,
        onRateLimitWait: (@Sendable (_ waited: Double) -> Void)? = nil
    ) {
        self.onRateLimitWait = onRateLimitWait
        self.connection = connection
        self.transport = transport ?? defaultHTTPTransport(timeout: connection.timeout)
        self.governor = governor
        self.retryPolicy = retryPolicy
    }

    package var counters: Counters { state.withLock { $0 } }

    /// Sends a request and hands a successful answer (2xx, 304, or a status in `accepting`) to
    /// `decode`. A reply `decode` cannot read counts as a transient failure (a truncated body)
    /// and is retried like one. An answer longer than `maximumBodyBytes` is refused as it
    /// arrives (`response_too_large`), and not retried.
    package func send<Value>(
        _ method: String, _ path: String, query: [(String, String)] = [], json body: String? = nil,
        headers extraHeaders: [String: String] = [:], accepting: Set<Int> = [], retry: RetryPolicy? = nil,
        maximumBodyBytes: Int = HTTPRequest.maximumPageBytes, decode: (HTTPResponse) throws -> Value
    ) async throws -> Value {
        let policy = retry ?? retryPolicy
        var request = makeRequest(method, path, query: query, body: body, headers: extraHeaders)
        request.maximumBodyBytes = maximumBodyBytes
        // A write that must not happen twice never rides a reused connection (`HTTPRequest`).
        request.freshConnection = policy.scope == .unprocessedOnly
        let operation = "\(method) \(path)"
        let started = Date()
        var attempt = 0
        var timeouts = 0
        var limited = 0
        var limitedSince: ContinuousClock.Instant?
        while true {
            attempt += 1
            let ticket = try await governor.acquire()
            state.withLock { $0.requests += 1 }
            let failure: IntercomError
            do {
                let sent = ContinuousClock.now
                let response = try await transport.send(request)
                let roundTrip = Self.seconds(ContinuousClock.now - sent)
                state.withLock { $0.fastestRoundTrip = min($0.fastestRoundTrip ?? roundTrip, roundTrip) }
                await governor.record(response, ticket: ticket)
                if let limit = response.header("x-ratelimit-limit").flatMap(Int.init) {
                    state.withLock { $0.windowLimit = limit }
                }
                if (200..<300).contains(response.status) || response.status == 304 || accepting.contains(response.status) {
                    do {
                        return try decode(response)
                    } catch {
                        failure = IntercomError(
                            kind: .transient, status: response.status, code: "malformed_response",
                            message: "the answer could not be read (\(error))", operation: operation)
                    }
                } else {
                    failure = IntercomError(response: response, operation: operation)
                    if response.status == 429 {
                        limited += 1
                        state.withLock { $0.rateLimited += 1 }
                        await governor.rateLimited(response, fallback: policy.delay(beforeRetry: limited))
                    }
                }
            } catch let error as HTTPTransportError {
                failure = networkError(error, operation: operation)
            }
            if failure.status == 429 && policy.rateLimitPatience > 0 {
                // Intercom asks to wait, which is no failed attempt: the governor holds every
                // request until the window's reset, for as long as the patience lasts.
                let since = limitedSince ?? ContinuousClock.now
                limitedSince = since
                let waited = Self.seconds(ContinuousClock.now - since)
                guard waited < policy.rateLimitPatience else {
                    var final = failure
                    final.message += String(
                        format: " (still rate-limited after %.0f s and %d answers of 429: Intercom asks to try later)",
                        waited, limited)
                    throw final
                }
                attempt -= 1
                state.withLock { $0.retries += 1 }
                onRateLimitWait?(waited)
                continue
            }
            if failure.code == "timeout" { timeouts += 1 }
            guard policy.allowsRetry(of: failure, attempt: attempt, timeouts: timeouts) else {
                guard attempt > 1, failure.kind == .transient else { throw failure }
                var final = failure
                final.message += String(
                    format: " (gave up after %d attempts over %.0f s)", attempt, Date().timeIntervalSince(started))
                throw final
            }
            state.withLock { $0.retries += 1 }
            if failure.status != 429 {
                try await Task.sleep(for: .seconds(policy.delay(beforeRetry: attempt)))
            }
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// `send` for answers whose body is JSON: the body must be one complete JSON value.
    package func sendJSON(
        _ method: String, _ path: String, query: [(String, String)] = [], json body: String? = nil,
        headers: [String: String] = [:], accepting: Set<Int> = [], retry: RetryPolicy? = nil,
        maximumBodyBytes: Int = HTTPRequest.maximumPageBytes
    ) async throws -> (response: HTTPResponse, text: String) {
        try await send(
            method, path, query: query, json: body, headers: headers, accepting: accepting, retry: retry,
            maximumBodyBytes: maximumBodyBytes
        ) { response in
            let text = String(decoding: response.body, as: UTF8.self)
            if response.status != 304 { try JSONValue.validate(text) }
            return (response, text)
        }
    }

    private func makeRequest(
        _ method: String, _ path: String, query: [(String, String)], body: String?, headers extraHeaders: [String: String]
    ) -> HTTPRequest {
        // `path` is already percent-encoded (an id in it went through `pathComponent`): it is
        // appended as it is, where `appendingPathComponent` would encode its `%` again.
        var components = URLComponents(url: connection.baseURL, resolvingAgainstBaseURL: false)!
        let base = components.percentEncodedPath
        components.percentEncodedPath = (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
        if !query.isEmpty {
            components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
            // URLComponents leaves `+` alone, which servers read as a space.
            components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        }
        var headers = [
            "Authorization": "Bearer \(connection.accessToken)",
            "Intercom-Version": connection.version,
            "Accept": "application/json",
        ]
        if body != nil { headers["Content-Type"] = "application/json" }
        headers.merge(extraHeaders) { $1 }
        return HTTPRequest(
            method: method, url: components.url!, headers: headers, body: body.map { Data($0.utf8) },
            timeout: connection.timeout)
    }

    private func networkError(_ error: HTTPTransportError, operation: String) -> IntercomError {
        switch error {
        case .timedOut:
            IntercomError(
                kind: .transient, status: nil, code: "timeout",
                message: String(format: "no answer within %.0f s", connection.timeout), operation: operation)
        case .unreachable(let detail):
            IntercomError(
                kind: .transient, status: nil, code: "network_unreachable",
                message: "Intercom could not be reached (\(detail))", operation: operation)
        case .connectionLost(let detail):
            IntercomError(
                kind: .transient, status: nil, code: "connection_lost", message: "the connection failed (\(detail))",
                operation: operation)
        case .answersInFlightTooLarge(let limit):
            IntercomError(
                kind: .permanent, status: nil, code: "response_too_large",
                message: "the answers being received at once went past \(limit >> 20) MB together; Intercom's pages are "
                    + "far smaller, so the server at \(connection.baseURL.host ?? "?") is not answering as Intercom does "
                    + "(a workspace of very large contacts would pull with fewer requests at once)",
                operation: operation)
        case .answerTooLarge(let limit, let declared):
            IntercomError(
                kind: .permanent, status: nil, code: "response_too_large",
                message: IntercomError.tooLargeMessage(limit: limit, declared: declared, host: connection.baseURL.host),
                operation: operation)
        }
    }
}
