import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

@Suite struct ContactsAPITests {
    @Test func everyAPIRequestNeedsAValidBearerToken() async {
        var client = Client { $0.seedContacts = 3 }
        client.token = "wrong"
        let response = await client.send("GET", "/contacts")
        #expect(response.status == 401)
        #expect(response.errorCode == "unauthorized")
        #expect(response.json["type"] == "error.list")
        #expect(response.json["request_id"]?.string != nil)
        #expect(response.header("X-RateLimit-Limit") == nil, "no rate-limit headers without valid credentials")
        let missing = await client.send("GET", "/me", headers: ["Authorization": ""])
        #expect(missing.status == 401)
        client.token = "sim-access-token"
        #expect(await client.send("GET", "/me").status == 200)
        await client.workspace.revoke(token: "sim-access-token")
        let revoked = await client.send("GET", "/me")
        #expect(revoked.status == 401)
        #expect(revoked.errorCode == "token_revoked")
    }

    @Test func createReturnsTheContactStampedByTheClock() async {
        let client = Client()
        let response = await client.send(
            "POST", "/contacts",
            json: #"{"email":"Ana@Example.com","name":"Ana López","phone":"+34600111222","custom_attributes":{"plan":"pro"}}"#)
        #expect(response.status == 200)
        let contact = response.json
        #expect(contact["type"] == "contact")
        #expect(contact["role"] == "user", "a create with only an email makes a user")
        #expect(contact["email"] == "Ana@Example.com")
        #expect(contact["created_at"] == .int(1_767_225_600))
        #expect(contact["updated_at"] == .int(1_767_225_600))
        #expect(contact["custom_attributes"]?["plan"] == "pro")
        #expect(contact["id"]?.string?.count == 24)
    }

    @Test func duplicatesGet409WithTheExistingIDArchivedIncluded() async throws {
        let client = Client()
        let first = await client.send("POST", "/contacts", json: #"{"email":"dup@example.com","external_id":"ext-1"}"#)
        let id = try #require(first.json["id"]?.string)
        let sameEmail = await client.send("POST", "/contacts", json: #"{"email":"DUP@example.com"}"#)
        #expect(sameEmail.status == 409)
        #expect(sameEmail.errorCode == "conflict")
        #expect(sameEmail.errorMessage == "A contact matching those details already exists with id=\(id)")
        let sameExternalID = await client.send("POST", "/contacts", json: #"{"external_id":"ext-1","role":"lead"}"#)
        #expect(sameExternalID.status == 409)
        #expect(await client.send("POST", "/contacts/\(id)/archive").json["archived"] == true)
        let archived = await client.send("POST", "/contacts", json: #"{"email":"dup@example.com"}"#)
        #expect(archived.status == 409)
        #expect(archived.errorMessage == "An archived contact matching those details already exists with id=\(id)")
        #expect(await client.send("POST", "/contacts/\(id)/unarchive").json["archived"] == false)
    }

    @Test(arguments: [
        (#"{"email":"not-an-email"}"#, 400, "parameter_invalid"),
        (#"{"role":"admin"}"#, 400, "parameter_invalid"),
        (#"{"name":"No keys"}"#, 400, "parameter_invalid"),
        (#"{"email_verified":true,"role":"lead"}"#, 400, "parameter_invalid"),
        (#"{"email":"o@example.com","owner_id":"123"}"#, 400, "parameter_invalid"),
        (#"{"email":"c@example.com","custom_attributes":[1]}"#, 400, "parameter_invalid"),
        (#"{"email": "#, 400, "parameter_invalid"),
    ])
    func invalidCreatesAreRefusedAsIntercomDoes(body: String, status: Int, code: String) async {
        let client = Client()
        let response = await client.send("POST", "/contacts", json: body)
        #expect(response.status == status)
        #expect(response.errorCode == code)
        #expect(await client.workspace.contactIDs().isEmpty, "nothing stored")
    }

    @Test func ownerMessageAndContentTypeMatchIntercom() async {
        let client = Client()
        let owner = await client.send("POST", "/contacts", json: #"{"email":"o@example.com","owner_id":"123"}"#)
        #expect(owner.errorMessage == "The owner specified is not a member of the workspace")
        let admin = await client.send("POST", "/contacts", json: #"{"email":"o@example.com","owner_id":991267459}"#)
        #expect(admin.json["owner_id"] == "991267459", "2.16 sends owner_id as a string")
        var request = SimRequest(
            method: "POST", path: "/contacts",
            headers: ["Authorization": "Bearer sim-access-token", "Content-Type": "text/plain"],
            body: Array(#"{"email":"t@example.com"}"#.utf8))
        request.headers["content-type"] = "text/plain"
        #expect(await client.workspace.handle(request).response.status == 415)
    }

    @Test func getSendsAWeakETagThatChangesWithTheContact() async throws {
        let client = Client { $0.seedContacts = 2 }
        let id = try #require(await client.workspace.contactIDs().first)
        let first = await client.send("GET", "/contacts/\(id)")
        let etag = try #require(first.header("ETag"))
        #expect(etag.hasPrefix("W/\""))
        let unchanged = await client.send("GET", "/contacts/\(id)", headers: ["If-None-Match": etag])
        #expect(unchanged.status == 304)
        #expect(unchanged.body.isEmpty)
        #expect(unchanged.header("X-RateLimit-Remaining") != nil)
        client.workspace.clock.advance(by: 60)
        #expect(
            await client.send("PUT", "/contacts/\(id)", json: #"{"name":"Renamed"}"#).json["updated_at"] == .int(1_767_225_660))
        let changed = await client.send("GET", "/contacts/\(id)", headers: ["If-None-Match": etag])
        #expect(changed.status == 200)
        #expect(changed.json["name"] == "Renamed")
        #expect(changed.header("ETag") != etag)
    }

    @Test func etagsCanBeSwitchedOff() async throws {
        let client = Client {
            $0.seedContacts = 1
            $0.etags = false
        }
        let id = try #require(await client.workspace.contactIDs().first)
        let response = await client.send("GET", "/contacts/\(id)", headers: ["If-None-Match": "W/\"\(id)-1\""])
        #expect(response.status == 200)
        #expect(response.header("ETag") == nil)
    }

    @Test func mergedContactIs410WithLinkOn216And404Before() async throws {
        var client = Client()
        let lead = try #require(
            await client.send("POST", "/contacts", json: #"{"role":"lead","email":"m@example.com"}"#).json["id"]?.string)
        let user = try #require(
            await client.send("POST", "/contacts", json: #"{"external_id":"u1","phone":"+1555"}"#).json["id"]?.string)
        let refused = await client.send("POST", "/contacts/merge", json: #"{"from":"\#(lead)","into":"\#(user)"}"#)
        #expect(refused.status == 400)
        #expect(refused.errorCode == "invalid_merge")
        let merged = await client.send(
            "POST", "/contacts/merge", json: #"{"from":"\#(lead)","into":"\#(user)","skip_duplicate_validation":true}"#)
        #expect(merged.json["id"] == .string(user))
        let gone = await client.send("GET", "/contacts/\(lead)")
        #expect(gone.status == 410)
        #expect(gone.errorCode == "contact_merged")
        #expect(gone.header("Link") == "</contacts/\(user)>; rel=\"canonical\"")
        client.version = "2.15"
        let old = await client.send("GET", "/contacts/\(lead)")
        #expect(old.status == 404)
        #expect(old.errorCode == "not_found")
    }

    @Test func deleteAndUnknownIDs() async throws {
        let client = Client { $0.seedContacts = 2 }
        let id = try #require(await client.workspace.contactIDs().first)
        let deleted = await client.send("DELETE", "/contacts/\(id)")
        #expect(deleted.json["deleted"] == true)
        #expect(deleted.json["id"] == .string(id))
        let after = await client.send("GET", "/contacts/\(id)")
        #expect(after.status == 404)
        #expect(after.errorMessage == "User Not Found")
        #expect(await client.send("PUT", "/contacts/\(id)", json: "{}").status == 404)
        #expect(await client.send("GET", "/nothing/here").status == 404)
    }

    @Test func updateRefusesAClashWithAnotherContact() async throws {
        let client = Client()
        _ = await client.send("POST", "/contacts", json: #"{"email":"a@example.com"}"#)
        let second = try #require(await client.send("POST", "/contacts", json: #"{"email":"b@example.com"}"#).json["id"]?.string)
        let clash = await client.send("PUT", "/contacts/\(second)", json: #"{"email":"A@example.com"}"#)
        #expect(clash.status == 409)
        let own = await client.send("PUT", "/contacts/\(second)", json: #"{"email":"b@example.com","name":"B"}"#)
        #expect(own.status == 200)
    }

    @Test func version215RendersOwnerAsIntegerAndAvatarAsString() async throws {
        var client = Client { $0.seedContacts = 40 }
        client.version = "2.15"
        let page = await client.send("GET", "/contacts", query: ["per_page": "40"])
        let withOwner = try #require(page.json["data"]?.items.first { $0["owner_id"] != .null })
        #expect(withOwner["owner_id"]?.int != nil)
        let withAvatar = try #require(page.json["data"]?.items.first { $0["avatar"] != .null })
        #expect(withAvatar["avatar"]?.string != nil)
        client.version = "9.9"
        #expect(await client.send("GET", "/me").errorCode == "intercom_version_invalid")
    }

    @Test func seedingIsDeterministic() async {
        let one = Client {
            $0.seedContacts = 50
            $0.seed = 9
        }
        let two = Client {
            $0.seedContacts = 50
            $0.seed = 9
        }
        #expect(await one.workspace.exportContacts() == two.workspace.exportContacts())
        let names = await one.workspace.exportContacts().joined()
        #expect(names.contains("+"), "phones in E.164")
    }
}

@Suite struct AvatarShapeTests {
    @Test func avatarIsAURLStringOrOptionallyTheSpecObject() async throws {
        let plain = Client { $0.seedContacts = 20 }
        let object = Client {
            $0.seedContacts = 20
            $0.avatarAsObject = true
        }
        let strings = await plain.send("GET", "/contacts", query: ["per_page": "20"]).json["data"]!.items.compactMap {
            $0["avatar"]
        }
        let objects = await object.send("GET", "/contacts", query: ["per_page": "20"]).json["data"]!.items.compactMap {
            $0["avatar"]
        }
        let url = try #require(strings.first { $0 != .null }?.string)
        #expect(objects.contains(.object(["type": "avatar", "image_url": .string(url)])))
    }
}
