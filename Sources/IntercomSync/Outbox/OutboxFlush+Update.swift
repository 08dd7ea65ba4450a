import Foundation

/// Sending `update_contact` entries: a contact's offline edits, merged three ways, field by
/// field, with the contact as Intercom has it just before.
///
/// The flush reads the contact (`GET /contacts/{id}`), then for each edited field compares
/// Intercom's value with the edit's base (the value when it was edited) and the edit itself:
/// Intercom still has the base, so the edit is sent; Intercom already has the edit, so nothing
/// is; Intercom has a third value, a colleague's change, so neither is overwritten and the
/// entry ends in `conflict` for a person to choose. `PUT /contacts/{id}` carries only the
/// fields to send, and custom attributes as Intercom's map with the edited keys set, so that
/// keys edited by others stay whatever Intercom does with a partial map. A `PUT` may be sent
/// again without harm, so an entry whose answer was lost goes back to the queue and its next
/// merge finds the edit already there.
extension OutboxFlush {
    func sendUpdate(_ entry: OutboxEntry, in run: FlushRun) async throws {
        defer { run.advance() }
        guard case .edits(let contactID, let edits) = try await mirror.prepareUpdate(seq: entry.seq, now: now()) else {
            return
        }
        let path = "/contacts/\(IntercomClient.pathComponent(contactID))"
        do {
            let current = try await client.sendJSON("GET", path, maximumBodyBytes: HTTPRequest.maximumObjectBytes)
            guard case .object(let theirs) = try JSONValue(jsonText: current.text) else {
                throw IntercomError(
                    kind: .permanent, status: 200, code: "malformed_response",
                    message: "GET \(path) answered something other than a contact", operation: "GET \(path)")
            }
            let (outcomes, request) = Self.merge(edits, with: theirs)
            var answer = current.text
            if !request.isEmpty {
                answer = try await client.sendJSON(
                    "PUT", path, json: JSONValue.object(request).jsonText, maximumBodyBytes: HTTPRequest.maximumObjectBytes
                ).text
            }
            let conflicts = try await mirror.completeUpdate(
                seq: entry.seq, contactID: contactID, edits: edits, outcomes: outcomes, contactJSON: answer, now: now())
            run.update { if conflicts.isEmpty { $0.contactsUpdated += 1 } else { $0.conflicts += 1 } }
        } catch let error as IntercomError where error.status == 404 || error.status == 410 {
            var failure = OutboxEntry.Failure(error)
            failure.message =
                "contact \(contactID) is gone from Intercom (deleted, archived, or merged into another): \(error.message)"
            try await mirror.failUpdateOfGoneContact(seq: entry.seq, contactID: contactID, failure: failure, now: now())
            run.update { $0.failed += 1 }
        } catch let error as IntercomError {
            try await settleFailure(entry, error, in: run)
        }
    }

    /// Each edit's outcome against Intercom's version of the contact (`theirs`, its JSON), and
    /// the body of the `PUT` that sends the edits to send (empty when there are none).
    static func merge(_ edits: [ContactMirror.FieldEdit], with theirs: [String: JSONValue]) -> (
        outcomes: [ContactField: EditOutcome], request: [String: JSONValue]
    ) {
        var outcomes: [ContactField: EditOutcome] = [:]
        var request: [String: JSONValue] = [:]
        var attributes: [String: JSONValue]?
        for edit in edits {
            let server = ContactMirror.serverValue(of: edit.field, in: theirs)
            if (server ?? .null) == edit.mine {
                outcomes[edit.field] = .alreadySo(edit.mine)
            } else if (server ?? .null) == (edit.base ?? .null) {
                outcomes[edit.field] = .sent(edit.mine)
                switch edit.field {
                case .customAttribute(let key):
                    if attributes == nil {
                        if case .object(let map)? = theirs["custom_attributes"] { attributes = map } else { attributes = [:] }
                    }
                    attributes?[key] = edit.mine
                case .ownerID:
                    // Intercom takes an admin id as a number.
                    request["owner_id"] = edit.mine.string.flatMap { Int64($0) }.map(JSONValue.int) ?? edit.mine
                default:
                    request[edit.field.bodyKey] = edit.mine
                }
            } else {
                outcomes[edit.field] = .conflict(theirs: server)
            }
        }
        if let attributes { request["custom_attributes"] = .object(attributes) }
        return (outcomes, request)
    }
}
