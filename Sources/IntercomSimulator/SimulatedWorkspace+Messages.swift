import Foundation
import IntercomJSON

/// `POST /messages`: in-app and email messages from an admin to a contact.
extension SimulatedWorkspace {
    func sendMessage(_ body: JSONValue) throws -> JSONValue {
        let type = body["message_type"]?.string
        guard let type, ["inapp", "in_app", "email"].contains(type) else {
            throw APIError.invalid("message_type must be inapp or email", field: "message_type")
        }
        guard let text = body["body"]?.string, !text.isEmpty else {
            throw APIError.invalid("Body is required", field: "body")
        }
        if type == "email" {
            guard let subject = body["subject"]?.string, !subject.isEmpty else {
                throw APIError(422, "parameter_not_found", "No subject supplied for email message")
            }
            guard let template = body["template"]?.string, template == "plain" || template == "personal" else {
                throw APIError.invalid("template must be plain or personal for an email", field: "template")
            }
        }
        guard let from = body["from"], from["type"]?.string == "admin",
            let adminID = from["id"]?.string ?? from["id"]?.int.map(String.init)
        else {
            throw APIError.invalid("from must be {\"type\": \"admin\", \"id\": …}", field: "from")
        }
        guard let admin = Self.admins.first(where: { $0.id == adminID }) else {
            throw APIError(404, "admin_not_found", "Admin Not Found")
        }
        var recipients: [JSONValue] = []
        switch body["to"] {
        case .array(let items)?: recipients = items
        case let single?: recipients = [single]
        case nil: throw APIError.invalid("to is required", field: "to")
        }
        guard !recipients.isEmpty else { throw APIError.invalid("to is required", field: "to") }
        for recipient in recipients {
            guard let kind = recipient["type"]?.string, kind == "user" || kind == "lead", let id = recipient["id"]?.string else {
                throw APIError.invalid("to must be {\"type\": \"user\" or \"lead\", \"id\": …}", field: "to")
            }
            guard live(id) != nil else { throw APIError.notFound() }
        }
        var fields: [String: JSONValue] = [
            "type": "admin_message", "id": .string(String(messages.count + 1)), "created_at": .int(Int64(clock.now)),
            "body": .string(text),
            "message_type": .string(type == "in_app" ? "inapp" : type),
            "owner": .object([
                "type": "admin", "id": .string(admin.id), "name": .string(admin.name), "email": .string(admin.email),
                "away_mode_enabled": false, "away_mode_reassign": false,
            ]),
        ]
        if let subject = body["subject"]?.string { fields["subject"] = .string(subject) }
        var stored = fields
        stored["to"] = body["to"]
        messages.append(.object(stored))
        return .object(fields)
    }
}
