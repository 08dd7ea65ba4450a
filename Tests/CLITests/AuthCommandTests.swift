import CLISupport
import Foundation
import IntercomSimulator
import Testing

@testable import IntercomSync

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `auth login|token|status|logout`, the credentials file, the token's secrecy, and the demo.
@Suite(.serialized) struct AuthCommandTests {
    /// A browser that approves at the authorize URL but does not follow the redirect: returns
    /// the `Location` it was sent to.
    final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }

    static func approve(_ authorizeURL: String) async throws -> String {
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        let (_, response) = try await session.data(from: URL(string: authorizeURL)!)
        return try #require((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Location"))
    }

    /// Starts `auth login`, waits for the authorize URL it prints, and hands it to `browse`,
    /// whose answer (if any) is typed at the prompt. Returns the finished process's result.
    static func login(
        _ arguments: [String], environment: [String: String], browse: @escaping @Sendable (String) async throws -> String?
    ) async throws -> CLI.Result {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["auth", "login"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var stderr = Data()
        var url: String?
        while url == nil {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            stderr += chunk
            url = String(decoding: stderr, as: UTF8.self).split(separator: "\n")
                .first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("http") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if let url, let answer = try await browse(url) {
            input.fileHandleForWriting.write(Data((answer + "\n").utf8))
        }
        try input.fileHandleForWriting.close()
        let (stdout, rest) = try await CLI.offPool {
            (output.fileHandleForReading.readDataToEndOfFile(), errors.fileHandleForReading.readDataToEndOfFile())
        }
        process.waitUntilExit()
        return CLI.Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr + rest, as: UTF8.self))
    }

    static func environment(_ folder: URL) -> [String: String] {
        ["INTERCOM_SYNC_CREDENTIALS": folder.appendingPathComponent("config/credentials.json").path]
    }

    static let app = ["--client-id", "sim-client-id", "--client-secret", "sim-client-secret"]

    @Test func pastedRedirectLogsInAndStoresPrivately() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 5)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let environment = Self.environment(workspace.folder)
        let path = environment["INTERCOM_SYNC_CREDENTIALS"]!
        let result = try await Self.login(
            Self.app + ["--redirect-uri", "https://app.example.com/intercom/callback", "--base-url", simulator.baseURL],
            environment: environment
        ) { url in
            #expect(url.contains("state=") && url.contains("client_id=sim-client-id"))
            return try await Self.approve(url)
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("logged in: workspace sim4ws2x (US)"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        let folder = try FileManager.default.attributesOfItem(atPath: (path as NSString).deletingLastPathComponent)
        #expect(folder[.posixPermissions] as? Int == 0o700)
        let stored = try #require(try CredentialStore(path: path).load())
        #expect(stored.method == .oauth && stored.baseURL == simulator.baseURL)
        #expect(!result.stdout.contains(stored.accessToken) && !result.stderr.contains(stored.accessToken))
        #expect(!(try String(contentsOfFile: path, encoding: .utf8)).contains("sim-client-secret"), "the secret is never stored")

        // The stored login is used by the other commands.
        let sync = try await CLI.runOffPool(["sync", "--db", workspace.db], environment: environment)
        #expect(sync.status == 0, "\(sync.stderr)")
        let status = try CLI.run(["auth", "status"], environment: environment)
        #expect(status.stdout.contains("token \(stored.fingerprint)") && status.stdout.contains(path))
        #expect(!status.stdout.contains(stored.accessToken))
        let logout = try CLI.run(["auth", "logout"], environment: environment)
        #expect(logout.status == 0 && !FileManager.default.fileExists(atPath: path))
        #expect(try CLI.run(["auth", "status"], environment: environment).status == 1)
    }

    @Test func listenerCatchesTheRedirect() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 1)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let environment = Self.environment(workspace.folder)
        let result = try await Self.login(
            Self.app + ["--listen", "0", "--base-url", simulator.baseURL], environment: environment
        ) { url in
            #expect(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"))
            // A browser follows the redirect to the listener, which answers and stops.
            let (page, _) = try await URLSession.shared.data(from: URL(string: url)!)
            #expect(String(decoding: page, as: UTF8.self).contains("You can close this window"))
            return nil
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: environment["INTERCOM_SYNC_CREDENTIALS"]!))
    }

    @Test func aForeignStateOrABadCodeIsRefusedAndStoresNothing() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 1)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let environment = Self.environment(workspace.folder)
        let arguments = Self.app + ["--redirect-uri", "https://app.example.com/cb", "--base-url", simulator.baseURL]
        let forged = try await Self.login(arguments, environment: environment) { url in
            let location = try await Self.approve(url)
            return location.replacingOccurrences(of: "state=", with: "state=forged")
        }
        #expect(forged.status == 1)
        #expect(forged.stderr.contains("state is not this login's") && forged.stderr.contains("nothing was stored"))
        let badCode = try await Self.login(arguments, environment: environment) { url in
            let state = try #require(URLComponents(string: url)?.queryItems?.first { $0.name == "state" }?.value)
            return "https://app.example.com/cb?code=bogus%3D&state=\(state)"
        }
        #expect(badCode.status == 1)
        #expect(badCode.stderr.contains("401 unauthorized: Unauthorized Code"), "\(badCode.stderr)")
        #expect(badCode.stderr.contains("run `auth login` again"))
        #expect(!FileManager.default.fileExists(atPath: environment["INTERCOM_SYNC_CREDENTIALS"]!))
    }

    @Test func aCredentialsFileOthersCanReadIsRefused() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 1)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let environment = Self.environment(workspace.folder)
        let stored = try await CLI.runOffPool(
            ["auth", "token", "-", "--base-url", simulator.baseURL], environment: environment,
            input: Data((simulator.accessToken + "\n").utf8))
        #expect(stored.status == 0, "\(stored.stderr)")
        #expect(!stored.stdout.contains(simulator.accessToken))
        let path = environment["INTERCOM_SYNC_CREDENTIALS"]!
        chmod(path, 0o644)
        for command in [["auth", "status"], ["sync", "--db", workspace.db]] {
            let refused = try await CLI.runOffPool(command, environment: environment)
            #expect(refused.status == 1, "\(command)")
            #expect(refused.stderr.contains("can be read by other users (mode 644)"), "\(command): \(refused.stderr)")
            #expect(refused.stderr.contains("chmod 600 \(path)"))
        }
        let wrong = try await CLI.runOffPool(
            ["auth", "token", "-", "--base-url", simulator.baseURL], environment: environment, input: Data("nope\n".utf8))
        #expect(wrong.status == 1 && wrong.stderr.contains("log in again"))
    }

    /// Every command that talks to Intercom, at -vv, with a token that is then revoked: the token
    /// appears in no output and not in the mirror, and each command refused says to log in again.
    @Test func theTokenNeverShowsAndARevokedOneSaysToLogInAgain() async throws {
        let simulator = try await SyncCommandTests.simulator(contacts: 30)
        defer { Task { await simulator.stop() } }
        let workspace = try Workspace(contacts: 0)
        let environment = Self.environment(workspace.folder)
        let token = simulator.accessToken
        let base = ["--base-url", simulator.baseURL, "-vv"]
        let db = ["--db", workspace.db]
        var outputs: [CLI.Result] = []
        outputs.append(
            try await CLI.runOffPool(["auth", "token", "-"] + base, environment: environment, input: Data(token.utf8)))
        outputs.append(try await CLI.runOffPool(["sync"] + base + db, environment: environment))
        outputs.append(try await CLI.runOffPool(["sync", "--reconcile"] + base + db, environment: environment))
        let id = await simulator.workspace.contactIDs()[0]
        outputs.append(
            try await CLI.runOffPool(["contacts", "get", id, "--refresh", "--json"] + base + db, environment: environment))
        outputs.append(try CLI.run(["contacts", "create", "--email", "v@example.com"] + db, environment: environment))
        outputs.append(try CLI.run(["messages", "send", "--to", "v@example.com", "--body", "hi"] + db, environment: environment))
        outputs.append(
            try await CLI.runOffPool(
                ["contacts", "import", ImportCommandTests.fixture("quoted-commas.csv"), "--push"] + base + db,
                environment: environment))
        outputs.append(try await CLI.runOffPool(["outbox", "flush"] + base + db, environment: environment))
        outputs.append(try CLI.run(["auth", "status", "--json"], environment: environment))
        outputs.append(try CLI.run(["status", "--json"] + db, environment: environment))
        for (index, result) in outputs.enumerated() {
            #expect(result.status == 0, "command \(index): \(result.stderr)")
            #expect(!result.stdout.contains(token) && !result.stderr.contains(token), "command \(index) showed the token")
        }
        #expect(outputs[1].stderr.contains("GET http://127.0.0.1:") && outputs[1].stderr.contains("Bearer <sha256:"))
        for file in [workspace.db, workspace.db + "-wal"] where FileManager.default.fileExists(atPath: file) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            #expect(bytes.range(of: Data(token.utf8)) == nil, "\(file) holds the token")
        }

        await simulator.workspace.revoke(token: token)
        _ = try CLI.run(["contacts", "create", "--email", "w@example.com"] + db, environment: environment)
        for command in [
            ["sync"], ["contacts", "get", id, "--refresh"], ["outbox", "flush"],
            ["contacts", "import", ImportCommandTests.fixture("export-bom-crlf.csv"), "--push"],
        ] {
            let refused = try await CLI.runOffPool(command + base + db, environment: environment)
            #expect(refused.status != 0, "\(command)")
            #expect(refused.stderr.contains("log in again"), "\(command): \(refused.stderr)")
            #expect(!refused.stderr.contains(token) && !refused.stdout.contains(token))
        }
    }

    @Test func theDemoWalksTheWholeLoop() async throws {
        let result = try await CLI.runOffPool(["demo", "--contacts", "500"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.components(separatedBy: "✓").count == 11, "ten steps: \(result.stdout)")
        #expect(result.stdout.contains("If-None-Match → 304"))
        #expect(result.stdout.contains(#"mine "Renamed Offline", theirs "Renamed By A Colleague"); kept mine"#))
        #expect(result.stdout.contains("demo: every step behaved as it should"))
    }
}
