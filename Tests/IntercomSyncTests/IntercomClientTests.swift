import Foundation
import IntercomSimulator
import Synchronization
import Testing

@testable import IntercomSync

@Suite struct IntercomClientTests {
    @Test func regionsPickIntercomsHosts() {
        #expect(IntercomRegion(name: "us")?.baseURL.absoluteString == "https://api.intercom.io")
        #expect(IntercomRegion(name: "EU")?.baseURL.absoluteString == "https://api.eu.intercom.io")
        #expect(IntercomRegion(name: "au")?.baseURL.absoluteString == "https://api.au.intercom.io")
        #expect(IntercomRegion(name: "mars") == nil)
    }

    @Test func errorsAreClassifiedByStatusAndCode() {
        #expect(IntercomError.classify(status: 401, code: "unauthorized") == .authentication)
        #expect(IntercomError.classify(status: 403, code: "token_revoked") == .authentication)
        #expect(IntercomError.classify(status: 429, code: "rate_limit_exceeded") == .transient)
        #expect(IntercomError.classify(status: 503, code: "service_unavailable") == .transient)
        #expect(IntercomError.classify(status: 408, code: "request_timeout") == .transient)
        #expect(IntercomError.classify(status: 409, code: "conflict") == .permanent)
        #expect(IntercomError.classify(status: 404, code: "not_found") == .permanent)
    }

    @Test func errorEnvelopeIsDecoded() async throws {
        let harness = try await SimulatorHarness.start(contacts: 1)
        defer { Task { await harness.stop() } }
        let error = try await #require(throws: IntercomError.self) {
            try await harness.client.sendJSON("GET", "/contacts/nope")
        }
        #expect(error.status == 404)
        #expect(error.code == "not_found")
        #expect(error.kind == .permanent)
        #expect(error.requestID?.hasPrefix("sim-") == true)
        #expect(error.description.contains("GET /contacts/nope: 404 not_found"))
        #expect(await harness.workspace.requestLog().count == 1, "a permanent error is not retried")
    }

    @Test func anErrorFromTheServerStaysOneLine() {
        let body = #"{"type":"error.list","request_id":"r\n1","errors":[{"code":"bad\r\ncode","message":"no\r\nfake: line"}]}"#
        let error = IntercomError(response: HTTPResponse(status: 400, body: Data(body.utf8)), operation: "GET /x")
        #expect(!error.description.contains("\n") && !error.description.contains("\r"), "\(error.description)")
        #expect(error.message == "no  fake: line")
    }

    @Test func intercomVersionHeaderIsSent() async throws {
        // A merged contact answers 410 on 2.16 and 404 on 2.15: the header must reach Intercom.
        let harness = try await SimulatorHarness.start(contacts: 30)
        defer { Task { await harness.stop() } }
        let lead = try await harness.contactIDs(role: "lead")[0]
        let user = try await harness.contactIDs(role: "user")[0]
        try await harness.workspace.merge(from: lead, into: user)
        var connection = harness.client.connection
        connection.version = "2.15"
        let older = IntercomClient(connection: connection)
        let newer = try await #require(throws: IntercomError.self) {
            try await harness.client.sendJSON("GET", "/contacts/\(lead)")
        }
        let old = try await #require(throws: IntercomError.self) { try await older.sendJSON("GET", "/contacts/\(lead)") }
        #expect(newer.status == 410 && newer.code == "contact_merged")
        #expect(old.status == 404)
    }

    @Test func unreachableHostIsOfflineAndRetriedBoundedly() async throws {
        let client = IntercomClient(
            connection: IntercomConnection(baseURL: URL(string: "http://127.0.0.1:9")!, accessToken: "t"),
            retryPolicy: RetryPolicy(maximumAttempts: 3, baseDelay: 0.01, maximumDelay: 0.02))
        let error = try await #require(throws: IntercomError.self) { try await client.sendJSON("GET", "/me") }
        #expect(error.isOffline)
        #expect(client.counters.requests == 3)
        #expect(client.counters.retries == 2)
    }

    @Test func writesThatMustNotRepeatRetryOnlyWhenUnprocessed() {
        let once = RetryPolicy(scope: .unprocessedOnly)
        let timeout = IntercomError(kind: .transient, status: nil, code: "timeout", message: "", operation: "POST /messages")
        let limited = IntercomError(kind: .transient, status: 429, code: "rate_limit_exceeded", message: "", operation: "")
        let server = IntercomError(kind: .transient, status: 502, code: "server_error", message: "", operation: "")
        #expect(!once.allowsRetry(of: timeout, attempt: 1))
        #expect(!once.allowsRetry(of: server, attempt: 1))
        #expect(once.allowsRetry(of: limited, attempt: 1))
        #expect(RetryPolicy().allowsRetry(of: server, attempt: 1))
        #expect(!RetryPolicy().allowsRetry(of: server, attempt: 6))
    }

    /// A 429 is Intercom saying "later": a burst longer than the attempts a request has is
    /// waited through, and only the patience ends the wait.
    @Test func burstsOf429AreWaitedThroughUntilThePatienceEnds() async throws {
        let harness = try await SimulatorHarness.start(contacts: 3) {
            $0.faults.rateLimitBurstRate = 1
            $0.faults.rateLimitBurstLength = 10
            $0.faults.routes = ["GET /contacts"]
        }
        defer { Task { await harness.stop() } }
        let client = IntercomClient(
            connection: harness.client.connection,
            retryPolicy: RetryPolicy(maximumAttempts: 2, baseDelay: 0.01, maximumDelay: 0.02, rateLimitPatience: 60))
        // Bursts without end: the patience ends the wait.
        let error = await #expect(throws: IntercomError.self) {
            try await IntercomClient(
                connection: harness.client.connection,
                retryPolicy: RetryPolicy(maximumAttempts: 2, baseDelay: 0.01, maximumDelay: 0.02, rateLimitPatience: 0.5)
            ).sendJSON("GET", "/contacts")
        }
        #expect(error?.isRateLimited == true && error?.message.contains("still rate-limited after") == true)
        #expect(error?.remedy == .tryLater)

        var plan = FaultPlan()
        plan.rateLimitBurstRate = 1
        plan.rateLimitBurstLength = 10
        plan.routes = ["GET /contacts"]
        plan.seed = 2
        await harness.simulator.workspace.setFaults(plan)
        let before = await harness.simulator.workspace.requestLog().filter({ $0.status == 429 }).count
        let finished = Mutex(false)
        let waited = Task {
            defer { finished.withLock { $0 = true } }
            return try await client.sendJSON("GET", "/contacts")
        }
        // Let the burst run its ten (unless the request gave up), then stop starting new ones.
        while await harness.simulator.workspace.requestLog().filter({ $0.status == 429 }).count < before + 10,
            !finished.withLock({ $0 })
        {
            try await Task.sleep(for: .milliseconds(5))
        }
        await harness.simulator.workspace.setFaults(FaultPlan())
        let answer = try await waited.value
        #expect(answer.response.status == 200)
        #expect(client.counters.rateLimited >= 10, "more 429s than the request's two attempts")
    }

    @Test func onlyLoopbackMayBePlainHTTP() {
        for url in [
            "http://127.0.0.1:8700", "http://127.5.6.7", "http://localhost:1", "http://[::1]:80", "https://api.intercom.io",
        ] {
            #expect(!IntercomConnection.sendsTokenInClear(to: URL(string: url)!), "\(url)")
        }
        for url in [
            "http://api.intercom.io", "http://10.0.0.1", "http://0.0.0.0:9", "http://127.0.0.1.evil.example", "http://128.0.0.1",
        ] {
            #expect(IntercomConnection.sendsTokenInClear(to: URL(string: url)!), "\(url)")
        }
    }
}
