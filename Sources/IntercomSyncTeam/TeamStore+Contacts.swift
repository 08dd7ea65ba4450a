import Foundation
import IntercomSync
import PostgresNIO

/// The team's replica of Intercom's contacts: written by the one puller, read by agents by
/// change number.
///
/// Storing a page again changes nothing: a version is stored only when it is newer than the
/// stored one (by `updated_at`), or as new but different, so its change number moves only
/// when something did change, and an agent that follows by change number reads each change
/// once.
extension TeamStore: ContactUpstream {
    /// The store's own name (`team_schema.store_id`), made when its schema was.
    public func identity() async throws -> String? {
        try await run("reading the store's name") { connection in
            for try await id in try await connection.query("SELECT store_id FROM team_schema", logger: self.logger)
                .decode(String.self)
            {
                return id
            }
            return nil
        }
    }

    /// Stores contact bodies as Intercom sent them; answers how many changed the store.
    @discardableResult
    public func storeContacts(_ bodies: [String], fetchedAt: Int) async throws -> Int {
        guard !bodies.isEmpty else { return 0 }
        let contacts = try bodies.map(Self.storable)
        return try await transaction("storing \(bodies.count) contacts") { connection in
            try await Self.storeContacts(contacts, fetchedAt: fetchedAt, on: connection, logger: self.logger).count
        }
    }

    /// A body as the store keeps it: with the columns read from it.
    static func storable(_ body: String) throws -> (id: String, body: String, columns: UpstreamColumns) {
        guard case .object(let contact) = try JSONValue(jsonText: body), let id = contact["id"]?.string, !id.isEmpty
        else {
            throw TeamStoreError(.badEntry, "a contact body without an id cannot be stored: \(body.prefix(80))")
        }
        return (
            id, body,
            UpstreamColumns(
                email: contact["email"]?.string, externalID: contact["external_id"]?.string,
                role: contact["role"]?.string, name: contact["name"]?.string, phone: contact["phone"]?.string,
                updatedAt: contact["updated_at"]?.int ?? 0)
        )
    }

    /// Stores contacts in the caller's transaction; answers the ids of those that changed the
    /// store.
    static func storeContacts(
        _ contacts: [(id: String, body: String, columns: UpstreamColumns)], fetchedAt: Int,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [String] {
        guard !contacts.isEmpty else { return [] }
        var ids: [String] = []
        var texts: [String] = []
        var emails: [String] = []
        var externalIDs: [String] = []
        var roles: [String] = []
        var names: [String] = []
        var phones: [String] = []
        var updated: [Int64] = []
        for (id, body, columns) in contacts {
            ids.append(id)
            texts.append(body)
            // Empty for absent: arrays of optional text do not cross the wire, NULLIF turns them back.
            emails.append(columns.email ?? "")
            externalIDs.append(columns.externalID ?? "")
            roles.append(columns.role ?? "")
            names.append(columns.name ?? "")
            phones.append(columns.phone ?? "")
            updated.append(Int64(columns.updatedAt))
        }
        let binds = try Self.binds(ids, texts, emails, externalIDs, roles, names, phones, updated, Int64(fetchedAt))
        var changed: [String] = []
        for try await id in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO team_contacts (id, body, email, external_id, role, name, phone, updated_at, fetched_at)
                    SELECT id, body, NULLIF(email, ''), NULLIF(external_id, ''), NULLIF(role, ''), NULLIF(name, ''),
                        NULLIF(phone, ''), updated_at, $9
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                        $8::bigint[]) AS page (id, body, email, external_id, role, name, phone, updated_at)
                    ON CONFLICT (id) DO UPDATE SET body = excluded.body, email = excluded.email,
                        external_id = excluded.external_id, role = excluded.role, name = excluded.name,
                        phone = excluded.phone, updated_at = excluded.updated_at, fetched_at = excluded.fetched_at,
                        state = 'synced'
                    WHERE (team_contacts.state = 'synced'
                            AND (excluded.updated_at > team_contacts.updated_at
                                OR (excluded.updated_at = team_contacts.updated_at
                                    AND excluded.body IS DISTINCT FROM team_contacts.body)))
                        OR (team_contacts.state = 'tombstoned'
                            AND excluded.fetched_at > coalesce(team_contacts.fetched_at, 0))
                    RETURNING id
                    """, binds: binds), logger: logger
        ).decode(String.self) {
            changed.append(id)
        }
        return changed
    }

    /// Marks contacts deleted, archived or merged away on Intercom, as found at `time`;
    /// answers how many it changed (one already tombstoned is left as it is). Only a version
    /// fetched after `time` brings one back (an unarchived contact).
    @discardableResult
    public func tombstoneContacts(_ ids: [String], at time: Int) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await transaction("tombstoning \(ids.count) contacts") { connection in
            try await Self.tombstoneContacts(ids, at: time, on: connection, logger: self.logger)
        }
    }

    static func tombstoneContacts(_ ids: [String], at time: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> Int
    {
        return try await count(
            connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO team_contacts (id, state, fetched_at)
                        SELECT id, 'tombstoned', $2 FROM unnest($1::text[]) AS gone (id)
                        ON CONFLICT (id) DO UPDATE SET state = 'tombstoned', fetched_at = excluded.fetched_at
                        WHERE team_contacts.state <> 'tombstoned'
                        RETURNING id
                        """, binds: try binds(ids, Int64(time))), logger: logger))
    }

    /// The contacts changed after change number `since`, in change order, at most `limit`: an
    /// agent asks again from the last one's `change` until the answer is empty. The contacts
    /// and their links are read in one snapshot.
    public func contactChanges(since: Int64, limit: Int) async throws -> [UpstreamContact] {
        try await run("reading contact changes") { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
            do {
                var changes: [UpstreamContact] = []
                for try await (id, body, state, change) in try await connection.query(
                    """
                    SELECT id, body, state, change_no FROM team_contacts WHERE change_no > \(since)
                    ORDER BY change_no LIMIT \(Int64(limit))
                    """, logger: self.logger
                ).decode((String, String?, String, Int64).self) {
                    changes.append(
                        UpstreamContact(id: id, body: body, tombstoned: state == "tombstoned", change: change, links: []))
                }
                // Links are few beside contacts: one query for the page, not one for each contact.
                var links: [String: [UpstreamLink]] = [:]
                for try await (id, kind, target) in try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            SELECT contact_id, kind, target FROM team_contact_links WHERE contact_id = ANY($1::text[])
                            """, binds: try Self.binds(changes.map(\.id))), logger: self.logger
                ).decode((String, Int16, String).self) {
                    guard let kind = LinkKind(rawValue: Int(kind)) else { continue }
                    links[id, default: []].append(UpstreamLink(kind: kind, target: target))
                }
                try await connection.query("COMMIT", logger: self.logger)
                for index in changes.indices where !links.isEmpty {
                    changes[index].links = links[changes[index].id] ?? []
                }
                return changes
            } catch {
                // A connection that went away took its snapshot with it.
                guard !Self.isGone(connection, after: error) else { throw error }
                do {
                    try await connection.query("ROLLBACK", logger: self.logger)
                } catch {
                    // Still inside the snapshot, it must not serve another operation.
                    try? await connection.close()
                }
                throw error
            }
        }
    }
}
