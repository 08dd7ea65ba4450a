import GRDB

extension ContactMirror {
    /// Runs a query against the mirror. Reads never wait for a writer in another process.
    public func contacts(matching query: ContactQuery) throws -> ContactPage {
        let plan = try QueryPlan(query)
        // One statement answers every sort but relevance, whose cursor takes a second one.
        if plan.sort.field != .relevance, let rows = try reader?.tryFetch(sql: plan.sql, arguments: plan.values) {
            return plan.page(of: rows) { _ in nil }
        }
        return try writer.read { db in
            let rows = try StoredContact.fetchAll(db.cachedStatement(sql: plan.sql), arguments: plan.arguments)
            return try plan.page(of: rows) { last in try plan.rank(of: last, in: db) }
        }
    }

    /// The contact with this Intercom id or local id, body included, in any state. A local id
    /// whose create was pushed resolves to the Intercom contact it became.
    public func contact(id: String) throws -> StoredContact? {
        let sql = """
            SELECT \(StoredContact.columns), contact_body(body) FROM contacts
            WHERE id = ifnull((SELECT id FROM contact_aliases WHERE alias = ?1), ?1)
            """
        if let rows = try reader?.tryFetch(sql: sql, arguments: [id.databaseValue]) { return rows.first }
        return try writer.read { db in try StoredContact.fetchOne(db.cachedStatement(sql: sql), arguments: [id]) }
    }
}

/// A query turned into SQL text and its arguments.
struct QueryPlan {
    let sql: String
    /// The statement's arguments, in order.
    let values: [DatabaseValue]
    var arguments: StatementArguments { StatementArguments(values) }
    let sort: ContactSort
    /// The page size asked for; the statement reads one row more, to know whether more follow.
    let limit: Int
    private let matchExpression: String?

    static let maximumLimit = 10_000

    init(_ query: ContactQuery) throws {
        guard (1...Self.maximumLimit).contains(query.limit) else {
            throw QueryError("the limit must be between 1 and \(Self.maximumLimit), not \(query.limit)")
        }
        if let cursor = query.cursor, cursor.sort != query.sort {
            throw QueryError("this cursor belongs to a query sorted another way; repeat the query with the same sort")
        }
        sort = query.sort
        limit = query.limit
        var conditions: [String] = []
        var values: [DatabaseValue] = []
        func add(_ condition: String, _ items: [(any DatabaseValueConvertible)?]) {
            conditions.append(condition)
            values += items.map { $0?.databaseValue ?? .null }
        }

        if query.states.isEmpty {
            throw QueryError("ask for at least one contact state")
        }
        if query.states.count < ContactState.allCases.count {
            let states = query.states.map(\.rawValue).sorted()
            add(states.count == 1 ? "state = ?" : "state IN (\(databaseQuestionMarks(count: states.count)))", states)
            // The state index holds only contacts that are not synced, and SQLite uses it only
            // for a query that says so in these words.
            if !query.states.contains(.synced) { conditions.append("state != 'synced'") }
        }
        if let email = query.email {
            add("ifnull(email, '') = ? COLLATE NOCASE", [email])
        }
        if let externalID = query.externalID {
            add("external_id = ?", [externalID])
        }
        if let role = query.role {
            add("role = ?", [role.rawValue])
        }
        if let fragment = query.nameContains {
            add("name LIKE ? ESCAPE '\\'", ["%" + Self.escapeLike(fragment) + "%"])
        }
        if let since = query.updatedSince {
            add("updated_at >= ?", [since])
        }
        if let before = query.updatedBefore {
            add("updated_at < ?", [before])
        }
        for (name, value) in query.customAttributes.sorted(by: { $0.key < $1.key }) {
            let (typeCondition, comparand) = Self.customAttributeComparison(value)
            add(
                "EXISTS (SELECT 1 FROM json_each(contacts.custom_attributes) AS a WHERE a.key = ? AND \(typeCondition))",
                [name] + comparand)
        }

        if let search = query.search {
            matchExpression = try Self.matchExpression(for: search)
        } else if sort.field == .relevance {
            throw QueryError("sorting by relevance needs a search text")
        } else {
            matchExpression = nil
        }

        let keyExpression: String
        var from = "contacts"
        switch sort.field {
        case .updatedAt: keyExpression = "updated_at"
        case .name: keyExpression = "ifnull(name, '') COLLATE NOCASE"
        case .email: keyExpression = "ifnull(email, '') COLLATE NOCASE"
        case .relevance: keyExpression = "contacts_fts.rank"
        case .stored: keyExpression = matchExpression == nil ? "contacts.row_id" : "contacts_fts.rowid"
        }
        if let matchExpression {
            if sort.field == .relevance || sort.field == .stored {
                from = "contacts_fts JOIN contacts ON contacts.row_id = contacts_fts.rowid"
                add("contacts_fts MATCH ?", [matchExpression])
            } else {
                add("row_id IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)", [matchExpression])
            }
        }
        if let cursor = query.cursor {
            let comparison = sort.descending ? "<" : ">"
            let keyValue: any DatabaseValueConvertible
            switch cursor.key {
            case .integer(let value): keyValue = value
            case .text(let value): keyValue = value
            case .real(let value): keyValue = value
            }
            if sort.field == .stored {
                add("\(keyExpression) \(comparison) ?", [cursor.rowID])
            } else {
                add("(\(keyExpression), contacts.row_id) \(comparison) (?, ?)", [keyValue, cursor.rowID])
            }
        }
        let direction = sort.descending ? "DESC" : "ASC"
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        // Stored order is the row order itself: a single ORDER BY term lets FTS5 hand rows over
        // in rowid order and stop at the limit.
        let order =
            sort.field == .stored
            ? "\(keyExpression) \(direction)" : "\(keyExpression) \(direction), contacts.row_id \(direction)"
        sql = """
            SELECT \(StoredContact.qualifiedColumns) FROM \(from) \(whereClause) ORDER BY \(order) LIMIT ?
            """
        values.append((query.limit + 1).databaseValue)
        self.values = values
    }

    /// The page the rows (up to `limit + 1` of them) make, with the cursor after its last row
    /// when there are more. `rank` gives the last row's rank, for a relevance sort.
    func page(of rows: [StoredContact], rank: (StoredContact) throws -> Double?) rethrows -> ContactPage {
        let contacts = Array(rows.prefix(limit))
        guard rows.count > limit, let last = contacts.last else { return ContactPage(contacts: contacts, nextCursor: nil) }
        let key: ContactCursor.Key
        switch sort.field {
        case .updatedAt: key = .integer(Int64(last.contact.updatedAt))
        case .name: key = .text(last.contact.name ?? "")
        case .email: key = .text(last.contact.email ?? "")
        case .stored: key = .integer(last.rowID)
        case .relevance: key = .real(try rank(last) ?? 0)
        }
        return ContactPage(contacts: contacts, nextCursor: ContactCursor(sort: sort, key: key, rowID: last.rowID))
    }

    /// A row's FTS rank for this query's search.
    func rank(of contact: StoredContact, in db: Database) throws -> Double? {
        guard sort.field == .relevance else { return nil }
        return try Double.fetchOne(
            db, sql: "SELECT rank FROM contacts_fts WHERE contacts_fts MATCH ? AND rowid = ?",
            arguments: [matchExpression, contact.rowID])
    }

    /// An FTS5 expression in which every word of `text` is a quoted prefix: user input can never
    /// be read as FTS syntax.
    static func matchExpression(for text: String) throws -> String {
        let words = text.split { !($0.isLetter || $0.isNumber) }
        guard !words.isEmpty else {
            throw QueryError("the search text \"\(text)\" has no letters or digits to look for")
        }
        return words.map { "\"\($0)\"*" }.joined(separator: " ")
    }

    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// How a JSON value compares against `json_each`'s `type` and `value` columns.
    static func customAttributeComparison(_ value: JSONValue) -> (String, [(any DatabaseValueConvertible)?]) {
        switch value {
        case .null: return ("a.type = 'null'", [])
        case .bool(let flag): return ("a.type = ?", [flag ? "true" : "false"])
        case .int(let number): return ("a.type IN ('integer', 'real') AND a.value = ?", [number])
        case .double(let number): return ("a.type IN ('integer', 'real') AND a.value = ?", [number])
        case .string(let text): return ("a.type = 'text' AND a.value = ?", [text])
        case .array, .object: return ("a.type IN ('array', 'object') AND json(a.value) = json(?)", [value.jsonText])
        }
    }
}
