import GRDB

/// The live contacts' emails by row, for a bulk import while the email index is dropped: an
/// open-addressing table of 32-bit email hashes (ASCII letters folded, as SQLite's NOCASE does)
/// and row_ids, 8 bytes a slot at most three quarters full, 16 MB a million emails. A hash names candidate
/// rows; each is read by its row_id and its email compared, so a collision costs a lookup, never
/// a wrong answer.
final class EmailRows {
    /// `hash << 32 | row_id`; 0 is an empty slot (row_ids start at 1).
    private var slots: [UInt64]
    private var count = 0

    /// The mirror's live emails, with room for `room` more: a table that grows rehashes every
    /// entry, and holds the old table and the new one at once while it does.
    init(emailsIn mirror: ContactMirror, room: Int) throws {
        let held = try mirror.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM contacts WHERE state != 'tombstoned'") ?? 0
        }
        slots = Array(repeating: 0, count: Self.slotCount(for: held + room))
        try mirror.writer.read { db in
            let rows = try Row.fetchCursor(
                db, sql: "SELECT email, row_id FROM contacts WHERE email IS NOT NULL AND state != 'tombstoned'")
            while let row = try rows.next() { self.insert(row[0], rowID: row[1]) }
        }
    }

    /// The id of a live contact with this email, as `ContactMirror.contactID(withEmail:)` picks
    /// it: synced before pending, then the oldest row.
    /// `hash` is the email's `hash64`, when the caller has it.
    func contactID(withEmail email: String, hash: UInt64? = nil, in db: Database) throws -> String? {
        let hash = Self.fold(hash ?? Self.hash64(email))
        var best: (rank: (Int, Int64), id: String)?
        var index = Self.start(hash, slots.count)
        while slots[index] != 0 {
            if UInt32(truncatingIfNeeded: slots[index] >> 32) == hash {
                let rowID = Int64(slots[index] & 0xFFFF_FFFF)
                let statement = try db.cachedStatement(sql: "SELECT id, email, state FROM contacts WHERE row_id = ?")
                if let row = try Row.fetchOne(statement, arguments: [rowID]), let stored: String = row[1],
                    Self.sameEmail(stored, email)
                {
                    let state: String = row[2]
                    let rank = (state == "pending" ? 1 : 0, rowID)
                    if state != "tombstoned", best.map({ rank < $0.rank }) ?? true { best = (rank, row[0]) }
                }
            }
            index = (index + 1) & (slots.count - 1)
        }
        return best?.id
    }

    func insert(_ email: String, rowID: Int64) {
        insert(hash: Self.hash64(email), rowID: rowID)
    }

    /// Records a row by its email's `hash64`.
    func insert(hash: UInt64, rowID: Int64) {
        guard rowID > 0 && rowID <= Int64(UInt32.max) else { return }
        if 4 * (count + 1) > 3 * slots.count {
            let old = slots
            slots = Array(repeating: 0, count: old.count * 2)
            for slot in old where slot != 0 { place(slot) }
        }
        place(UInt64(Self.fold(hash)) << 32 | UInt64(rowID))
        count += 1
    }

    private func place(_ slot: UInt64) {
        var index = Self.start(UInt32(truncatingIfNeeded: slot >> 32), slots.count)
        while slots[index] != 0 { index = (index + 1) & (slots.count - 1) }
        slots[index] = slot
    }

    private static func slotCount(for entries: Int) -> Int {
        var count = 16
        while 3 * count < 4 * entries { count *= 2 }
        return count
    }

    /// Where a hash's probe starts: its bits mixed once more, as FNV leaves the low ones weak.
    private static func start(_ hash: UInt32, _ slotCount: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(hash) &* 0x9E37_79B9_7F4A_7C15) >> 32) & (slotCount - 1)
    }

    /// Equal as SQLite's NOCASE compares: ASCII letters folded, every other byte as it is.
    static func sameEmail(_ left: String, _ right: String) -> Bool {
        left.utf8.count == right.utf8.count
            && zip(left.utf8, right.utf8).allSatisfy { a, b in
                a == b || ((a | 0x20) == (b | 0x20) && (0x61...0x7A).contains(a | 0x20))
            }
    }

    /// `hash64` folded to 32 bits.
    static func hash(_ email: String) -> UInt32 {
        fold(hash64(email))
    }

    private static func fold(_ hash: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
    }

    /// FNV-1a over the UTF-8 bytes, ASCII letters lowercased (as NOCASE compares).
    static func hash64(_ email: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in email.utf8 {
            let folded = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
            hash = (hash ^ UInt64(folded)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
