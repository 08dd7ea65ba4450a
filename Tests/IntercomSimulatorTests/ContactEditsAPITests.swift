import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

/// What offline edits meet on the server: `PUT /contacts/{id}` changes only what it sends
/// (custom attributes key by key), refuses a user turned lead, and moves `updated_at`; notes
/// are written and listed per contact.
@Suite struct ContactEditsAPITests {
    @Test func anUpdateChangesOnlyWhatItSends() async throws {
        let client = Client { $0.startTime = 1_767_225_600 }
        let created = await client.send(
            "POST", "/contacts",
            json: #"{"email":"a@example.com","name":"Ann","phone":"+15550001","custom_attributes":{"plan":"pro","seats":3}}"#)
        let id = try #require(created.json["id"]?.string)
        client.workspace.clock.advance(by: 60)
        let updated = await client.send(
            "PUT", "/contacts/\(id)", json: #"{"phone":"+15550002","custom_attributes":{"plan":"enterprise"}}"#)
        #expect(updated.status == 200)
        let body = updated.json
        #expect(body["phone"]?.string == "+15550002")
        #expect(body["name"]?.string == "Ann" && body["email"]?.string == "a@example.com", "fields not sent stay")
        #expect(body["custom_attributes"]?["plan"]?.string == "enterprise")
        #expect(body["custom_attributes"]?["seats"]?.int == 3, "attribute keys not sent stay")
        #expect(body["updated_at"]?.int == created.json["updated_at"]!.int! + 60)
        #expect(updated.headers.first { $0.0 == "ETag" }?.1 != created.headers.first { $0.0 == "ETag" }?.1)
    }

    @Test func aUserCannotBecomeALeadButALeadCanBecomeAUser() async throws {
        let client = Client()
        let user = try #require(await client.send("POST", "/contacts", json: #"{"email":"u@example.com"}"#).json["id"]?.string)
        let refused = await client.send("PUT", "/contacts/\(user)", json: #"{"role":"lead"}"#)
        #expect(refused.status == 400)
        #expect(refused.errorMessage == "Contact with user role can't be converted to a lead")
        #expect(await client.send("GET", "/contacts/\(user)").json["role"]?.string == "user")
        let lead = try #require(await client.send("POST", "/contacts", json: #"{"role":"lead"}"#).json["id"]?.string)
        let signedUp = await client.send("PUT", "/contacts/\(lead)", json: #"{"role":"user","email":"l@example.com"}"#)
        #expect(signedUp.status == 200 && signedUp.json["role"]?.string == "user")
    }

    @Test func notesAreWrittenListedNewestFirstAndReferencedFromTheBody() async throws {
        let client = Client()
        let id = try #require(await client.send("POST", "/contacts", json: #"{"email":"n@example.com"}"#).json["id"]?.string)
        let etag = await client.send("GET", "/contacts/\(id)").headers.first { $0.0 == "ETag" }?.1
        let first = await client.send("POST", "/contacts/\(id)/notes", json: #"{"body":"<p>Called, no answer</p>"}"#)
        #expect(first.status == 200)
        #expect(first.json["type"]?.string == "note" && first.json["body"]?.string == "<p>Called, no answer</p>")
        #expect(first.json["contact"]?["id"]?.string == id)
        #expect(first.json["author"]?["id"]?.string == SimulatedWorkspace.admins[0].id, "the token's admin by default")
        let second = await client.send(
            "POST", "/contacts/\(id)/notes", json: #"{"body":"Renewal in May","admin_id":"\#(SimulatedWorkspace.admins[1].id)"}"#)
        #expect(second.json["author"]?["id"]?.string == SimulatedWorkspace.admins[1].id)

        let listed = await client.send("GET", "/contacts/\(id)/notes").json
        #expect(listed["type"]?.string == "list" && listed["total_count"]?.int == 2)
        #expect(listed["data"]?.items.map { $0["body"]?.string } == ["Renewal in May", "<p>Called, no answer</p>"])
        let contact = await client.send("GET", "/contacts/\(id)")
        #expect(contact.json["notes"]?["total_count"]?.int == 2)
        #expect(contact.json["notes"]?["data"]?.items.first?["id"] == second.json["id"])
        #expect(contact.headers.first { $0.0 == "ETag" }?.1 != etag, "a new note changes the body")
    }

    @Test func aNoteNeedsABodyAKnownAdminAndALiveContact() async throws {
        let client = Client()
        let id = try #require(await client.send("POST", "/contacts", json: #"{"email":"x@example.com"}"#).json["id"]?.string)
        #expect(await client.send("POST", "/contacts/\(id)/notes", json: #"{"body":""}"#).status == 400)
        #expect(await client.send("POST", "/contacts/\(id)/notes", json: #"{"text":"hi"}"#).status == 400)
        #expect(await client.send("POST", "/contacts/\(id)/notes", json: #"{"body":"hi","admin_id":"1"}"#).status == 404)
        #expect(await client.send("POST", "/contacts/nope/notes", json: #"{"body":"hi"}"#).status == 404)
        #expect(await client.send("GET", "/contacts/nope/notes").status == 404)
        #expect(await client.send("GET", "/contacts/\(id)/notes").json["total_count"]?.int == 0)
    }
}
