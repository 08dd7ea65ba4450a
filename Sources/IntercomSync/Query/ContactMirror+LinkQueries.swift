import GRDB

/// The tags, segments and companies the mirror holds, as lists and as the links of a contact.
extension ContactMirror {
    /// The workspace's tags by name, with how many contacts carry each (tombstones excluded).
    package func tags() throws -> [TagSummary] {
        try poolRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT t.id, t.name, (SELECT count(*) FROM contact_links l WHERE l.kind = 0 AND l.target = t.id)
                    FROM tags t ORDER BY t.name_key, t.id
                    """
            ).map { TagSummary(id: $0[0], name: $0[1], contacts: $0[2]) }
        }
    }

    /// The workspace's segments by name, with how many contacts of the mirror each holds.
    package func segments() throws -> [SegmentSummary] {
        try poolRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT s.id, s.name, s.person_type,
                        (SELECT count(*) FROM contact_links l WHERE l.kind = 2 AND l.target = s.id)
                    FROM segments s ORDER BY s.name_key, s.id
                    """
            ).map { SegmentSummary(id: $0[0], name: $0[1], personType: $0[2], contacts: $0[3]) }
        }
    }

    /// The companies by name, with how many contacts of the mirror belong to each; `search`
    /// keeps those whose name, `company_id` or website contains it (case-insensitive).
    package func companies(search: String? = nil, limit: Int = .max) throws -> [CompanySummary] {
        try poolRead { db in
            var sql = """
                SELECT c.id, c.company_id, c.name, c.plan, c.size, c.industry, c.website, c.monthly_spend,
                    (SELECT count(*) FROM contact_links l WHERE l.kind = 1 AND l.target = c.id)
                FROM companies c
                """
            var arguments: [DatabaseValueConvertible?] = []
            if let search {
                let pattern = "%" + QueryPlan.escapeLike(search) + "%"
                sql += """
                     WHERE c.name LIKE ? ESCAPE '\\' OR c.company_id LIKE ? ESCAPE '\\' OR c.website LIKE ? ESCAPE '\\'
                    """
                arguments += [pattern, pattern, pattern]
            }
            sql += " ORDER BY ifnull(c.name, '') COLLATE NOCASE, c.id LIMIT ?"
            arguments.append(limit == .max ? -1 : limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)!).map {
                CompanySummary(
                    id: $0[0], companyID: $0[1], name: $0[2], plan: $0[3], size: $0[4], industry: $0[5], website: $0[6],
                    monthlySpend: $0[7], contacts: $0[8])
            }
        }
    }

    /// The query's tag, company and segment names the mirror has none of, as `tag "VIP"`.
    package func unknownLinkNames(in query: ContactQuery) throws -> [String] {
        var checks: [(label: String, statement: PlannedStatement)] = []
        for name in query.tags + query.anyTags {
            checks.append(
                (
                    "tag \"\(name)\"",
                    PlannedStatement(
                        sql: "SELECT count(*) FROM tags WHERE name_key = ?", values: [LinkName.key(name).databaseValue])
                ))
        }
        for name in query.companies {
            checks.append(
                (
                    "company \"\(name)\"",
                    PlannedStatement(
                        sql: "SELECT count(*) FROM companies WHERE name_key = ? OR company_id = ?",
                        values: [LinkName.key(name).databaseValue, name.databaseValue])
                ))
        }
        for name in query.segments {
            checks.append(
                (
                    "segment \"\(name)\"",
                    PlannedStatement(
                        sql: "SELECT count(*) FROM segments WHERE name_key = ?", values: [LinkName.key(name).databaseValue])
                ))
        }
        guard !checks.isEmpty else { return [] }
        // On the query path's own connection where it can: opening GRDB's costs a command 4 ms.
        func unknown(_ runner: some QueryRunner) throws -> [String] {
            try checks.filter { try runner.integer($0.statement) == 0 }.map(\.label)
        }
        if let found = try reader?.tryRead(snapshot: false, { session in try unknown(session) }) { return found }
        return try poolRead { db in try unknown(PoolQueries(db: db)) }
    }

    /// The names of the tags, companies and segments a contact (by Intercom or local id) is
    /// linked to, each sorted; a company without a name shows its `company_id`, else its id.
    /// Read on the query path's own connection where it can (`contacts get --offline`).
    package func links(ofContact id: String) throws -> ContactLinks {
        let statement = PlannedStatement(sql: Self.linkNamesSQL, values: [id.databaseValue])
        var named: [(kind: Int64, name: String)] = []
        let read = try reader?.tryRead(snapshot: false) { session in
            try session.rows(statement) { row in named.append((row.int64(0) ?? -1, row.text(1) ?? "")) }
        }
        if read == nil {
            named = try poolRead { db in
                try Row.fetchAll(db, sql: statement.sql, arguments: statement.arguments).map { ($0[0], $0[1]) }
            }
        }
        var links = ContactLinks()
        for (kind, name) in named {
            switch LinkKind(rawValue: Int(kind)) {
            case .tag?: links.tags.append(name)
            case .company?: links.companies.append(name)
            case .segment?: links.segments.append(name)
            case nil: break
            }
        }
        let order: (String, String) -> Bool = { $0.localizedStandardCompare($1) == .orderedAscending }
        links.tags.sort(by: order)
        links.companies.sort(by: order)
        links.segments.sort(by: order)
        return links
    }

    /// Each link of contact ?1 (an Intercom or local id): its kind and the name of its target.
    private static let linkNamesSQL = """
        SELECT l.kind, ifnull(CASE l.kind
            WHEN 0 THEN (SELECT name FROM tags WHERE id = l.target)
            WHEN 1 THEN (SELECT ifnull(name, ifnull(company_id, id)) FROM companies WHERE id = l.target)
            ELSE (SELECT name FROM segments WHERE id = l.target) END, l.target)
        FROM contact_links l
        WHERE l.contact_row = (
            SELECT row_id FROM contacts WHERE id = ifnull((SELECT id FROM contact_aliases WHERE alias = ?1), ?1))
        """
}
