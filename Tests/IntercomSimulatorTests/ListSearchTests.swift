import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

@Suite struct ListSearchTests {
    @Test func listDefaultsTo10CapsAt150AndWalksEveryContactOnce() async throws {
        let client = Client { $0.seedContacts = 400 }
        let first = await client.send("GET", "/contacts")
        #expect(first.json["data"]?.items.count == 10)
        #expect(first.json["total_count"] == 400)
        #expect(first.json["pages"]?["type"] == "pages")
        #expect(first.json["pages"]?["page"] == 1)
        let big = await client.send("GET", "/contacts", query: ["per_page": "500"])
        #expect(big.json["data"]?.items.count == 150)
        #expect(big.json["pages"]?["per_page"] == 150)
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            var query = ["per_page": "150"]
            query["starting_after"] = cursor
            let page = await client.send("GET", "/contacts", query: query)
            seen += page.json["data"]!.items.compactMap { $0["id"]?.string }
            cursor = page.json["pages"]?["next"]?["starting_after"]?.string
            pages += 1
            #expect(page.json["pages"]?["page"] == .int(Int64(pages)))
        } while cursor != nil
        #expect(pages == 3)
        #expect(seen == (await client.workspace.contactIDs()))
        #expect(await client.send("GET", "/contacts", query: ["starting_after": "garbage"]).status == 400)
    }

    @Test func listSkipsDeletedArchivedAndMergedContacts() async throws {
        let client = Client { $0.seedContacts = 30 }
        let ids = await client.workspace.contactIDs()
        try await client.workspace.delete(id: ids[0])
        try await client.workspace.archive(id: ids[1])
        let page = await client.send("GET", "/contacts", query: ["per_page": "150"])
        let listed = page.json["data"]!.items.compactMap { $0["id"]?.string }
        #expect(listed == Array(ids.dropFirst(2)))
        #expect(page.json["total_count"] == 28)
        #expect(page.json["pages"]?["next"] == nil)
    }

    private func search(_ client: Client, _ body: String) async -> SimResponse {
        await client.send("POST", "/contacts/search", json: body)
    }

    @Test func searchGrammarNestsTwoLevelsOfAndOr() async throws {
        let client = Client { $0.seedContacts = 300 }
        let all = await client.workspace.exportContacts().map { try! JSONValue(jsonText: $0) }
        let query = #"""
            {"query":{"operator":"AND","value":[
                {"field":"role","operator":"=","value":"lead"},
                {"operator":"OR","value":[
                    {"field":"email","operator":"~","value":"example.org"},
                    {"field":"name","operator":"^","value":"a"}]}]},
             "pagination":{"per_page":150}}
            """#
        let response = await search(client, query)
        #expect(response.status == 200)
        let expected = all.filter {
            $0["role"] == "lead"
                && (($0["email"]?.string?.contains("example.org") ?? false)
                    || ($0["name"]?.string?.lowercased().hasPrefix("a") ?? false))
        }
        #expect(response.json["total_count"] == .int(Int64(expected.count)))
        #expect(expected.count > 5)
    }

    @Test func searchRefusesDeepNestingTooManyFiltersAndWrongOperators() async {
        let client = Client { $0.seedContacts = 5 }
        let filter = #"{"field":"role","operator":"=","value":"user"}"#
        let deep = #"{"query":{"operator":"AND","value":[{"operator":"OR","value":[{"operator":"AND","value":[\#(filter)]}]}]}}"#
        #expect(await search(client, deep).status == 400)
        let many = #"{"query":{"operator":"OR","value":[\#(Array(repeating: filter, count: 16).joined(separator: ","))]}}"#
        #expect(await search(client, many).status == 400)
        let fifteen = #"{"query":{"operator":"OR","value":[\#(Array(repeating: filter, count: 15).joined(separator: ","))]}}"#
        #expect(await search(client, fifteen).status == 200)
        for bad in [
            #"{"field":"updated_at","operator":">=","value":1}"#, #"{"field":"email","operator":">","value":"a"}"#,
            #"{"field":"updated_at","operator":"=","value":"yesterday"}"#, #"{"field":"nope","operator":"=","value":"x"}"#,
            #"{"field":"role","operator":"IN","value":"user"}"#, #"{"field":"tag_id","operator":"~","value":"1"}"#,
        ] {
            let response = await search(client, #"{"query":\#(bad)}"#)
            #expect(response.status == 400, "\(bad)")
            #expect(response.errorCode == "parameter_invalid")
        }
        let sort = await search(client, #"{"query":\#(filter),"sort":{"field":"updated_at","order":"sideways"}}"#)
        #expect(sort.errorCode == "invalid_sort_order")
        #expect(await search(client, "{}").status == 400)
    }

    @Test func aDateWithAFractionIsReadAsItsWholeSeconds() async throws {
        // Singer's tap-intercom sends `datetime.timestamp()`, a float.
        let client = Client { $0.seedContacts = 20 }
        func ids(_ value: String) async -> [String] {
            let query = #"{"query":{"field":"updated_at","operator":">","value":\#(value)},"pagination":{"per_page":50}}"#
            return (await search(client, query)).json["data"]?.items.compactMap { $0["id"]?.string } ?? []
        }
        #expect(await ids("946684800.0") == (await ids("946684800")))
        #expect(await ids("946684800.0").count == 20)
        #expect(await search(client, #"{"query":{"field":"email","operator":"=","value":1.5}}"#).status == 400)
    }

    @Test func searchPagesInTheBodyDefault50Max150AndSorts() async throws {
        let client = Client { $0.seedContacts = 220 }
        let everyone = #"{"field":"created_at","operator":">","value":0}"#
        let first = await search(client, #"{"query":\#(everyone),"sort":{"field":"updated_at","order":"ascending"}}"#)
        #expect(first.json["data"]?.items.count == 50)
        var times: [Int] = first.json["data"]!.items.compactMap { $0["updated_at"]?.int }
        var cursor = first.json["pages"]?["next"]?["starting_after"]?.string
        var ids = Set(first.json["data"]!.items.compactMap { $0["id"]?.string })
        while let next = cursor {
            let page = await search(
                client,
                #"{"query":\#(everyone),"sort":{"field":"updated_at","order":"ascending"},"pagination":{"per_page":1000,"starting_after":"\#(next)"}}"#
            )
            #expect(page.json["data"]!.items.count <= 150)
            times += page.json["data"]!.items.compactMap { $0["updated_at"]?.int }
            ids.formUnion(page.json["data"]!.items.compactMap { $0["id"]?.string })
            cursor = page.json["pages"]?["next"]?["starting_after"]?.string
        }
        #expect(ids.count == 220)
        #expect(times == times.sorted())
    }

    /// 2026-01-10 in Los Angeles is 08:00Z Jan 10 to 08:00Z Jan 11.
    @Test func stableDateFiltersCoverWholeDaysInTheWorkspaceTimezonePreviewExactSeconds() async throws {
        var client = Client()
        let dayStart = 1_768_032_000  // 2026-01-10T08:00:00Z
        var ids: [Int: String] = [:]
        for offset in [-1, 0, 3_600, 86_399, 86_400] {
            client.workspace.clock.set(dayStart + offset)
            let id = await client.send("POST", "/contacts", json: #"{"email":"t\#(offset + 10)@example.com"}"#).json["id"]!
                .string!
            ids[offset] = id
        }
        func matched(_ op: String, _ value: Int) async -> Set<String> {
            let response = await client.send(
                "POST", "/contacts/search",
                json: #"{"query":{"field":"updated_at","operator":"\#(op)","value":\#(value)},"pagination":{"per_page":150}}"#)
            return Set(response.json["data"]!.items.compactMap { $0["id"]?.string })
        }
        let noon = dayStart + 4 * 3_600
        #expect(await matched("=", noon) == [ids[0]!, ids[3_600]!, ids[86_399]!])
        #expect(await matched(">", noon) == [ids[86_400]!])
        #expect(await matched("<", noon) == [ids[-1]!])
        client.version = "Preview"
        #expect(await matched(">", noon) == [ids[86_399]!, ids[86_400]!])
        #expect(await matched("=", dayStart + 3_600) == [ids[3_600]!])
    }

    /// Windows of creation time alone are counted from the creation order without reading a
    /// contact; the counts and the first and last contacts must be those of the contacts whose
    /// creation time falls in the window, archived and deleted ones left out.
    @Test func creationWindowsCountAndEndAsTheirContactsSay() async throws {
        var client = Client { $0.seedContacts = 500 }
        let ids = await client.workspace.contactIDs()
        try await client.workspace.delete(id: ids[10])
        try await client.workspace.archive(id: ids[20])
        let live = await client.workspace.exportContacts().map { try! JSONValue(jsonText: $0) }
            .filter { $0["id"]?.string != ids[20] }
        let created = live.compactMap { $0["created_at"]?.int }.sorted()
        let (low, middle) = (created[100], created[created.count / 2])
        func filter(_ op: String, _ value: Int) -> String { #"{"field":"created_at","operator":"\#(op)","value":\#(value)}"# }
        // Preview compares exact seconds, so that each window is exactly the predicate beside it.
        client.version = "Preview"
        let queries: [(String, (Int) -> Bool)] = [
            (#"{"operator":"OR","value":[\#(filter("<", 172_800)),\#(filter(">", 172_799))]}"#, { _ in true }),
            (#"{"operator":"AND","value":[\#(filter(">", low)),\#(filter("<", middle))]}"#, { $0 > low && $0 < middle }),
            (#"{"operator":"OR","value":[\#(filter("<", low)),\#(filter(">", middle))]}"#, { $0 < low || $0 > middle }),
            (filter(">", middle), { $0 > middle }),
        ]
        for (query, holds) in queries {
            let expected = live.filter { holds($0["created_at"]!.int!) }.compactMap { $0["id"]?.string }
            #expect(!expected.isEmpty)
            for order in ["ascending", "descending"] {
                let first = await search(
                    client,
                    #"{"query":\#(query),"pagination":{"per_page":1},"sort":{"field":"created_at","order":"\#(order)"}}"#)
                #expect(first.json["total_count"] == .int(Int64(expected.count)), "\(query)")
                let end = order == "ascending" ? expected.first : expected.last
                #expect(first.json["data"]?.items.first?["id"]?.string == end, "\(query) \(order)")
                // By updated_at: the first three, ties in creation order.
                let byUpdate = await search(
                    client,
                    #"{"query":\#(query),"pagination":{"per_page":3},"sort":{"field":"updated_at","order":"\#(order)"}}"#)
                let matching = live.filter { holds($0["created_at"]!.int!) }.enumerated()
                let ranked = matching.sorted { left, right in
                    let (a, b) = (left.element["updated_at"]!.int!, right.element["updated_at"]!.int!)
                    return a != b ? (order == "ascending" ? a < b : a > b) : left.offset < right.offset
                }
                #expect(byUpdate.json["total_count"] == .int(Int64(expected.count)))
                #expect(
                    byUpdate.json["data"]!.items.compactMap { $0["id"]?.string }
                        == ranked.prefix(3).compactMap { $0.element["id"]?.string }, "\(query) \(order)")
            }
        }
        // In a stable version the engine's "everything" leaves a day of 1970 out between its two
        // windows, in the workspace's timezone: two windows, every contact still in them.
        client.version = "2.16"
        let everything = queries[0].0
        for order in ["ascending", "descending"] {
            let first = await search(
                client, #"{"query":\#(everything),"pagination":{"per_page":1},"sort":{"field":"created_at","order":"\#(order)"}}"#
            )
            #expect(first.json["total_count"] == .int(Int64(live.count)))
            let end = order == "ascending" ? live.first : live.last
            #expect(first.json["data"]?.items.first?["id"] == end?["id"], "\(order)")
        }
        // The counts are kept between pages, and follow a deletion and an archive.
        try await client.workspace.delete(id: ids[30])
        try await client.workspace.archive(id: ids[40])
        let again = await search(client, #"{"query":\#(everything),"pagination":{"per_page":1}}"#)
        #expect(again.json["total_count"] == .int(Int64(live.count - 2)))
    }
}
