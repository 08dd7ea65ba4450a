import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

/// The simulator's segments: fixed rules over the contacts, listed with their counts, per
/// contact, and as a search filter, all agreeing.
@Suite struct SegmentsAPITests {
    @Test func segmentsAreListedWithTheirCountsAndAgreeWithSearchAndEachContact() async throws {
        let client = Client { $0.seedContacts = 200 }
        let ids = await client.workspace.contactIDs()
        for id in ids.prefix(7) { try await client.workspace.tag(contact: id, name: "VIP") }

        let plain = await client.send("GET", "/segments").json
        #expect(plain["type"] == "segment.list")
        #expect(plain["segments"]?.items.allSatisfy { $0["count"] == nil } == true, "counts only when asked")
        let listed = await client.send("GET", "/segments", query: ["include_count": "true"]).json["segments"]?.items ?? []
        #expect(listed.compactMap { $0["name"]?.string } == (await client.workspace.segmentList()).map(\.name))
        #expect(listed.allSatisfy { $0["type"] == "segment" && $0["person_type"]?.string != nil })

        var perContact: [String: Set<String>] = [:]
        for id in ids {
            let segments = await client.send("GET", "/contacts/\(id)/segments").json
            #expect(segments["type"] == "list")
            for segment in segments["data"]?.items ?? [] { perContact[segment["id"]!.string!, default: []].insert(id) }
        }
        for segment in listed {
            let id = try #require(segment["id"]?.string)
            let query = #"{"query":{"field":"segment_id","operator":"=","value":"\#(id)"},"pagination":{"per_page":150}}"#
            var found: Set<String> = []
            var body = query
            while true {
                let page = await client.send("POST", "/contacts/search", json: body).json
                found.formUnion(page["data"]?.items.compactMap { $0["id"]?.string } ?? [])
                guard let next = page["pages"]?["next"]?["starting_after"]?.string else { break }
                body =
                    #"{"query":{"field":"segment_id","operator":"=","value":"\#(id)"},"pagination":{"per_page":150,"starting_after":"\#(next)"}}"#
            }
            #expect(segment["count"] == .int(Int64(found.count)), "\(segment["name"] ?? .null)")
            #expect(found == perContact[id, default: []], "\(segment["name"] ?? .null)")
        }
        let vip = try #require(listed.first { $0["name"] == "VIP" })
        #expect(vip["count"] == .int(7))
        #expect(listed.contains { ($0["count"]?.int ?? 0) > 0 && $0["name"] != "VIP" })
        #expect(await client.send("GET", "/contacts/nobody/segments").status == 404)
    }

    @Test func aContactLeavesASegmentWhenItsRuleNoLongerHolds() async throws {
        let client = Client { $0.seedContacts = 3 }
        let id = try #require(await client.workspace.contactIDs().first)
        try await client.workspace.tag(contact: id, name: "vip")
        func names() async -> [String] {
            await client.send("GET", "/contacts/\(id)/segments").json["data"]?.items.compactMap { $0["name"]?.string } ?? []
        }
        #expect(await names().contains("VIP"), "a tag's name matches whatever its case")
        try await client.workspace.untag(contact: id, name: "vip")
        #expect(!(await names().contains("VIP")))
    }
}
