import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

/// The simulator's companies: made and updated by `company_id`, listed three ways that agree,
/// and attached to contacts, whose bodies list 10 of them with `has_more`.
@Suite struct CompaniesAPITests {
    private func company(_ client: Client, _ companyID: String, _ name: String, plan: String = "Pro") async throws -> String {
        let made = await client.send(
            "POST", "/companies", json: #"{"company_id":"\#(companyID)","name":"\#(name)","plan":"\#(plan)","size":40}"#)
        #expect(made.status == 200, "\(made.body)")
        return try #require(made.json["id"]?.string)
    }

    @Test func companiesAreMadeUpdatedFoundAndDeleted() async throws {
        let client = Client()
        let id = try await company(client, "acme-1", "Acme, Inc.")
        #expect(try await company(client, "acme-1", "Acme Corporation", plan: "Enterprise") == id, "the same company_id")
        let found = await client.send("GET", "/companies/\(id)").json
        #expect(found["type"] == "company" && found["name"] == "Acme Corporation" && found["company_id"] == "acme-1")
        #expect(found["plan"]?["name"] == "Enterprise" && found["size"] == .int(40) && found["user_count"] == .int(0))
        let updated = await client.send(
            "PUT", "/companies/\(id)", json: #"{"industry":"Anvils","website":"https://acme.example"}"#)
        #expect(updated.json["industry"] == "Anvils" && updated.json["name"] == "Acme Corporation")
        #expect(
            await client.send("GET", "/companies", query: ["company_id": "acme-1"]).json["data"]?.items.first?["id"]
                == .string(id))
        #expect(await client.send("GET", "/companies", query: ["name": "Acme Corporation"]).json["total_count"] == .int(1))
        #expect(await client.send("GET", "/companies", query: ["company_id": "nobody"]).errorCode == "company_not_found")
        #expect(await client.send("POST", "/companies", json: #"{"name":"No id"}"#).status == 400)
        let deleted = await client.send("DELETE", "/companies/\(id)")
        #expect(deleted.json["deleted"] == true && deleted.json["id"] == .string(id))
        let gone = await client.send("GET", "/companies/\(id)")
        #expect(gone.status == 404 && gone.errorMessage == "Company Not Found")
    }

    @Test func theListThePagesAndTheScrollAgree() async throws {
        let client = Client { $0.seedContacts = 1 }
        let contact = try #require(await client.workspace.contactIDs().first)
        var made: [String] = []
        for number in 1...40 { made.append(try await company(client, "c\(number)", "Company \(number)")) }
        // The list leaves out a company without contacts, as Intercom's does.
        for number in 1...30 { try await client.workspace.attach(contact: contact, companyID: "c\(number)") }
        var paged: [String] = []
        var page = 1
        while true {
            let answer = await client.send(
                "POST", "/companies/list", query: ["page": "\(page)", "per_page": "15", "order": "asc"]
            )
            .json
            #expect(answer["total_count"] == .int(30) && answer["pages"]?["total_pages"] == .int(2))
            paged += answer["data"]?.items.compactMap { $0["id"]?.string } ?? []
            guard let next = answer["pages"]?["next"]?["page"]?.int else { break }
            #expect(next == Int64(page + 1))
            page += 1
        }
        #expect(paged == Array(made.prefix(30)))
        let newest = await client.send("POST", "/companies/list", query: ["per_page": "1"]).json
        #expect(newest["data"]?.items.first?["id"] == .string(made[29]), "newest first unless asked")
        var scrolled: [String] = []
        var param: String?
        repeat {
            let answer = await client.send("GET", "/companies/scroll", query: param.map { ["scroll_param": $0] } ?? [:]).json
            let ids = answer["data"]?.items.compactMap { $0["id"]?.string } ?? []
            scrolled += ids
            param = ids.isEmpty ? nil : answer["scroll_param"]?.string
        } while param != nil
        #expect(scrolled == made)
        #expect(await client.send("GET", "/companies/scroll", query: ["scroll_param": "made-up"]).status == 400)
        let all = await client.send("GET", "/companies", query: ["per_page": "50"]).json
        #expect(all["data"]?.items.count == 40)
    }

    @Test func contactsAreAttachedAndDetachedAndTheirBodiesSaySo() async throws {
        let client = Client { $0.seedContacts = 3 }
        let contact = try #require(await client.workspace.contactIDs().first)
        var ids: [String] = []
        for number in 1...11 { ids.append(try await company(client, "k\(number)", "Firm \(number)")) }
        client.workspace.clock.advance(by: 600)
        for id in ids {
            let attached = await client.send("POST", "/contacts/\(contact)/companies", json: #"{"id":"\#(id)"}"#)
            #expect(attached.status == 200 && attached.json["id"] == .string(id))
        }
        let body = await client.send("GET", "/contacts/\(contact)").json
        let listed = try #require(body["companies"])
        #expect(listed["data"]?.items.count == 10 && listed["total_count"] == .int(11) && listed["has_more"] == true)
        #expect(
            listed["data"]?.items.first
                == .object(["type": "company", "id": .string(ids[0]), "url": .string("/companies/\(ids[0])")]))
        #expect(body["updated_at"] == .int(Int64(client.workspace.clock.now)))
        let all = await client.send("GET", "/contacts/\(contact)/companies").json
        #expect(all["companies"]?.items.compactMap { $0["id"]?.string } == ids && all["total_count"] == .int(11))
        #expect(await client.send("GET", "/contacts/\(contact)/companies", query: ["page": "2"]).json["companies"]?.items == [])
        #expect(await client.send("GET", "/companies/\(ids[0])").json["user_count"] == .int(1))
        let members = await client.send("GET", "/companies/\(ids[0])/contacts").json
        #expect(members["data"]?.items.compactMap { $0["id"]?.string } == [contact])

        #expect(await client.send("DELETE", "/contacts/\(contact)/companies/\(ids[0])").status == 200)
        let after = await client.send("GET", "/contacts/\(contact)").json["companies"]
        #expect(after?["total_count"] == .int(10) && after?["has_more"] == false)
        #expect(
            await client.send("POST", "/contacts/\(contact)/companies", json: #"{"id":"nope"}"#).errorCode == "company_not_found")
        #expect(await client.send("POST", "/contacts/nobody/companies", json: #"{"id":"\#(ids[1])"}"#).status == 404)
        #expect(await client.send("POST", "/contacts/\(contact)/companies", json: "{}").status == 400)

        // The control API attaches by company_id, making the company when it is new.
        let made = try await client.workspace.attach(contact: contact, companyID: "new-co", name: "New Co")
        #expect(await client.send("GET", "/companies/\(made)").json["name"] == "New Co")
        try await client.workspace.detach(contact: contact, companyID: "new-co")
        #expect(await client.send("GET", "/companies/\(made)").json["user_count"] == .int(0))
    }
}

/// Seeded tags and companies: shaped as a workspace's, the same from the same seed, and what
/// the bodies list agrees with the lists.
@Suite struct SeededRelationsTests {
    @Test func seededContactsCarryTagsAndCompaniesAsAWorkspaceWould() async throws {
        let client = Client {
            $0.seedContacts = 5_000
            $0.seedTags = 20
            $0.seedCompanies = 300
            $0.rateLimit = 1_000_000  // the clock stands still: one window for every request
        }
        let tags = await client.send("GET", "/tags").json["data"]?.items ?? []
        #expect(tags.count == 20 && tags.first?["name"] == "VIP")
        var tagged = 0
        var overflowing = 0
        var overflow: String?
        var inCompanies = 0
        var perTag: [String: Int] = [:]
        let ids = await client.workspace.contactIDs()
        for id in ids {
            let body = await client.send("GET", "/contacts/\(id)").json
            let count = body["tags"]?["total_count"]?.int ?? 0
            if count > 0 { tagged += 1 }
            if body["tags"]?["has_more"] == true {
                overflowing += 1
                overflow = id
            }
            if (body["companies"]?["total_count"]?.int ?? 0) > 0 { inCompanies += 1 }
            for tag in body["tags"]?["data"]?.items ?? [] { perTag[tag["id"]!.string!, default: 0] += 1 }
        }
        #expect((2_000...3_500).contains(tagged), "\(tagged) of 5,000 tagged")
        #expect((5...50).contains(overflowing), "\(overflowing) with more tags than a body lists")
        #expect((2_700...3_300).contains(inCompanies), "\(inCompanies) of 5,000 in a company")
        let vip = try #require(tags.first?["id"]?.string)
        let last = try #require(tags.last?["id"]?.string)
        #expect(perTag[vip, default: 0] > 5 * perTag[last, default: 0], "a few tags carry most taggings")

        let overflowID = try #require(overflow)
        let all = await client.send("GET", "/contacts/\(overflowID)/tags").json["data"]?.items ?? []
        let counted = await client.send("GET", "/contacts/\(overflowID)").json["tags"]?["total_count"]
        #expect(all.count > 10 && counted == .int(Int64(all.count)))

        let again = Client {
            $0.seedContacts = 5_000
            $0.seedTags = 20
            $0.seedCompanies = 300
        }
        #expect(await again.send("GET", "/contacts/\(ids[17])").body == (await client.send("GET", "/contacts/\(ids[17])").body))
        let scroll = await client.send("GET", "/companies/scroll").json["data"]?.items ?? []
        #expect(scroll.count == 15 && scroll.allSatisfy { $0["name"]?.string != nil && $0["plan"]?["name"] != nil })
    }

    @Test func withoutSeededRelationsTheBodiesAreAsBefore() async throws {
        let client = Client { $0.seedContacts = 10 }
        for id in await client.workspace.contactIDs() {
            let body = await client.send("GET", "/contacts/\(id)").body
            #expect(
                body.contains(#""tags":{"type":"list","data":[],"url":"/contacts/\#(id)/tags","total_count":0,"has_more":false}"#)
            )
            #expect(
                body.contains(
                    #""companies":{"type":"list","data":[],"url":"/contacts/\#(id)/companies","total_count":0,"has_more":false}"#)
            )
        }
        #expect(await client.send("GET", "/tags").json["data"]?.items == [])
    }
}
