import Foundation
import IntercomSync

/// Renders mirrored contacts for people (a table) and for scripts (JSON, NDJSON, CSV).
public enum ContactRenderer {
    public enum Format: String, Sendable, CaseIterable {
        case table, json, ndjson, csv
    }

    /// The flat, stable shape a contact takes in JSON, NDJSON and CSV output.
    struct Record: Encodable {
        var id: String
        var external_id: String?
        var role: String
        var email: String?
        var phone: String?
        var name: String?
        var avatar: String?
        var owner_id: String?
        var custom_attributes: [String: JSONValue]
        var created_at: Int
        var updated_at: Int
        var state: String

        init(_ stored: StoredContact) {
            let contact = stored.contact
            id = contact.id
            external_id = contact.externalID
            role = contact.role.rawValue
            email = contact.email
            phone = contact.phone
            name = contact.name
            avatar = contact.avatarURL
            owner_id = contact.ownerID
            custom_attributes = contact.customAttributes
            created_at = contact.createdAt
            updated_at = contact.updatedAt
            state = stored.state.rawValue
        }

        func encode(to encoder: any Encoder) throws {
            // Explicit nulls: a script reading the output sees every key on every row.
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(id, forKey: .id)
            try container.encode(external_id, forKey: .external_id)
            try container.encode(role, forKey: .role)
            try container.encode(email, forKey: .email)
            try container.encode(phone, forKey: .phone)
            try container.encode(name, forKey: .name)
            try container.encode(avatar, forKey: .avatar)
            try container.encode(owner_id, forKey: .owner_id)
            try container.encode(custom_attributes, forKey: .custom_attributes)
            try container.encode(created_at, forKey: .created_at)
            try container.encode(updated_at, forKey: .updated_at)
            try container.encode(state, forKey: .state)
        }

        enum Key: String, CodingKey {
            case id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes, created_at
            case updated_at, state
        }
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// One contact as a single-line JSON object.
    public static func jsonLine(_ contact: StoredContact) -> String {
        String(decoding: (try? encoder().encode(Record(contact))) ?? Data(), as: UTF8.self)
    }

    /// `{"contacts":[…],"next_cursor":…}`.
    public static func jsonDocument(_ contacts: [StoredContact], nextCursor: String?) -> String {
        let lines = contacts.map(jsonLine).joined(separator: ",")
        let cursor = nextCursor.map { "\"\($0)\"" } ?? "null"
        return "{\"contacts\":[\(lines)],\"next_cursor\":\(cursor)}"
    }

    public static let csvColumns = [
        "id", "external_id", "role", "email", "phone", "name", "avatar", "owner_id", "custom_attributes",
        "created_at", "updated_at", "state",
    ]

    public static func csvRow(_ stored: StoredContact) -> String {
        let contact = stored.contact
        let cells: [String] = [
            contact.id, contact.externalID ?? "", contact.role.rawValue, contact.email ?? "", contact.phone ?? "",
            contact.name ?? "", contact.avatarURL ?? "", contact.ownerID ?? "",
            JSONValue.object(contact.customAttributes).jsonText, String(contact.createdAt),
            String(contact.updatedAt), stored.state.rawValue,
        ]
        return cells.map(csvCell).joined(separator: ",")
    }

    /// Quotes a cell per RFC 4180 and defuses spreadsheet formulas: a cell that begins with
    /// `=`, `+`, `-` or `@` is prefixed with `'`, so opening the file never runs anything.
    public static func csvCell(_ value: String) -> String {
        var cell = value
        if let first = cell.first, "=+-@".contains(first) {
            cell = "'" + cell
        }
        if cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            cell = "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return cell
    }

    /// A fixed-width table with a header line; long cells are cut with "…". Cells are
    /// `TerminalText.escaped`, as in `details`: a contact's fields never act on the terminal.
    /// A contact in `edited` shows `, edited` after its state: its edits wait for a flush.
    public static func table(_ contacts: [StoredContact], edited: Set<String> = []) -> String {
        let header = ["ID", "ROLE", "EMAIL", "NAME", "PHONE", "UPDATED", "STATE"]
        let rows = contacts.map { stored -> [String] in
            let contact = stored.contact
            return [
                contact.id, contact.role.rawValue, contact.email ?? "", contact.name ?? "", contact.phone ?? "",
                String(UnixTime.iso8601(contact.updatedAt).prefix(16)).replacingOccurrences(of: "T", with: " "),
                stored.state.rawValue + (edited.contains(contact.id) ? ", edited" : ""),
            ].map { cut($0, to: 40) }
        }
        return layout([header] + rows)
    }

    /// Fields of one contact as aligned `name  value` lines.
    /// Fields edited offline and not yet on Intercom are listed under `edited`, those of them
    /// in conflict (`inConflict`) marked so.
    public static func details(
        _ stored: StoredContact, links: ContactLinks = ContactLinks(), pendingEdits: [PendingEdit] = [],
        inConflict: Set<ContactField> = []
    ) -> String {
        let contact = stored.contact
        var lines: [[String]] = [
            ["id", contact.id],
            ["state", stored.state.rawValue],
        ]
        if !pendingEdits.isEmpty {
            let fields = pendingEdits.map { $0.field.description + (inConflict.contains($0.field) ? " (in conflict)" : "") }
            let why =
                stored.state == .tombstoned
                ? "not sent: the contact is gone from Intercom, or to be deleted"
                : pendingEdits.allSatisfy({ inConflict.contains($0.field) })
                    ? "shown here; `outbox resolve` settles them" : "shown here; `outbox flush` sends them"
            lines.append(["edited", fields.joined(separator: ", ") + " (\(why))"])
        }
        lines += [
            ["role", contact.role.rawValue],
            ["email", contact.email ?? "—"],
            ["name", contact.name ?? "—"],
            ["phone", contact.phone ?? "—"],
            ["external_id", contact.externalID ?? "—"],
            ["avatar", contact.avatarURL ?? "—"],
            ["owner_id", contact.ownerID ?? "—"],
            ["created_at", UnixTime.iso8601(contact.createdAt)],
            ["updated_at", UnixTime.iso8601(contact.updatedAt)],
        ]
        for (name, value) in contact.customAttributes.sorted(by: { $0.key < $1.key }) {
            lines.append(["custom.\(name)", value.jsonText])
        }
        lines.append(["tags", links.tags.isEmpty ? "—" : links.tags.joined(separator: ", ")])
        lines.append(["companies", links.companies.isEmpty ? "—" : links.companies.joined(separator: ", ")])
        if !links.segments.isEmpty { lines.append(["segments", links.segments.joined(separator: ", ")]) }
        lines.append(["fetched_at", stored.fetchedAt.map(UnixTime.iso8601) ?? "never"])
        lines.append(["validated_at", stored.validatedAt.map(UnixTime.iso8601) ?? "never"])
        lines.append(["etag", stored.etag ?? "—"])
        return layout(lines)
    }

    /// A contact's notes, one block each (when, who, then the text with its HTML tags taken
    /// out), the unsent first; nil when it has none.
    public static func notes(_ notes: ContactNotes) -> String? {
        guard !notes.notes.isEmpty || notes.missing > 0 else { return nil }
        var heading = "notes"
        if notes.missing > 0 {
            heading += " (\(notes.missing) on Intercom not read yet: `contacts get --refresh` reads them)"
        }
        var blocks = [heading]
        for note in notes.notes {
            var line: String
            if let seq = note.outboxSeq {
                line = "  \(note.outboxState?.rawValue ?? "pending") (#\(seq), written \(UnixTime.iso8601(note.createdAt)))"
            } else {
                line = "  \(UnixTime.iso8601(note.createdAt))"
            }
            if let author = note.authorName ?? note.authorID.map({ "admin \($0)" }) { line += " by \(author)" }
            blocks.append(TerminalText.escaped(line))
            for textLine in plainText(note.body).split(separator: "\n", omittingEmptySubsequences: false) {
                blocks.append("    " + TerminalText.escaped(String(textLine)))
            }
        }
        return blocks.joined(separator: "\n")
    }

    /// A note's HTML as plain text: paragraphs and line breaks become new lines, other tags go,
    /// and the common entities are decoded.
    static func plainText(_ html: String) -> String {
        var text = html.replacingOccurrences(
            of: #"<\s*(br\s*/?|/p|/div|/li)\s*>"#, with: "\n", options: [.regularExpression, .caseInsensitive])
        text = text.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
        for (entity, character) in [
            ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&nbsp;", " "), ("&amp;", "&"),
        ] {
            text = text.replacingOccurrences(of: entity, with: character)
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Aligned columns, every cell escaped for a terminal.
    public static func layout(_ rows: [[String]]) -> String {
        let rows = rows.map { $0.map { TerminalText.escaped($0) } }
        guard let columnCount = rows.first?.count else { return "" }
        let widths = (0..<columnCount).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == columnCount - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func cut(_ text: String, to width: Int) -> String {
        let singleLine = TerminalText.escaped(text.replacingOccurrences(of: "\n", with: " "))
        return singleLine.count <= width ? singleLine : String(singleLine.prefix(width - 1)) + "…"
    }
}
