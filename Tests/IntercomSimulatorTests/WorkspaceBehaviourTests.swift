import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct WorkspaceBehaviourTests {
    @Test func aSmallFirstPageOfALargeAnswerIsTheSortsFirstPage() async throws {
        let client = Client { $0.seedContacts = 1_000 }
        func ids(perPage: Int, order: String) async -> [String] {
            let body =
                #"{"query":{"field":"updated_at","operator":">","value":0},"pagination":{"per_page":\#(perPage)},"sort":{"field":"updated_at","order":"\#(order)"}}"#
            let answer = await client.send("POST", "/contacts/search", json: body)
            guard case .array(let data)? = answer.json["data"] else { return [] }
            return data.compactMap { $0["id"]?.string }
        }
        for order in ["ascending", "descending"] {
            // 5 a page takes the best 5 by insertion; 150 of 1,000 sorts the whole answer.
            let small = await ids(perPage: 5, order: order)
            let sorted = await ids(perPage: 150, order: order)
            #expect(small.count == 5)
            #expect(small == Array(sorted.prefix(5)), "\(order)")
        }
    }

    private func message(_ client: Client, _ fields: String) async -> SimResponse {
        await client.send("POST", "/messages", json: "{\(fields)}")
    }

    @Test func messagesFollowIntercomsRules() async throws {
        let client = Client { $0.seedContacts = 3 }
        let to = try #require(await client.workspace.contactIDs().first)
        let from = #""from":{"type":"admin","id":"991267459"}"#
        let target = #""to":{"type":"user","id":"\#(to)"}"#
        let inapp = await message(client, #""message_type":"inapp","body":"Hi",\#(from),\#(target)"#)
        #expect(inapp.status == 200)
        #expect(inapp.json["type"] == "admin_message")
        #expect(inapp.json["message_type"] == "inapp")
        #expect(inapp.json["owner"]?["id"] == "991267459")
        #expect(inapp.json["created_at"] == .int(1_767_225_600))
        let email = await message(
            client, #""message_type":"email","subject":"S","body":"B","template":"plain",\#(from),\#(target)"#)
        #expect(email.json["subject"] == "S")
        let noSubject = await message(client, #""message_type":"email","body":"B","template":"plain",\#(from),\#(target)"#)
        #expect(noSubject.status == 422)
        #expect(noSubject.errorMessage == "No subject supplied for email message")
        let noTemplate = await message(client, #""message_type":"email","subject":"S","body":"B",\#(from),\#(target)"#)
        #expect(noTemplate.status == 400)
        let noBody = await message(client, #""message_type":"inapp",\#(from),\#(target)"#)
        #expect(noBody.errorMessage == "Body is required")
        let notAdmin = await message(client, #""message_type":"inapp","body":"Hi","from":{"type":"admin","id":"1"},\#(target)"#)
        #expect(notAdmin.status == 404)
        let nobody = await message(client, #""message_type":"inapp","body":"Hi",\#(from),"to":{"type":"user","id":"missing"}"#)
        #expect(nobody.status == 404)
        #expect(await client.workspace.sentMessages().count == 2)
    }

    @Test func rateLimitWindowsCountDownAnswer429AndRefill() async {
        let client = Client {
            $0.rateLimit = 3
            $0.rateLimitWindowSeconds = 10
        }
        var remaining: [String?] = []
        for _ in 0..<3 { remaining.append(await client.send("GET", "/me").header("X-RateLimit-Remaining")) }
        #expect(remaining == ["2", "1", "0"])
        let limited = await client.send("GET", "/me")
        #expect(limited.status == 429)
        #expect(limited.errorCode == "rate_limit_exceeded")
        #expect(limited.errorMessage == "Exceeded rate limit of 3 in 10_seconds")
        #expect(limited.header("X-RateLimit-Limit") == "3")
        #expect(limited.header("X-RateLimit-Reset") == String(1_767_225_610))
        client.workspace.clock.advance(by: 10)
        #expect(await client.send("GET", "/me").status == 200)
    }

    @Test func faultsAreDeterministicFromTheirSeed() async {
        func statuses(seed: UInt64) async -> [Int] {
            let client = Client {
                $0.faults.serverErrorRate = 0.3
                $0.faults.rateLimitBurstRate = 0.05
                $0.faults.rateLimitBurstLength = 3
                $0.faults.seed = seed
            }
            var statuses: [Int] = []
            for _ in 0..<200 { statuses.append(await client.send("GET", "/me").status) }
            return statuses
        }
        let first = await statuses(seed: 4)
        #expect(first == (await statuses(seed: 4)))
        #expect(first != (await statuses(seed: 5)))
        #expect(first.contains(429) && first.contains(200))
        #expect(first.contains { [500, 502, 503].contains($0) })
        let share = Double(first.filter { $0 >= 500 }.count) / 200
        #expect(share > 0.1 && share < 0.5)
    }

    @Test func lostResponsesCommitTheWriteAndTruncatedBodiesDoNotParse() async throws {
        let lost = Client { $0.faults.lostResponseRate = 1 }
        let request = SimRequest(
            method: "POST", path: "/contacts",
            headers: ["Authorization": "Bearer sim-access-token", "Content-Type": "application/json"],
            body: Array(#"{"email":"lost@example.com"}"#.utf8))
        let outcome = await lost.workspace.handle(request)
        #expect(outcome.lost)
        #expect(await lost.workspace.contactIDs().count == 1, "the write happened")
        let logged = try #require(await lost.workspace.requestLog().last)
        #expect(logged.method == "POST" && logged.path == "/contacts" && logged.status == 200 && logged.lost)
        #expect(logged.time == 1_767_225_600)
        #expect(logged.rateLimitReset == 1_767_225_610)
        let truncated = Client {
            $0.seedContacts = 2
            $0.faults.truncatedBodyRate = 1
        }
        let response = await truncated.send("GET", "/contacts")
        #expect(response.status == 200)
        #expect(throws: (any Error).self) { try JSONValue(jsonText: response.body) }
        let slow = Client {
            $0.faults.latencyMilliseconds = 25
            $0.faults.jitterMilliseconds = 10
        }
        let delay = await slow.workspace.handle(
            SimRequest(method: "GET", path: "/me", headers: ["Authorization": "Bearer sim-access-token"])
        )
        .delayMilliseconds
        #expect((25...35).contains(delay))
    }

    @Test func oauthApprovesRedirectsAndExchangesACodeOnce() async throws {
        let client = Client()
        let authorize = await client.workspace.handle(
            SimRequest(
                method: "GET", path: "/oauth",
                query: ["client_id": "sim-client-id", "state": "a b&c", "redirect_uri": "http://127.0.0.1:9/callback"])
        ).response
        #expect(authorize.status == 302)
        let location = try #require(authorize.header("Location").flatMap(URLComponents.init(string:)))
        #expect(location.host == "127.0.0.1")
        #expect(location.path == "/callback")
        let items = Dictionary(uniqueKeysWithValues: (location.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(items["state"] == "a b&c")
        let code = try #require(items["code"])
        #expect(code.hasSuffix("="))
        func exchange(_ code: String, secret: String = "sim-client-secret") async -> SimResponse {
            let form = "code=\(SimulatedWorkspace.formEncode(code))&client_id=sim-client-id&client_secret=\(secret)"
            return await client.workspace.handle(
                SimRequest(
                    method: "POST", path: "/auth/eagle/token", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                    body: Array(form.utf8))
            ).response
        }
        #expect(await exchange(code, secret: "wrong").status == 401)
        let granted = await exchange(code)
        #expect(granted.status == 200)
        #expect(granted.json["token_type"] == "Bearer")
        let token = try #require(granted.json["access_token"]?.string)
        #expect(granted.json["token"] == .string(token))
        let reused = await exchange(code)
        #expect(reused.status == 401)
        #expect(reused.errorMessage == "Unauthorized Code")
        var user = client
        user.token = token
        #expect(await user.send("GET", "/me").json["app"]?["timezone"] == "America/Los_Angeles")
        let unknownClient = await client.workspace.handle(
            SimRequest(method: "GET", path: "/oauth", query: ["client_id": "other", "redirect_uri": "http://127.0.0.1:9/"]))
        #expect(unknownClient.response.status == 400)
    }

    @Test func controlAPIChangesContactsMovesTimeAndExportsStateAndLog() async throws {
        let client = Client { $0.seedContacts = 3 }
        let id = try #require(await client.workspace.contactIDs().first)
        func control(_ method: String, _ path: String, _ body: String = "") async -> SimResponse {
            await client.workspace.handle(SimRequest(method: method, path: path, body: Array(body.utf8))).response
        }
        #expect(await control("POST", "/_sim/clock", #"{"advance":3600}"#).json["now"] == .int(1_767_229_200))
        #expect(await control("POST", "/_sim/contacts/\(id)", #"{"name":"Edited"}"#).status == 200)
        let edited = await client.send("GET", "/contacts/\(id)")
        #expect(edited.json["name"] == "Edited")
        #expect(edited.json["updated_at"] == .int(1_767_229_200))
        let created = await control("POST", "/_sim/contacts", #"{"email":"new@example.com","role":"lead"}"#)
        let newID = try #require(created.json["id"]?.string)
        #expect(await control("POST", "/_sim/merge", #"{"from":"\#(newID)","into":"\#(id)"}"#).status == 200)
        #expect(await control("DELETE", "/_sim/contacts/\(id)").status == 200)
        #expect(await control("POST", "/_sim/faults", #"{"server_error_rate":1}"#).status == 200)
        #expect([500, 502, 503].contains(await client.send("GET", "/me").status))
        #expect(await control("POST", "/_sim/faults", #"{"bogus":1}"#).status == 400)
        let state = await control("GET", "/_sim/state").json
        #expect(state["contacts"]?.items.count == 2)
        #expect(state["deleted"] == .array([.string(id)]))
        #expect(state["merged"]?[newID] == .string(id))
        let log = await control("GET", "/_sim/log").json["requests"]?.items ?? []
        #expect(log.map { $0["path"]?.string ?? "" } == ["/contacts/\(id)", "/me"])
        #expect(log.first?["status"] == 200)
    }

    @Test func servesHTTPOnLoopbackWithAFreePort() async throws {
        var configuration = SimulatorConfiguration()
        configuration.seedContacts = 5
        let simulator = try await IntercomSimulator.start(configuration)
        #expect(simulator.port > 0)
        #expect(simulator.baseURL == "http://127.0.0.1:\(simulator.port)")
        let id = try #require(await simulator.workspace.contactIDs().first)
        var request = URLRequest(url: URL(string: "\(simulator.baseURL)/contacts/\(id)")!)
        request.setValue("Bearer \(simulator.accessToken)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        #expect(http.value(forHTTPHeaderField: "X-RateLimit-Limit") == "1667")
        #expect(try JSONValue(jsonText: String(decoding: data, as: UTF8.self))["id"] == .string(id))
        await simulator.stop()
        await #expect(throws: (any Error).self) { _ = try await URLSession.shared.data(for: request) }
    }

    /// Over a real connection, a lost answer is no answer at all: the write commits, and after
    /// the delay the connection closes without a byte of reply.
    @Test func aLostAnswerClosesTheConnectionWithoutAReply() async throws {
        var configuration = SimulatorConfiguration()
        configuration.faults.lostResponseRate = 1
        configuration.faults.lostResponseDelaySeconds = 1
        let simulator = try await IntercomSimulator.start(configuration)
        let body = #"{"email":"lost@example.com"}"#
        let request =
            "POST /contacts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(simulator.accessToken)\r\n"
            + "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let port = simulator.port
        let (reply, closed, seconds) = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.exchange(request, port: port) })
            }
        }
        #expect(reply.isEmpty, "no reply: \(String(decoding: reply, as: UTF8.self))")
        // Not an upper bound on time: a loaded test run may wake the simulator late. It must
        // close, though, rather than leave the connection hanging.
        #expect(closed, "the connection was left open for \(seconds) s")
        #expect(seconds >= 0.9, "closed after \(seconds) s, before the delay")
        #expect(await simulator.workspace.contactIDs().count == 1, "the write committed")
        #expect(await simulator.workspace.requestLog().last?.lost == true)
        await simulator.stop()
    }

    /// Sends raw bytes to 127.0.0.1:`port` and reads until the server closes the connection
    /// (`closed`) or 30 s pass.
    static func exchange(_ request: String, port: Int) throws -> (reply: [UInt8], closed: Bool, seconds: Double) {
        struct SocketFailure: Error {}
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SocketFailure() }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw SocketFailure() }
        var timeLimit = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeLimit, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return (reply, count == 0, Date().timeIntervalSince(started)) }
            reply += buffer[0..<count]
        }
    }

    /// A simulator left running keeps only its latest requests.
    @Test func theRequestLogKeepsTheLatestRequestsOnly() async throws {
        let client = Client {
            $0.seedContacts = 1
            $0.requestLogCapacity = 10
        }
        for index in 0..<25 { await client.send("GET", "/contacts/missing-\(index)") }
        let log = await client.workspace.requestLog()
        #expect((5...10).contains(log.count))
        #expect(log.last?.path == "/contacts/missing-24")
        #expect(log.map(\.path) == (25 - log.count..<25).map { "/contacts/missing-\($0)" })
    }
}
