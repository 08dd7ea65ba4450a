import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

/// The simulator's tags, as Intercom's 2.16 API describes them: the workspace's list, one tag,
/// and a contact's tags, in its body (at most 10, with `has_more`) and at its own URL.
@Suite struct TagsAPITests {
    private func createTag(_ client: Client, _ name: String) async throws -> String {
        let created = await client.send("POST", "/tags", json: #"{"name":"\#(name)"}"#)
        #expect(created.status == 200, "\(created.body)")
        return try #require(created.json["id"]?.string)
    }

    @Test func tagsAreCreatedListedFoundRenamedAndDeleted() async throws {
        let client = Client()
        #expect(await client.send("GET", "/tags").body == #"{"data":[],"type":"list"}"#)
        let id = try await createTag(client, "VIP")
        #expect(try await createTag(client, "vip") == id, "a tag is found by its name, whatever its case")
        let other = try await createTag(client, "churn-risk")
        #expect(other != id)
        let list = await client.send("GET", "/tags").json
        #expect(list["type"] == "list")
        #expect(list["data"]?.items.compactMap { $0["name"]?.string } == ["VIP", "churn-risk"])
        #expect(list["data"]?.items.first?["type"] == "tag")
        #expect(await client.send("GET", "/tags/\(id)").json["name"] == "VIP")

        let renamed = await client.send("POST", "/tags", json: #"{"id":"\#(id)","name":"V.I.P."}"#)
        #expect(renamed.json["name"] == "V.I.P." && renamed.json["id"] == .string(id))
        let clash = await client.send("POST", "/tags", json: #"{"id":"\#(id)","name":"churn-risk"}"#)
        #expect(clash.status == 400)
        #expect(await client.send("POST", "/tags", json: #"{"test":"invalid"}"#).errorMessage == "invalid tag parameters")

        #expect(await client.send("DELETE", "/tags/\(id)").status == 200)
        let gone = await client.send("GET", "/tags/\(id)")
        #expect(gone.status == 404 && gone.errorCode == "not_found" && gone.errorMessage == "Resource Not Found")
        #expect(await client.send("DELETE", "/tags/\(id)").status == 404)
        #expect(await client.workspace.tagList().map(\.name) == ["churn-risk"])
        #expect(await client.send("GET", "/tags", headers: ["Authorization": "Bearer wrong"]).status == 401)
    }

    @Test func aContactIsTaggedAndUntaggedAndItsBodySaysSo() async throws {
        let client = Client { $0.seedContacts = 3 }
        let contact = try #require(await client.workspace.contactIDs().first)
        let tag = try await createTag(client, "VIP")
        let before = await client.send("GET", "/contacts/\(contact)")
        #expect(before.json["tags"]?["total_count"] == .int(0))
        client.workspace.clock.advance(by: 3_600)

        let tagged = await client.send("POST", "/contacts/\(contact)/tags", json: #"{"id":"\#(tag)"}"#)
        #expect(tagged.status == 200)
        #expect(tagged.json["name"] == "VIP" && tagged.json["applied_at"] == .int(Int64(client.workspace.clock.now)))
        let body = await client.send("GET", "/contacts/\(contact)")
        let tags = try #require(body.json["tags"])
        #expect(tags["type"] == "list" && tags["url"] == .string("/contacts/\(contact)/tags"))
        #expect(tags["data"]?.items == [.object(["type": "tag", "id": .string(tag), "url": .string("/tags/\(tag)")])])
        #expect(tags["total_count"] == .int(1) && tags["has_more"] == false)
        #expect(body.json["updated_at"] == .int(Int64(client.workspace.clock.now)), "a tagging updates the contact")
        #expect(body.header("ETag") != before.header("ETag"))
        let listed = await client.send("GET", "/contacts/\(contact)/tags").json
        #expect(listed["type"] == "list" && listed["data"]?.items.compactMap { $0["name"]?.string } == ["VIP"])

        // Tagging again changes nothing.
        let etag = body.header("ETag")
        _ = await client.send("POST", "/contacts/\(contact)/tags", json: #"{"id":"\#(tag)"}"#)
        #expect(await client.send("GET", "/contacts/\(contact)").header("ETag") == etag)

        let untagged = await client.send("DELETE", "/contacts/\(contact)/tags/\(tag)")
        #expect(untagged.status == 200 && untagged.json["id"] == .string(tag))
        #expect(await client.send("GET", "/contacts/\(contact)").json["tags"]?["total_count"] == .int(0))

        let noContact = await client.send("POST", "/contacts/nobody/tags", json: #"{"id":"\#(tag)"}"#)
        #expect(noContact.status == 404 && noContact.errorMessage == "User Not Found")
        let noTag = await client.send("POST", "/contacts/\(contact)/tags", json: #"{"id":"404"}"#)
        #expect(noTag.status == 404 && noTag.errorMessage == "Resource Not Found")
        #expect(await client.send("DELETE", "/contacts/\(contact)/tags/404").status == 404)
        #expect(await client.send("GET", "/contacts/nobody/tags").status == 404)
    }

    @Test func aBodyListsTenTagsAndSaysWhenThereAreMore() async throws {
        let client = Client { $0.seedContacts = 2 }
        let contact = try #require(await client.workspace.contactIDs().first)
        for number in 1...12 {
            let answer = await client.send("POST", "/tags", json: #"{"name":"tag \#(number)","users":[{"id":"\#(contact)"}]}"#)
            #expect(answer.status == 200, "\(answer.body)")
        }
        let tags = try #require(await client.send("GET", "/contacts/\(contact)").json["tags"])
        #expect(tags["data"]?.items.count == 10)
        #expect(tags["total_count"] == .int(12) && tags["has_more"] == true)
        let all = await client.send("GET", "/contacts/\(contact)/tags").json["data"]?.items ?? []
        #expect(all.compactMap { $0["name"]?.string } == (1...12).map { "tag \($0)" })

        for number in 1...2 {
            let untag = await client.send(
                "POST", "/tags", json: #"{"name":"tag \#(number)","users":[{"id":"\#(contact)","untag":true}]}"#)
            #expect(untag.status == 200)
        }
        let ten = try #require(await client.send("GET", "/contacts/\(contact)").json["tags"])
        #expect(ten["total_count"] == .int(10) && ten["has_more"] == false)
        let unknown = await client.send("POST", "/tags", json: #"{"name":"tag 1","users":[{"id":"nobody"}]}"#)
        #expect(unknown.status == 404 && unknown.errorMessage == "User Not Found")
    }

    @Test func searchFindsContactsByTag() async throws {
        let client = Client { $0.seedContacts = 10 }
        let ids = await client.workspace.contactIDs()
        var tag = ""
        for id in ids.prefix(3) { tag = try await client.workspace.tag(contact: id, name: "VIP") }
        func search(_ op: String, _ value: String) async -> Set<String> {
            let body = #"{"query":{"field":"tag_id","operator":"\#(op)","value":\#(value)}}"#
            let answer = await client.send("POST", "/contacts/search", json: body)
            return Set(answer.json["data"]?.items.compactMap { $0["id"]?.string } ?? [])
        }
        #expect(await search("=", #""\#(tag)""#) == Set(ids.prefix(3)))
        #expect(await search("=", tag) == Set(ids.prefix(3)), "a tag id as a number")
        #expect(await search("!=", #""\#(tag)""#) == Set(ids.dropFirst(3)))
    }

    @Test func deletingATagTakesItOffEveryContactWithoutUpdatingThem() async throws {
        let client = Client { $0.seedContacts = 3 }
        let contact = try #require(await client.workspace.contactIDs().first)
        let tag = try await client.workspace.tag(contact: contact, name: "temporary")
        let tagged = await client.send("GET", "/contacts/\(contact)")
        client.workspace.clock.advance(by: 60)
        #expect(await client.send("DELETE", "/tags/\(tag)").status == 200)
        let after = await client.send("GET", "/contacts/\(contact)")
        #expect(after.json["tags"]?["total_count"] == .int(0))
        #expect(after.json["updated_at"] == tagged.json["updated_at"])
        #expect(after.header("ETag") != tagged.header("ETag"), "the body changed, so its ETag did")
    }

    @Test func theControlAPITagsAndUntagsByName() async throws {
        let client = Client { $0.seedContacts = 2 }
        let contact = try #require(await client.workspace.contactIDs().first)
        let control = { (method: String, body: String) async -> SimResponse in
            await client.workspace.handle(
                SimRequest(method: method, path: "/_sim/contacts/\(contact)/tags", body: Array(body.utf8))
            ).response
        }
        let tagged = await control("POST", #"{"name":"churn-risk"}"#)
        let id = try #require(tagged.json["id"]?.string)
        #expect(await client.send("GET", "/contacts/\(contact)/tags").json["data"]?.items.first?["id"] == .string(id))
        #expect(await control("DELETE", #"{"name":"churn-risk"}"#).status == 200)
        #expect(await client.send("GET", "/contacts/\(contact)/tags").json["data"]?.items == [])
        #expect(await control("DELETE", #"{"name":"never made"}"#).status >= 400)
    }
}
