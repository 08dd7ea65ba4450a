/// A message to send, with the fields Intercom's send-message action takes.
public struct MessageDraft: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case inApp = "inapp"
        case email

        /// Reads `inapp`, `in_app` or `email`.
        public init?(name: String) {
            switch name.lowercased() {
            case "inapp", "in_app", "in-app": self = .inApp
            case "email": self = .email
            default: return nil
            }
        }
    }

    public enum Template: String, Sendable, CaseIterable {
        case plain
        case personal
    }

    public var kind: Kind
    /// Required for email; in-app messages have none.
    public var subject: String?
    /// Plain text or HTML.
    public var body: String
    /// Email only; `plain` when not given.
    public var template: Template?
    /// The recipient: an Intercom id, a local id (`local_…`), or an email the mirror knows.
    public var to: String
    /// The sending admin's id; nil sends as the admin the token belongs to (`GET /me`).
    public var from: String?

    public init(
        kind: Kind, subject: String? = nil, body: String, template: Template? = nil, to: String, from: String? = nil
    ) {
        self.kind = kind
        self.subject = subject
        self.body = body
        self.template = template
        self.to = to
        self.from = from
    }

    public var problems: [FieldProblem] {
        var problems: [FieldProblem] = []
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            problems.append(FieldProblem("body", "is required"))
        }
        switch kind {
        case .email:
            if (subject ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                problems.append(FieldProblem("subject", "is required for an email"))
            }
        case .inApp:
            if subject != nil { problems.append(FieldProblem("subject", "only an email has a subject")) }
            if template != nil { problems.append(FieldProblem("template", "only an email has a template")) }
        }
        if to.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append(FieldProblem("to", "is required: an Intercom id, a local id or an email"))
        }
        if let from, from.isEmpty || from.contains(where: \.isWhitespace) {
            problems.append(FieldProblem("from", "\"\(from)\" is not an admin id"))
        }
        return problems
    }

    public func validate() throws {
        let problems = problems
        if !problems.isEmpty { throw DraftError(problems: problems) }
    }

    /// The body of `POST /messages` without `from` and `to`, which are settled when it is sent.
    var payload: JSONValue {
        var fields: [String: JSONValue] = ["message_type": .string(kind.rawValue), "body": .string(body)]
        if kind == .email {
            fields["subject"] = subject.map(JSONValue.string) ?? .null
            fields["template"] = .string((template ?? .plain).rawValue)
        }
        if let from { fields["from"] = .object(["type": "admin", "id": .string(from)]) }
        return .object(fields)
    }
}
