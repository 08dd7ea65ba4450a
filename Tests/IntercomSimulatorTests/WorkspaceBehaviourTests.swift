import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct WorkspaceBehaviourTests {
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
}
