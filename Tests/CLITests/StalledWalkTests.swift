import Foundation
import IntercomSimulator
import Synchronization
import Testing

/// A server that keeps a walk from moving forward (a cursor it gave before, 429 without end)
/// stops the sync with exit 4, after a bounded number of requests, and the walk resumes later.
@Suite(.serialized, .timeLimit(.minutes(2))) struct StalledWalkTests {
    static let me = #"{"type":"admin","id":"1","app":{"id_code":"loop1","timezone":"UTC"}}"#

    /// Every page of contacts holds the same contact and points at the same cursor.
    static func loopingServer() async throws -> StubServer {
        try await StubServer.start { method, path in
            switch path {
            case "/me":
                return StubServer.Answer(status: 200, body: me)
            case "/contacts", "/contacts/search":
                let contact = #"{"type":"contact","id":"c1","role":"user","created_at":1734537000,"updated_at":1734537000}"#
                return StubServer.Answer(
                    status: 200,
                    body:
                        #"{"type":"list","data":[\#(contact)],"total_count":2,"pages":{"type":"pages","next":{"starting_after":"same"}}}"#
                )
            case "/segments":
                return StubServer.Answer(status: 200, body: #"{"type":"segment.list","segments":[]}"#)
            default:
                return StubServer.Answer(status: 200, body: #"{"type":"list","data":[],"total_count":0}"#)
            }
        }
    }

    @Test(arguments: [["--concurrency", "1"], ["--concurrency", "4"]])
    func aCursorGivenTwiceStopsTheWalk(flags: [String]) async throws {
        let server = try await Self.loopingServer()
        defer { Task { await server.stop() } }
        let workspace = try Workspace(contacts: 0)
        let arguments = ["sync", "--db", workspace.db, "--base-url", server.baseURL] + flags
        let token = ["INTERCOM_ACCESS_TOKEN": "tok_loop"]
        // A loop would run until killed: the sync must end by itself, long before a minute.
        let ended = try await CLI.offPool { try CLI.runKilled(arguments, environment: token, after: .seconds(60)) }
        try #require(ended == 4, "\(flags): the walk ended by itself with exit 4, not \(String(describing: ended))")
        let result = try await CLI.runOffPool(arguments, environment: token)
        #expect(result.status == 4, "\(flags): \(result.stderr)")
        #expect(result.stderr.contains("cursor it had given before") || result.stderr.contains("page it had sent before"))
        #expect(result.stderr.contains("run the same command again later"), "\(result.stderr)")
        let pages = server.requests.filter { $0.path == "/contacts" || $0.path == "/contacts/search" }
        #expect(pages.count < 80, "\(flags): \(pages.count) page requests in two runs")
        let status = try CLI.run(["status", "--json", "--db", workspace.db])
        #expect(status.stdout.contains(#""full_pull":"interrupted""#), "resumable: \(status.stdout)")
    }

    /// New contacts on every page and a cursor for more, far past the count the server gave:
    /// stopped, not left to fill the disk.
    @Test func aWalkFarPastItsCountStops() async throws {
        let served = PageCounter()
        let server = try await StubServer.start { _, path in
            switch path {
            case "/me": return StubServer.Answer(status: 200, body: Self.me)
            case "/contacts", "/contacts/search":
                let page = served.next()
                let contacts = (0..<150).map {
                    #"{"type":"contact","id":"c\#(page)-\#($0)","role":"user","created_at":1734537000,"updated_at":1734537000}"#
                }
                return StubServer.Answer(
                    status: 200,
                    body: #"{"type":"list","data":[\#(contacts.joined(separator: ","))],"total_count":300,"#
                        + #""pages":{"type":"pages","next":{"starting_after":"p\#(page)"}}}"#)
            case "/segments": return StubServer.Answer(status: 200, body: #"{"type":"segment.list","segments":[]}"#)
            default: return StubServer.Answer(status: 200, body: #"{"type":"list","data":[],"total_count":0}"#)
            }
        }
        defer { Task { await server.stop() } }
        let workspace = try Workspace(contacts: 0)
        let arguments = ["sync", "--concurrency", "1", "--db", workspace.db, "--base-url", server.baseURL]
        let token = ["INTERCOM_ACCESS_TOKEN": "tok_more"]
        let ended = try await CLI.offPool { try CLI.runKilled(arguments, environment: token, after: .seconds(60)) }
        try #require(ended == 4, "the walk ended by itself with exit 4, not \(String(describing: ended))")
        let result = try await CLI.runOffPool(arguments, environment: token)
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("in a walk it counts 300"), "\(result.stderr)")
        #expect(served.count < 80, "pages asked for in two runs: \(served.count)")
    }

    /// 429 after 429 on the pages: the sync keeps waiting (each 429 is no failed attempt) until
    /// its patience runs out, then exits 4; once Intercom lets it through, it resumes.
    @Test func rateLimitingWithoutEndExitsFourAndResumes() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 600)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let token = ["INTERCOM_ACCESS_TOKEN": simulator.accessToken]
        let first = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--concurrency", "1"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(first.status == 0, "\(first.stderr)")
        try await simulator.workspace.edit(id: await simulator.workspace.contactIDs()[0], fieldsJSON: #"{"name":"Later"}"#)

        var faults = FaultPlan()
        faults.rateLimitBurstRate = 1
        faults.rateLimitBurstLength = 1_000_000
        faults.routes = ["POST /contacts/search", "GET /contacts"]
        await simulator.workspace.setFaults(faults)
        let started = Date()
        let limited = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync", "--rate-limit-patience", "3"], db: workspace.db, simulator: simulator),
            environment: token)
        #expect(limited.status == 4, "\(limited.stderr)")
        #expect(limited.stderr.contains("kept answering 429") && limited.stderr.contains("still rate-limited after"))
        #expect(limited.stderr.contains("Intercom is answering 429 (rate limited): waiting"), "the wait is not silent")
        #expect(Date().timeIntervalSince(started) >= 3, "it waited for its patience")
        let tries = await simulator.workspace.requestLog().filter { $0.status == 429 }.count
        #expect(tries > 6, "more 429s than a request has attempts: \(tries)")

        await simulator.workspace.setFaults(FaultPlan())
        let resumed = try await CLI.runOffPool(
            SyncCommandTests.arguments(["sync"], db: workspace.db, simulator: simulator), environment: token)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let found = try CLI.run(["contacts", "query", "--name", "Later", "--db", workspace.db])
        #expect(found.stdout.contains("Later"), "\(found.stdout)")
    }
}

/// Counts the pages a stub server has served, from its handler's threads.
final class PageCounter: Sendable {
    private let served = Mutex(0)

    var count: Int { served.withLock { $0 } }

    func next() -> Int {
        served.withLock { value in
            value += 1
            return value
        }
    }
}
