import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

/// The libcurl transport's own rules, over real HTTP to the simulator: a bounded pool of
/// connections kept alive, a fresh connection for each write that must not repeat, and what a
/// cancelled or timed-out request reports.
@Suite struct CurlTransportTests {
    private func request(_ harness: SimulatorHarness, _ path: String, timeout: TimeInterval = 10) -> HTTPRequest {
        HTTPRequest(
            method: "GET", url: URL(string: harness.simulator.baseURL + path)!,
            headers: ["Authorization": "Bearer \(harness.simulator.accessToken)", "Accept": "application/json"],
            timeout: timeout)
    }

    @Test func requestsBeyondTheBoundWaitForAConnectionOfThePool() async throws {
        let harness = try await SimulatorHarness.start(contacts: 50) { $0.faults.latencyMilliseconds = 30 }
        defer { Task { await harness.stop() } }
        let transport = CurlTransport(timeout: 30, maximumConnectionsPerHost: 4)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<40 {
                group.addTask { try await transport.send(request(harness, "/contacts?per_page=5")).status }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 40))
        let connections = await harness.workspace.connectionCount()
        #expect(connections <= 4, "\(connections) connections for 40 requests at once, 4 allowed")
        let counted = try await transport.send(request(harness, "/_sim/connections"))
        #expect(String(decoding: counted.body, as: UTF8.self) == #"{"connections":\#(connections)}"#)
        // Kept alive: another round reuses them.
        for _ in 0..<8 { _ = try await transport.send(request(harness, "/me")) }
        #expect(await harness.workspace.connectionCount() == connections)
    }

    @Test func aWriteThatMustNotRepeatGoesOutOnAConnectionOfItsOwn() async throws {
        let harness = try await SimulatorHarness.start(contacts: 5)
        defer { Task { await harness.stop() } }
        let transport = CurlTransport(timeout: 10)
        _ = try await transport.send(request(harness, "/me"))
        let before = await harness.workspace.connectionCount()
        for number in 0..<3 {
            var write = request(harness, "/contacts")
            write.method = "POST"
            write.headers["Content-Type"] = "application/json"
            write.body = Data(#"{"role":"user","email":"fresh\#(number)@example.com"}"#.utf8)
            write.freshConnection = true
            let response = try await transport.send(write)
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            #expect(response.header("content-type")?.hasPrefix("application/json") == true)
        }
        #expect(await harness.workspace.connectionCount() == before + 3)
        // The pool's connection is still there for reads.
        _ = try await transport.send(request(harness, "/me"))
        #expect(await harness.workspace.connectionCount() == before + 3)
    }

    @Test func aPostWithoutABodySendsAnEmptyOne() async throws {
        let harness = try await SimulatorHarness.start(contacts: 5)
        defer { Task { await harness.stop() } }
        var post = request(harness, "/contacts/search", timeout: 3)
        post.method = "POST"
        // libcurl reads a POST's body from standard input unless it is given one: with a pipe
        // that never ends on standard input, that would hang until the timeout.
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        let savedInput = dup(0)
        dup2(pipeEnds[0], 0)
        defer {
            dup2(savedInput, 0)
            close(savedInput)
            close(pipeEnds[0])
            close(pipeEnds[1])
        }
        let response = try await CurlTransport(timeout: 3).send(post)
        // The simulator reads the empty body and says what is wrong with it, at once.
        #expect((400..<500).contains(response.status), "\(response.status)")
    }

    @Test func aCancelledReadEndsAtOnceAndACancelledWriteWaitsForItsAnswer() async throws {
        let harness = try await SimulatorHarness.start(contacts: 5) { $0.faults.latencyMilliseconds = 60_000 }
        defer { Task { await harness.stop() } }
        let transport = CurlTransport(timeout: 120)
        let read = Task { try await transport.send(request(harness, "/me", timeout: 120)) }
        try await Task.sleep(for: .milliseconds(200))
        read.cancel()
        await #expect(throws: CancellationError.self) { _ = try await read.value }

        // A write's answer is what says whether it happened: its cancellation waits for it, here
        // until its own timeout.
        var write = request(harness, "/contacts", timeout: 1)
        write.method = "POST"
        write.body = Data(#"{"role":"user","email":"late@example.com"}"#.utf8)
        write.freshConnection = true
        let pinned = write
        let send = Task { try await transport.send(pinned) }
        try await Task.sleep(for: .milliseconds(200))
        send.cancel()
        await #expect(throws: HTTPTransportError.timedOut) { _ = try await send.value }
    }

    @Test func aClosedPortIsUnreachable() async throws {
        let harness = try await SimulatorHarness.start(contacts: 0)
        let url = harness.simulator.baseURL
        await harness.stop()
        let transport = CurlTransport(timeout: 5)
        do {
            _ = try await transport.send(HTTPRequest(method: "GET", url: URL(string: url + "/me")!))
            Issue.record("a stopped server answered")
        } catch let error as HTTPTransportError {
            guard case .unreachable(let detail) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(detail.contains("127.0.0.1") || detail.lowercased().contains("connect"), "\(detail)")
        }
        #expect(try CurlTransport.libraryVersion().hasPrefix("libcurl/"))
    }
}
