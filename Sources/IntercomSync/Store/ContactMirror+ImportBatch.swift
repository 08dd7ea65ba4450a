import GRDB

extension ContactMirror {
    /// One batch of an import's rows, inside the transaction that stores them (or, for a dry
    /// run, the read that checks them): finds the contact a row's email already belongs to, and
    /// stages a new one as a pending create.
    final class ImportBatch {
        private let db: Database
        private let emails: EmailLookup
        private let known: EmailRows?
        private let contacts: LocalContactWriter?
        private let now: Int
        /// The rows this batch staged: the first and last row_id, and how many.
        fileprivate private(set) var staged: (first: Int64, last: Int64, count: Int)?

        fileprivate init(_ db: Database, now: Int, known: EmailRows?, writing: Bool) throws {
            self.db = db
            self.now = now
            self.known = known
            emails = try EmailLookup(db)
            contacts = writing ? try LocalContactWriter(db) : nil
        }

        /// The id of a live contact with this email (`hash` its `EmailRows.hash64`), if any:
        /// through `known` while the email index is dropped, else through the index.
        func existingContact(withEmail email: String, hash: UInt64) throws -> String? {
            if let known { return try known.contactID(withEmail: email, hash: hash, in: db) }
            return try emails.contactID(withEmail: email, in: db)
        }

        /// Stages `draft` as a local contact waiting for its create.
        func stage(_ draft: ContactDraft, emailHash: UInt64) throws {
            guard let contacts else { preconditionFailure("a dry run stages nothing") }
            let rowID = try contacts.insert(draft, now: now, in: db).rowID
            known?.insert(hash: emailHash, rowID: rowID)
            staged = (staged?.first ?? rowID, rowID, (staged?.count ?? 0) + 1)
        }
    }

    /// Runs `body` on a batch that stages rows, in one transaction: the contacts it stages and
    /// the note that their create entries are owed commit together (`noteImportedCreates`).
    func importBatch(now: Int, known: EmailRows?, _ body: (ImportBatch) throws -> Void) throws {
        try writer.write { db in
            // The rows are checked before they are staged, by the rules the table's CHECKs
            // restate (the role an enum, times integers, the state a literal), and the checks
            // cost about a sixth of an insert. Only for this transaction, which has the
            // connection to itself.
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            defer { try? db.execute(sql: "PRAGMA ignore_check_constraints = OFF") }
            let batch = try ImportBatch(db, now: now, known: known, writing: true)
            try Self.indexingFTSAtEnd(in: db) { try body(batch) }
            if let staged = batch.staged {
                try Self.noteImportedCreates(
                    firstRowID: staged.first, lastRowID: staged.last, count: staged.count, now: now, in: db)
            }
        }
    }

    /// Runs `body` on a batch that only checks rows, in one read.
    func dryRunBatch(_ body: (ImportBatch) throws -> Void) throws {
        try writer.read { db in try body(ImportBatch(db, now: 0, known: nil, writing: false)) }
    }

    /// The highest row_id the mirror has used: about how many contacts it ever held.
    func highestRowID() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT ifnull(max(row_id), 0) FROM contacts") ?? 0 }
    }
}
