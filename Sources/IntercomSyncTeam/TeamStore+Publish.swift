import Foundation
import IntercomSync
import PostgresNIO

/// What the team's one puller writes: the contacts its sync changed, with their links, and the
/// workspace's tags, companies and segments.
extension TeamStore {
    /// Stores a page of contacts as the puller's mirror holds them, in one transaction: bodies
    /// (a newer stored version kept), tombstones, and each contact's links made exactly those
    /// listed, its change number moving when they change. Answers how many contacts changed.
    @discardableResult
    public func publish(_ contacts: [UpstreamContact], fetchedAt: Int) async throws -> Int {
        guard !contacts.isEmpty else { return 0 }
        let bodies = try contacts.filter { !$0.tombstoned }.compactMap {
            contact -> (id: String, body: String, columns: UpstreamColumns)? in
            guard let body = contact.body else { return nil }
            guard let columns = contact.columns else { return try Self.storable(body) }
            return (id: contact.id, body: body, columns: columns)
        }
        let gone = contacts.filter(\.tombstoned).map(\.id)
        let linked = contacts.filter { !$0.tombstoned && $0.links != nil }
        var owners: [String] = []
        var kinds: [Int16] = []
        var targets: [String] = []
        for contact in linked {
            for link in contact.links ?? [] {
                owners.append(contact.id)
                kinds.append(Int16(link.kind.rawValue))
                targets.append(link.target)
            }
        }
        let linkRows = (owners, kinds, targets, linked.map(\.id))
        return try await transaction("publishing \(contacts.count) contacts") { connection in
            let stored = try await Self.storeContacts(bodies, fetchedAt: fetchedAt, on: connection, logger: self.logger)
            var changed = stored.count
            changed += try await Self.tombstoneContacts(gone, at: fetchedAt, on: connection, logger: self.logger)
            guard !linked.isEmpty else { return changed }
            // A contact stored above has its new change number already: only those whose
            // links alone changed take one here.
            let binds = try Self.binds(linkRows.0, linkRows.1, linkRows.2, linkRows.3, stored)
            changed += try await Self.count(
                connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            WITH wanted AS (
                                SELECT * FROM unnest($1::text[], $2::int2[], $3::text[]) AS w (contact_id, kind, target)),
                            listed AS (SELECT unnest($4::text[]) AS id),
                            removed AS (
                                DELETE FROM team_contact_links l USING listed
                                WHERE l.contact_id = listed.id AND NOT EXISTS (
                                    SELECT 1 FROM wanted w
                                    WHERE w.contact_id = l.contact_id AND w.kind = l.kind AND w.target = l.target)
                                RETURNING l.contact_id),
                            added AS (
                                INSERT INTO team_contact_links (contact_id, kind, target)
                                SELECT w.contact_id, w.kind, w.target FROM wanted w
                                WHERE EXISTS (SELECT 1 FROM team_contacts c WHERE c.id = w.contact_id)
                                ON CONFLICT DO NOTHING
                                RETURNING contact_id)
                            UPDATE team_contacts SET fetched_at = fetched_at
                            WHERE id IN (SELECT contact_id FROM removed UNION SELECT contact_id FROM added)
                                AND id <> ALL($5::text[])
                            RETURNING id
                            """, binds: binds), logger: self.logger))
            return changed
        }
    }

    /// Makes the team's tags, companies and segments the workspace's: new and changed ones
    /// written (each taking a change number), the others marked removed.
    public func publish(_ directory: UpstreamDirectory) async throws {
        var companyIDs: [String] = []
        var companyNumbers: [String] = []
        var companyNames: [String] = []
        var companyBodies: [String] = []
        for body in directory.companies {
            guard let company = try? JSONValue(jsonText: body), let id = company["id"]?.string else { continue }
            companyIDs.append(id)
            companyNumbers.append(company["company_id"]?.string ?? "")
            companyNames.append(company["name"]?.string ?? "")
            companyBodies.append(body)
        }
        let tags = try Self.binds(directory.tags.map(\.id), directory.tags.map(\.name))
        let companies = try Self.binds(companyIDs, companyNumbers, companyNames, companyBodies)
        let segments = try Self.binds(
            directory.segments.map(\.id), directory.segments.map(\.name), directory.segments.map { $0.personType ?? "" },
            directory.segments.map { Int64($0.createdAt ?? -1) }, directory.segments.map { Int64($0.updatedAt ?? -1) })
        try await transaction("publishing the workspace's tags, companies and segments") { connection in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH listed AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t (id, name)),
                        gone AS (
                            UPDATE team_tags SET removed = TRUE
                            WHERE NOT removed AND id NOT IN (SELECT id FROM listed) RETURNING id)
                        INSERT INTO team_tags (id, name) SELECT id, name FROM listed
                        ON CONFLICT (id) DO UPDATE SET name = excluded.name, removed = FALSE
                        WHERE team_tags.name IS DISTINCT FROM excluded.name OR team_tags.removed
                        """, binds: tags), logger: self.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH listed AS (
                            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                                AS c (id, company_id, name, body)),
                        gone AS (
                            UPDATE team_companies SET removed = TRUE
                            WHERE NOT removed AND id NOT IN (SELECT id FROM listed) RETURNING id)
                        INSERT INTO team_companies (id, company_id, name, body)
                        SELECT id, NULLIF(company_id, ''), NULLIF(name, ''), body FROM listed
                        ON CONFLICT (id) DO UPDATE SET company_id = excluded.company_id, name = excluded.name,
                            body = excluded.body, removed = FALSE
                        WHERE team_companies.body IS DISTINCT FROM excluded.body OR team_companies.removed
                        """, binds: companies), logger: self.logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH listed AS (
                            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
                                AS s (id, name, person_type, created_at, updated_at)),
                        gone AS (
                            UPDATE team_segments SET removed = TRUE
                            WHERE NOT removed AND id NOT IN (SELECT id FROM listed) RETURNING id)
                        INSERT INTO team_segments (id, name, person_type, created_at, updated_at)
                        SELECT id, name, NULLIF(person_type, ''), NULLIF(created_at, -1), NULLIF(updated_at, -1) FROM listed
                        ON CONFLICT (id) DO UPDATE SET name = excluded.name, person_type = excluded.person_type,
                            created_at = excluded.created_at, updated_at = excluded.updated_at, removed = FALSE
                        WHERE (team_segments.name, team_segments.person_type, team_segments.created_at,
                                team_segments.updated_at)
                            IS DISTINCT FROM (excluded.name, excluded.person_type, excluded.created_at, excluded.updated_at)
                            OR team_segments.removed
                        """, binds: segments), logger: self.logger)
        }
    }

    /// The team's tags, companies and segments, and the change number they stand at.
    public func directory() async throws -> (directory: UpstreamDirectory, change: Int64)? {
        try await run("reading the workspace's tags, companies and segments") { connection in
            var change: Int64 = 0
            for try await reached in try await connection.query(
                """
                SELECT greatest(
                    (SELECT coalesce(max(change_no), 0) FROM team_tags),
                    (SELECT coalesce(max(change_no), 0) FROM team_companies),
                    (SELECT coalesce(max(change_no), 0) FROM team_segments))
                """, logger: self.logger
            ).decode(Int64.self) {
                change = reached
            }
            guard change > 0 else { return nil }
            var tags: [UpstreamDirectory.Named] = []
            for try await (id, name) in try await connection.query(
                "SELECT id, name FROM team_tags WHERE NOT removed ORDER BY id", logger: self.logger
            ).decode((String, String).self) {
                tags.append(UpstreamDirectory.Named(id: id, name: name))
            }
            var companies: [String] = []
            for try await body in try await connection.query(
                "SELECT body FROM team_companies WHERE NOT removed AND body IS NOT NULL ORDER BY id", logger: self.logger
            ).decode(String.self) {
                companies.append(body)
            }
            var segments: [UpstreamDirectory.Named] = []
            for try await (id, name, personType, createdAt, updatedAt) in try await connection.query(
                "SELECT id, name, person_type, created_at, updated_at FROM team_segments WHERE NOT removed ORDER BY id",
                logger: self.logger
            ).decode((String, String, String?, Int64?, Int64?).self) {
                segments.append(
                    UpstreamDirectory.Named(
                        id: id, name: name, personType: personType, createdAt: createdAt.map(Int.init),
                        updatedAt: updatedAt.map(Int.init)))
            }
            return (UpstreamDirectory(tags: tags, companies: companies, segments: segments), change)
        }
    }
}
