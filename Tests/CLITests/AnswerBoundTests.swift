import Foundation
import Testing

@testable import IntercomSync

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A broken or hostile server (or a proxy in the middle) must not be able to take the machine's
/// memory: every answer is bounded before and after decompression, the bound is enforced as the
/// bytes arrive, and the command fails at once naming the request and the size. Each case runs
/// the binary and reads its peak resident memory from the kernel (`wait4`).
@Suite(.serialized) struct AnswerBoundTests {
    /// What the kernel reports of a finished child: its exit status, output and peak memory.
    struct Measured {
        var status: Int32
        var stdout: String
        var stderr: String
        var peakMegabytes: Int
    }

    /// Runs the binary with `posix_spawn` and reaps it with `wait4`, whose `ru_maxrss` is the
    /// child's own high-water mark (Foundation's `Process` reaps its children itself).
    static func runMeasured(_ arguments: [String], environment: [String: String], input: String = "") throws -> Measured {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("measured-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let inputPath = folder.appendingPathComponent("in").path
        try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
        let outPath = folder.appendingPathComponent("out").path
        let errPath = folder.appendingPathComponent("err").path
        var env = ProcessInfo.processInfo.environment
        env["INTERCOM_SYNC_DB"] = nil
        env["INTERCOM_ACCESS_TOKEN"] = nil
        env["INTERCOM_SYNC_CREDENTIALS"] = folder.appendingPathComponent("credentials.json").path
        env.merge(environment) { $1 }
        #if canImport(Glibc)
            var actions = posix_spawn_file_actions_t()
        #else
            var actions: posix_spawn_file_actions_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([CLI.binary.path] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, CLI.binary.path, &actions, nil, argv, envp)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        // Linux reports kilobytes, macOS bytes.
        #if canImport(Darwin)
            let peak = Int(usage.ru_maxrss) >> 20
        #else
            let peak = Int(usage.ru_maxrss) >> 10
        #endif
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Measured(status: exit, stdout: read(outPath), stderr: read(errPath), peakMegabytes: peak)
    }

    static let me = #"{"type":"admin","id":"1","email":"a@example.com","app":{"id_code":"hostile1","timezone":"UTC"}}"#
    /// Well under the hundreds of megabytes and gigabytes the cases send.
    static let memoryCeiling = 300

    /// `sync` against `server` into a new mirror.
    static func sync(_ server: HostileServer) throws -> Measured {
        let workspace = try Workspace(contacts: 0)
        return try runMeasured(
            ["sync", "--db", workspace.db, "--base-url", server.baseURL], environment: ["INTERCOM_ACCESS_TOKEN": "tok_hostile"])
    }

    static func expectRefused(_ result: Measured, _ what: String, saying words: [String]) {
        #expect(result.status != 0, "\(what): \(result.stderr)")
        for word in words { #expect(result.stderr.contains(word), "\(what): \(result.stderr)") }
        #expect(result.stderr.contains("response_too_large"), "\(what): \(result.stderr)")
        #expect(result.peakMegabytes < memoryCeiling, "\(what): peak \(result.peakMegabytes) MB")
    }

    @Test func aMeThatDeclaresFourGigabytesIsRefusedAtItsHeaders() throws {
        let server = try HostileServer { _ in .declaring(declared: 4 << 30) }
        defer { server.stop() }
        let result = try Self.sync(server)
        Self.expectRefused(result, "4 GB declared", saying: ["GET /me", "declared 4294967296 bytes", "1 MB"])
    }

    @Test func aMeThatNeverEndsIsCutOffAtItsBound() throws {
        let server = try HostileServer { _ in .endless }
        defer { server.stop() }
        let result = try Self.sync(server)
        // The plan's first requests go out beside /me: whichever passes its bound first is named.
        Self.expectRefused(result, "endless /me to sync", saying: ["MB"])
        let login = try Self.runMeasured(
            ["auth", "token", "-", "--base-url", server.baseURL], environment: [:], input: "tok_hostile\n")
        Self.expectRefused(login, "endless /me to auth token", saying: ["GET /me", "went past the 1 MB"])
    }

    @Test func aLargeMeIsRefused() throws {
        let server = try HostileServer { _ in .large(size: 600 << 20) }
        defer { server.stop() }
        let result = try Self.sync(server)
        Self.expectRefused(result, "600 MB /me", saying: ["GET /me", "declared 629145600 bytes"])
    }

    @Test func aGzipBombIsCutOffAsItUnpacks() throws {
        let bomb = HostileServer.gzipBomb(megabytes: 100)
        #expect(bomb.count < 1 << 20, "the bomb passes the bound on the wire: \(bomb.count) bytes")
        let server = try HostileServer { _ in .gzip(bomb) }
        defer { server.stop() }
        let login = try Self.runMeasured(
            ["auth", "token", "-", "--base-url", server.baseURL], environment: [:], input: "tok_hostile\n")
        Self.expectRefused(login, "gzip /me to auth token", saying: ["GET /me", "went past the 1 MB"])
        let sync = try Self.sync(server)
        // The plan's first requests go out beside /me: whichever passes its bound first is named.
        Self.expectRefused(sync, "gzip /me to sync", saying: ["MB"])
    }

    /// Answers each under their own bound, received at once, share a budget: twenty of 20 MB
    /// cannot hold 400 MB between them.
    @Test func answersInFlightShareABudget() async throws {
        let server = try HostileServer { _ in .large(size: 20 << 20) }
        defer { server.stop() }
        let transport = CurlTransport(timeout: 30, maximumConnectionsPerHost: 20)
        let outcomes = await withTaskGroup(of: (any Error)?.self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        _ = try await transport.send(HTTPRequest(method: "GET", url: URL(string: server.baseURL + "/p\(index)")!))
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var outcomes: [(any Error)?] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let refused = outcomes.compactMap { $0 as? HTTPTransportError }.filter {
            $0 == .answersInFlightTooLarge(limit: HTTPTransportError.maximumBytesInFlight)
        }
        #expect(!refused.isEmpty, "\(outcomes)")
        #expect(outcomes.filter { $0 == nil }.count <= HTTPTransportError.maximumBytesInFlight / (20 << 20))
    }

    @Test func aPageLargerThanAnyIntercomSendsIsRefused() throws {
        for (what, page) in [
            ("a page of 1.5 GB", HostileServer.Answer.large(size: 1536 << 20)),
            ("a page without end", .endless),
            ("a gzip page of 200 MB", .gzip(HostileServer.gzipBomb(megabytes: 200))),
        ] {
            let server = try HostileServer { path in path == "/me" ? .json(Self.me) : page }
            defer { server.stop() }
            let result = try Self.sync(server)
            Self.expectRefused(result, what, saying: ["MB"])
            #expect(server.requests.contains("/me") && server.requests.count > 1, "\(what): \(server.requests)")
        }
    }
}
