import GRDB

extension ContactMirror {
    /// Runs a query against the mirror. Reads never wait for a writer in another process.
    package func contacts(matching query: ContactQuery) throws -> ContactPage {
        let plan = try QueryPlan(query)
        if let page = try reader?.tryRead(snapshot: plan.needsSnapshot, { session in try plan.run(on: session) }) {
            return page
        }
        return try poolRead { db in try plan.run(on: PoolQueries(db: db)) }
    }

    /// The contact with this Intercom id or local id, body included, in any state. A local id
    /// whose create was pushed resolves to the Intercom contact it became.
    package func contact(id: String) throws -> StoredContact? {
        let statement = PlannedStatement(
            sql: """
                SELECT \(StoredContact.columns), contact_body(body) FROM contacts
                WHERE id = ifnull((SELECT id FROM contact_aliases WHERE alias = ?1), ?1)
                """,
            values: [id.databaseValue])
        if let rows = try reader?.tryRead(snapshot: false, { session in try session.contacts(statement) }) {
            return rows.first
        }
        return try poolRead { db in try PoolQueries(db: db).contacts(statement).first }
    }
}

/// A query turned into SQL statements, and the way to run them.
///
/// Most queries are one statement. Two kinds of search are not, because a short prefix can match
/// tens of thousands of contacts and no single statement reads only the first page of them:
///
/// - **By relevance**, contacts rank in tiers, each one a full-text expression that FTS answers in
///   row order and stops reading at the limit (see `relevanceTiers`). A page reads the tiers in
///   turn until it is full, so it never ranks every match.
/// - **By `updated_at`**, a first statement counts the matches, up to a bound, and picks the
///   cheapest of three ways (`SearchWay`, `walkThresholds`): read the few matches' rows and sort
///   them; walk the `updated_at` index against the matches gathered in one pass of the full-text
///   index; or, for a search that matches a large share of the mirror, walk the index and decide
///   each row from its own text (`contact_matches`).
struct QueryPlan {
    let sort: ContactSort
    /// The page size asked for; a statement reads one row more, to know whether more follow.
    let limit: Int
    /// The conditions other than the search and the cursor, and their arguments.
    private let conditions: [String]
    private let conditionValues: [DatabaseValue]
    /// The search's words, each to be the prefix of a word of the name, email or phone.
    private let words: [Substring]
    private let cursor: ContactCursor?
    /// Whether an index on another column serves the query better than a walk of `updated_at`.
    private let hasSelectiveFilter: Bool
    /// The tag, company and segment filters (`linkFilters`), each a condition on a link `l`.
    private let links: [LinkFilter]
    /// Whether one of `links` may drive the query (`drivingLink`): sorted by `updated_at`, with
    /// no search and no filter an index serves better.
    private let linksMayDrive: Bool

    static let maximumLimit = 10_000

    /// The states in the order of their names, as a condition lists them.
    private static let statesByName = ContactState.allCases.sorted { $0.rawValue < $1.rawValue }

    init(_ query: ContactQuery) throws {
        guard (1...Self.maximumLimit).contains(query.limit) else {
            throw QueryError("the limit must be between 1 and \(Self.maximumLimit), not \(query.limit)")
        }
        if let cursor = query.cursor, cursor.sort != query.sort {
            throw QueryError("this cursor belongs to a query sorted another way; repeat the query with the same sort")
        }
        if query.sort.field == .relevance, let cursor = query.cursor, case .real = cursor.key {
            throw QueryError(
                "this cursor comes from an earlier version, which ranked searches another way; repeat the query")
        }
        sort = query.sort
        limit = query.limit
        cursor = query.cursor
        var conditions: [String] = []
        var values: [DatabaseValue] = []
        func add(_ condition: String, _ items: DatabaseValue...) {
            conditions.append(condition)
            values += items
        }

        if query.states.isEmpty {
            throw QueryError("ask for at least one contact state")
        }
        if query.states.count < ContactState.allCases.count {
            let states = Self.statesByName.filter(query.states.contains)
            add(states.count == 1 ? "state = ?" : "state IN (?, ?)")
            values += states.map(\.rawValue.databaseValue)
            // The state index holds only contacts that are not synced, and SQLite uses it only
            // for a query that says so in these words.
            if !query.states.contains(.synced) { conditions.append("state != 'synced'") }
        }
        if query.archivedOnly {
            conditions.append(
                """
                EXISTS (SELECT 1 FROM outbox AS archive WHERE archive.contact_id = contacts.id
                    AND archive.kind = 'archive_contact' AND archive.state IN ('pending', 'in_flight', 'sent')
                    AND NOT EXISTS (SELECT 1 FROM outbox AS later WHERE later.contact_id = contacts.id
                        AND later.kind = 'unarchive_contact' AND later.seq > archive.seq))
                """)
        }
        if let email = query.email {
            if UnicodeLower.needsUnicode(email) {
                add("\(UnicodeLower.name)(ifnull(email, '')) = ?", email.lowercased().databaseValue)
            } else {
                add("ifnull(email, '') = ? COLLATE NOCASE", email.databaseValue)
            }
        }
        if let externalID = query.externalID {
            add("external_id = ?", externalID.databaseValue)
        }
        if let role = query.role {
            add("role = ?", role.rawValue.databaseValue)
        }
        if let fragment = query.nameContains {
            if UnicodeLower.needsUnicode(fragment) {
                add(
                    "\(UnicodeLower.name)(name) LIKE ? ESCAPE '\\'",
                    ("%" + Self.escapeLike(fragment.lowercased()) + "%").databaseValue)
            } else {
                add("name LIKE ? ESCAPE '\\'", ("%" + Self.escapeLike(fragment) + "%").databaseValue)
            }
        }
        if let since = query.updatedSince {
            add("updated_at >= ?", since.databaseValue)
        }
        if let before = query.updatedBefore {
            add("updated_at < ?", before.databaseValue)
        }
        for (name, value) in query.customAttributes.sorted(by: { $0.key < $1.key }) {
            let (typeCondition, comparand) = Self.customAttributeComparison(value)
            conditions.append(
                "EXISTS (SELECT 1 FROM json_each(contacts.custom_attributes) AS a WHERE a.key = ? AND \(typeCondition))")
            values += [name.databaseValue] + comparand
        }
        links = Self.linkFilters(query)
        hasSelectiveFilter = query.email != nil || query.externalID != nil
        linksMayDrive = query.search == nil && query.sort.field == .updatedAt && !hasSelectiveFilter && !links.isEmpty
        self.conditions = conditions
        conditionValues = values

        if let search = query.search {
            words = try Self.words(of: search)
        } else if sort.field == .relevance {
            throw QueryError("sorting by relevance needs a search text")
        } else {
            words = []
        }
    }

    /// A tag, company or segment filter: a condition on a link `l`. `oneTarget`: it names one
    /// tag or segment, whose links come in `updated_at` order from their index; the others (any
    /// of several tags, companies by a name several may share) gather their links and sort them.
    struct LinkFilter {
        var condition: String
        var values: [DatabaseValue]
        var oneTarget: Bool
    }

    /// The query's tag, company and segment filters: every tag and segment alone, the other
    /// tags and the companies each as one (any of them).
    private static func linkFilters(_ query: ContactQuery) -> [LinkFilter] {
        var filters: [LinkFilter] = []
        for tag in query.tags {
            filters.append(
                LinkFilter(
                    condition: "l.kind = 0 AND l.target = (SELECT id FROM tags WHERE name_key = ? ORDER BY id LIMIT 1)",
                    values: [LinkName.key(tag).databaseValue], oneTarget: true))
        }
        for segment in query.segments {
            filters.append(
                LinkFilter(
                    condition: "l.kind = 2 AND l.target = (SELECT id FROM segments WHERE name_key = ? ORDER BY id LIMIT 1)",
                    values: [LinkName.key(segment).databaseValue], oneTarget: true))
        }
        if !query.anyTags.isEmpty {
            filters.append(
                LinkFilter(
                    condition:
                        "l.kind = 0 AND l.target IN (SELECT id FROM tags WHERE name_key IN (\(databaseQuestionMarks(count: query.anyTags.count))))",
                    values: query.anyTags.map { LinkName.key($0).databaseValue }, oneTarget: false))
        }
        if !query.companies.isEmpty {
            let names = databaseQuestionMarks(count: query.companies.count)
            filters.append(
                LinkFilter(
                    condition:
                        "l.kind = 1 AND l.target IN (SELECT id FROM companies WHERE name_key IN (\(names)) OR company_id IN (\(names)))",
                    values: query.companies.map { LinkName.key($0).databaseValue } + query.companies.map(\.databaseValue),
                    oneTarget: false))
        }
        return filters
    }

    /// Links counted a filter at most, to choose the one that drives the query.
    static let drivingCountBound = 2_000

    /// Which link filter drives a query sorted by `updated_at` (its links read in order, or
    /// gathered and sorted), or nil for a walk of the `updated_at` index that checks each
    /// contact's links. A lone filter of one tag or segment always drives; otherwise each is
    /// counted, up to `drivingCountBound` links, and the fewest drives, unless those are many
    /// links of several targets: sorting them all would cost more than the walk.
    func drivingLink(on runner: some QueryRunner) throws -> Int? {
        guard linksMayDrive else { return nil }
        if links.count == 1 && links[0].oneTarget { return 0 }
        var best: (index: Int, count: Int64)?
        for (index, link) in links.enumerated() {
            let count = try runner.integer(
                PlannedStatement(
                    sql: "SELECT count(*) FROM (SELECT 1 FROM contact_links l WHERE \(link.condition) LIMIT ?)",
                    values: link.values + [Self.drivingCountBound.databaseValue]))
            if count < best?.count ?? .max { best = (index, count) }
        }
        guard let best else { return nil }
        if !links[best.index].oneTarget && best.count >= Self.drivingCountBound { return nil }
        return best.index
    }

    /// Whether the query runs several statements, which must read one snapshot.
    var needsSnapshot: Bool {
        !words.isEmpty && (sort.field == .relevance || sort.field == .updatedAt || sort.field == .stored)
    }

    func run(on runner: some QueryRunner) throws -> ContactPage {
        if words.isEmpty {
            return page(of: try runner.contacts(statement(driver: try drivingLink(on: runner))))
        }
        if sort.field == .stored {
            // The full-text matches and the contacts of matching companies, each in row order,
            // merged.
            let matches = try runner.contacts(storedStatement(match: matchExpression, after: cursor?.rowID))
            let viaCompanies = try runner.contacts(companyMatchStatement(after: cursor?.rowID, count: limit + 1))
            var seen = Set<Int64>()
            let merged = (matches + viaCompanies).filter { seen.insert($0.rowID).inserted }
                .sorted { sort.descending ? $0.rowID > $1.rowID : $0.rowID < $1.rowID }
            return page(of: Array(merged.prefix(limit + 1)))
        }
        switch sort.field {
        case .relevance: return try rankedPage(on: runner)
        case .updatedAt where !hasSelectiveFilter:
            let total = try runner.integer(PlannedStatement(sql: "SELECT ifnull(max(row_id), 0) FROM contacts", values: []))
            let thresholds = Self.walkThresholds(limit: limit, contacts: total)
            let matches = try runner.integer(
                PlannedStatement(
                    sql: "SELECT count(*) FROM (SELECT 1 FROM contacts_fts WHERE contacts_fts MATCH ? LIMIT ?)",
                    values: [matchExpression.databaseValue, (thresholds.checkingRows + 1).databaseValue]))
            let way: SearchWay =
                matches > thresholds.checkingRows ? .checkingRows : matches > thresholds.walking ? .walking : .readingMatches
            return page(of: try runner.contacts(statement(way)))
        default:
            return page(of: try runner.contacts(statement()))
        }
    }

    /// How a search sorted by a key other than relevance finds its page.
    enum SearchWay {
        /// Read every match's row and sort them: for a search that matches few.
        case readingMatches
        /// Walk the sort key's index and keep the entries among the matches, gathered first.
        case walking
        /// Walk the sort key's index and ask each row's text (`contact_matches`): for a search
        /// that matches many, where gathering them all would cost more than the walk.
        case checkingRows
    }

    /// The match counts above which each walk costs less than the way before it. Reading a
    /// match costs a row lookup, about three entries of a walk that gathered the matches, or
    /// one of a walk that checks rows; a walk reads about `(limit + 1) * contacts / matches`
    /// entries; gathering costs a tenth of a lookup a match. Each pair meets near the square
    /// root of the product of their costs.
    static func walkThresholds(limit: Int, contacts: Int64) -> (walking: Int, checkingRows: Int) {
        let entries = Double(limit + 1) * Double(max(contacts, 1))
        let walking = max(200, Int((entries / 3).squareRoot()))
        return (walking, max(walking, Int((entries * 10).squareRoot())))
    }

    /// The FTS5 expression of the search: every word a quoted prefix, so that user input is
    /// never read as FTS syntax.
    var matchExpression: String { quotedPrefixes.joined(separator: " ") }

    /// Each word as a quoted FTS5 prefix, `"ana"*`.
    private var quotedPrefixes: [String] { words.map { "\"\($0)\"*" } }

    /// The statement of a query that has one: every sort without a search, or in stored order, or
    /// by name, email or `updated_at`. With a search, `way` says how it finds the matches (the
    /// walks only for `updated_at`).
    func statement(_ way: SearchWay = .readingMatches, driver: Int? = nil) -> PlannedStatement {
        var conditions = conditions
        var values = conditionValues
        appendLinkConditions(to: &conditions, &values, except: driver)
        let keyExpression: String
        switch sort.field {
        case .updatedAt: keyExpression = "updated_at"
        case .name: keyExpression = "ifnull(name, '') COLLATE NOCASE"
        case .email: keyExpression = "ifnull(email, '') COLLATE NOCASE"
        case .stored, .relevance: return storedStatement(match: words.isEmpty ? nil : matchExpression, after: cursor?.rowID)
        }
        if !words.isEmpty {
            // With no condition SQLite could look up by an index, it walks the sort key's. (No
            // INDEXED BY: a bulk load in another process may have dropped the index for now.)
            switch way {
            case .readingMatches:
                conditions.append(
                    "row_id IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? UNION ALL \(Self.companyContacts))")
                values += [matchExpression.databaseValue, matchExpression.databaseValue]
            case .walking:
                // The unary plus keeps SQLite from reading the matches' rows by their row_id.
                conditions.append(
                    "+row_id IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? UNION ALL \(Self.companyContacts))")
                values += [matchExpression.databaseValue, matchExpression.databaseValue]
            case .checkingRows:
                conditions.append("(contact_matches(?, name, email, phone) OR row_id IN (\(Self.companyContacts)))")
                values += [words.joined(separator: " ").databaseValue, matchExpression.databaseValue]
            }
        }
        var from = "contacts"
        var key = (keyExpression, "contacts.row_id")
        if let driver, sort.field == .updatedAt {
            // The link's copy of `updated_at` orders the page, read from the link index in order.
            from = "contact_links l JOIN contacts ON contacts.row_id = l.contact_row"
            key = ("l.contact_updated_at", "l.contact_row")
            conditions.insert(links[driver].condition, at: 0)
            values.insert(contentsOf: links[driver].values, at: 0)
        }
        if let cursor {
            let keyValue: DatabaseValue
            switch cursor.key {
            case .integer(let value): keyValue = value.databaseValue
            case .text(let value): keyValue = value.databaseValue
            case .real(let value): keyValue = value.databaseValue
            }
            conditions.append("(\(key.0), \(key.1)) \(sort.descending ? "<" : ">") (?, ?)")
            values += [keyValue, cursor.rowID.databaseValue]
        }
        let direction = sort.descending ? " DESC" : " ASC"
        values.append((limit + 1).databaseValue)
        return PlannedStatement(
            sql: Self.select(
                StoredContact.qualifiedColumns, from: from, conditions, order: [key.0, direction, ", ", key.1, direction]),
            values: values)
    }

    /// Each link filter but the driver, as a condition on the contact.
    private func appendLinkConditions(to conditions: inout [String], _ values: inout [DatabaseValue], except driver: Int?) {
        for (index, link) in links.enumerated() where index != driver {
            conditions.append(
                "EXISTS (SELECT 1 FROM contact_links l WHERE l.contact_row = contacts.row_id AND \(link.condition))")
            values += link.values
        }
    }

    /// The contacts of the companies whose name the search (?) matches: a search finds a
    /// contact whose every word begins a word of its name, email or phone, or of the name of
    /// one of its companies.
    static let companyContacts = """
        SELECT l.contact_row FROM contact_links l
        WHERE l.kind = 1 AND l.target IN (SELECT id FROM companies_fts WHERE companies_fts MATCH ?)
        """

    /// The contacts that match the search through a company's name, in row order, after the
    /// row `after`, up to `count`; `excluding` leaves out those the full-text expression finds
    /// (relevance's last tier leaves out every earlier tier's).
    func companyMatchStatement(after rowID: Int64?, count: Int, excluding expression: String? = nil) -> PlannedStatement {
        var conditions = conditions
        var values = conditionValues
        appendLinkConditions(to: &conditions, &values, except: nil)
        conditions.append("contacts.row_id IN (\(Self.companyContacts))")
        values.append(matchExpression.databaseValue)
        if let expression {
            conditions.append(
                "NOT EXISTS (SELECT 1 FROM contacts_fts WHERE contacts_fts MATCH ? AND rowid = contacts.row_id)")
            values.append(expression.databaseValue)
        }
        if let rowID {
            conditions.append("contacts.row_id \(sort.descending ? "<" : ">") ?")
            values.append(rowID.databaseValue)
        }
        values.append(count.databaseValue)
        return PlannedStatement(
            sql: Self.select(
                StoredContact.qualifiedColumns, from: "contacts", conditions,
                order: ["contacts.row_id", sort.descending ? " DESC" : " ASC"]),
            values: values)
    }

    /// Contacts in the mirror's row order: all of them, or those `match` finds, after the row
    /// `after`, up to `count` (the page and one more by default). With a single ORDER BY term on
    /// the rowid, FTS5 hands rows over in that order and stops at the limit.
    func storedStatement(match: String?, after rowID: Int64?, count: Int? = nil) -> PlannedStatement {
        var conditions = conditions
        var values = conditionValues
        appendLinkConditions(to: &conditions, &values, except: nil)
        let from: String
        let key: String
        if let match {
            from = "contacts_fts JOIN contacts ON contacts.row_id = contacts_fts.rowid"
            key = "contacts_fts.rowid"
            conditions.append("contacts_fts MATCH ?")
            values.append(match.databaseValue)
        } else {
            from = "contacts"
            key = "contacts.row_id"
        }
        if let rowID {
            conditions.append("\(key) \(sort.descending ? "<" : ">") ?")
            values.append(rowID.databaseValue)
        }
        values.append((count ?? limit + 1).databaseValue)
        return PlannedStatement(
            sql: Self.select(
                StoredContact.qualifiedColumns, from: from, conditions, order: [key, sort.descending ? " DESC" : " ASC"]),
            values: values)
    }

    /// The full-text expressions of relevance, best first. Each finds the contacts that match it
    /// and none of the tiers before it, and together they find every match of the search:
    ///
    /// 0. the name begins with the words as typed ("ana" finds Ana Rossi);
    /// 1. the name begins with them, the last one as a prefix ("ana" finds Anaïs Wilson, "ana ro"
    ///    finds Ana Rossi);
    /// 2. every word begins a word of the name, in any order ("ros" finds Ana Rossi);
    /// 3. every word begins a word of the name, email or phone;
    /// 4. (read by `companyMatchStatement`) every word begins a word of a company's name.
    ///
    /// Within a tier, contacts come in the mirror's row order.
    var relevanceTiers: [String] {
        let phrase = "\"" + words.joined(separator: " ") + "\""
        let nested = [
            "name : ^\(phrase)",
            "name : ^\(phrase)*",
            "name : (" + quotedPrefixes.joined(separator: " AND ") + ")",
            matchExpression,
        ]
        return nested.indices.map { tier in tier == 0 ? nested[0] : "(\(nested[tier])) NOT (\(nested[tier - 1]))" }
    }

    /// A page by relevance: the tiers in turn (in reverse for a descending sort), from the
    /// cursor's, each read in row order until the page is full.
    private func rankedPage(on runner: some QueryRunner) throws -> ContactPage {
        let tiers = relevanceTiers
        var order = Array(0...tiers.count)
        if sort.descending { order.reverse() }
        var resumeAfter: Int64?
        if let cursor {
            guard case .integer(let tier) = cursor.key, let position = order.firstIndex(of: Int(tier)) else {
                throw QueryError("the cursor is not one this tool produced for a search by relevance")
            }
            order.removeFirst(position)
            resumeAfter = cursor.rowID
        }
        var rows: [(tier: Int, contact: StoredContact)] = []
        for tier in order where rows.count <= limit {
            let count = limit + 1 - rows.count
            let found = try runner.contacts(
                tier < tiers.count
                    ? storedStatement(match: tiers[tier], after: resumeAfter, count: count)
                    : companyMatchStatement(after: resumeAfter, count: count, excluding: matchExpression))
            rows += found.map { (tier, $0) }
            resumeAfter = nil
        }
        let contacts = rows.prefix(limit).map(\.contact)
        guard rows.count > limit, let last = rows.prefix(limit).last else {
            return ContactPage(contacts: contacts, nextCursor: nil)
        }
        return ContactPage(
            contacts: contacts,
            nextCursor: ContactCursor(sort: sort, key: .integer(Int64(last.tier)), rowID: last.contact.rowID))
    }

    /// The page the rows (up to `limit + 1` of them) of a single statement make, with the cursor
    /// after its last row when there are more.
    private func page(of rows: [StoredContact]) -> ContactPage {
        let contacts = Array(rows.prefix(limit))
        guard rows.count > limit, let last = contacts.last else { return ContactPage(contacts: contacts, nextCursor: nil) }
        let key: ContactCursor.Key
        switch sort.field {
        case .updatedAt: key = .integer(Int64(last.contact.updatedAt))
        case .name: key = .text(last.contact.name ?? "")
        case .email: key = .text(last.contact.email ?? "")
        case .stored, .relevance: key = .integer(last.rowID)
        }
        return ContactPage(contacts: contacts, nextCursor: ContactCursor(sort: sort, key: key, rowID: last.rowID))
    }

    /// `SELECT columns FROM from WHERE c1 AND c2… ORDER BY order… LIMIT ?`, put together in one
    /// buffer: a point lookup spends more on building its SQL through interpolation and joins
    /// than SQLite spends on the lookup.
    private static func select(_ columns: String, from: String, _ conditions: [String], order: [String]) -> String {
        var sql = "SELECT "
        sql.reserveCapacity(columns.utf8.count + 400)
        sql += columns
        sql += " FROM "
        sql += from
        for (index, condition) in conditions.enumerated() {
            sql += index == 0 ? " WHERE " : " AND "
            sql += condition
        }
        sql += " ORDER BY "
        for part in order { sql += part }
        sql += " LIMIT ?"
        return sql
    }

    /// The words of a search text: runs of letters and digits.
    static func words(of text: String) throws -> [Substring] {
        let words = text.split { !($0.isLetter || $0.isNumber) }
        guard !words.isEmpty else {
            throw QueryError("the search text \"\(text)\" has no letters or digits to look for")
        }
        return words
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
    static func customAttributeComparison(_ value: JSONValue) -> (String, [DatabaseValue]) {
        switch value {
        case .null: return ("a.type = 'null'", [])
        case .bool(let flag): return ("a.type = ?", [(flag ? "true" : "false").databaseValue])
        case .int(let number): return ("a.type IN ('integer', 'real') AND a.value = ?", [number.databaseValue])
        case .double(let number): return ("a.type IN ('integer', 'real') AND a.value = ?", [number.databaseValue])
        case .string(let text): return ("a.type = 'text' AND a.value = ?", [text.databaseValue])
        case .array, .object:
            return ("a.type IN ('array', 'object') AND json(a.value) = json(?)", [value.jsonText.databaseValue])
        }
    }
}
