import Foundation
import GRDB
import Testing

@testable import IntercomSync

/// Deferred indexing (`ContactMirror.bulkLoading`): the indexes and the FTS index come out
/// exact, whether the load ends, throws or is killed.
@Suite struct BulkLoadTests {
    let pages = PageFactory()

    static func secondaryIndexes(_ mirror: ContactMirror) throws -> Set<String> {
        Set(
            try mirror.writer.read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contacts'")
            }
        ).intersection(MirrorSchema.deferrableIndexes.map(\.name))
    }

    /// Checks the FTS index against its content table and that no flag is left behind.
    static func expectExact(_ mirror: ContactMirror, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try mirror.writer.write { db in
            try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
        }
        #expect(try !mirror.hasDeferredIndexing(), sourceLocation: sourceLocation)
        // Also every CHECK constraint, which an import's transactions skip.
        let integrity = try mirror.writer.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == ["ok"], sourceLocation: sourceLocation)
        let settings = try mirror.writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT v FROM contacts_fts_config WHERE k = 'automerge'"),
                try Int.fetchOne(db, sql: "SELECT v FROM contacts_fts_config WHERE k = 'pgsz'")
            )
        }
        #expect(settings.0 == nil || settings.0 == 4, "later writes merge FTS segments again", sourceLocation: sourceLocation)
        #expect(settings.1 == nil || settings.1 == 4050, "and write leaves of the default size", sourceLocation: sourceLocation)
        #expect(
            try secondaryIndexes(mirror) == Set(MirrorSchema.deferrableIndexes.map(\.name)), sourceLocation: sourceLocation)
        #expect(
            try mirror.writer.read { db in try ContactMirror.hasFTSInsertTrigger(in: db) },
            "a bulk load's end puts the FTS insert trigger back", sourceLocation: sourceLocation)
    }

    static func search(_ text: String, in mirror: ContactMirror) throws -> [String] {
        var query = ContactQuery()
        query.search = text
        return try mirror.contacts(matching: query).contacts.map(\.contact.id)
    }

    @Test func aBulkImportDropsTheIndexesDuringTheLoadAndBuildsThemAfter() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<5), fetchedAt: 1)
        let existing = pages.generator.contact(at: 2)
        let csv = """
            Email,Name
            ottilie@example.org,Ottilie Brandvold
            \(existing.email.uppercased()),Someone Already Here
            OTTILIE@example.org,Ottilie Again
            fenwick@example.org,Fenwick Ashgrove

            """
        var indexesDuringLoad: Set<String>?
        var options = ContactImport.Options()
        options.deferIndexing = true
        options.batchSize = 1
        var reader = CSVReader(bytes: Array(csv.utf8))
        var batches = 0
        let summary = try ContactImport(mirror: mirror, options: options).run(&reader, now: 1_767_225_600) { _, _ in
        } onProgress: { _ in
            batches += 1
            if batches == 2 { indexesDuringLoad = try? Self.secondaryIndexes(mirror) }
        }
        #expect(indexesDuringLoad == [])
        #expect(summary.imported == 2 && summary.duplicates == 2)
        #expect(summary.duplicateSamples.map(\.existingID).first == existing.id)
        #expect(summary.duplicateSamples.map(\.line) == [3, 4])
        try Self.expectExact(mirror)
        #expect(try Self.search("ottil", in: mirror).count == 1)
        #expect(try Self.search("ashgro", in: mirror).count == 1)
        #expect(try mirror.importedCreatesWaiting() == 2)
    }

    /// Rows above the flag's row_id are left to the load's end, whatever happens to them
    /// meanwhile; rows below it stay indexed as they change. A row inserted below it (a row_id
    /// taken again), which the dropped insert trigger did not index, is found by the count at
    /// the end, which rebuilds the index.
    @Test func writesDuringADeferralKeepTheIndexExact() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<4), fetchedAt: 1)
        try mirror.bulkLoading {
            _ = try mirror.upsertPage(pages.page(4..<8), fetchedAt: 2)
            try mirror.writer.write { db in
                try db.execute(sql: "UPDATE contacts SET name = 'Zébulon Quistreau' WHERE row_id = 2")
                try db.execute(sql: "UPDATE contacts SET name = 'Philippa Wrenfield' WHERE row_id = 6")
                try db.execute(sql: "DELETE FROM contacts WHERE row_id IN (3, 7)")
                // A deleted row's id may come back below the flag; it is indexed at the end.
                try db.execute(sql: "DELETE FROM contacts WHERE row_id = 4")
                try db.execute(
                    sql: """
                        INSERT INTO contacts (row_id, id, role, name, created_at, updated_at, body, state)
                        VALUES (4, 'local-4', 'lead', 'Ignatius Brackenbury', 1, 1, '{}', 'pending')
                        """)
            }
            #expect(try Self.search("zebul", in: mirror).count == 1)
            #expect(try Self.search("ignati", in: mirror).isEmpty)
            #expect(try Self.search("philip", in: mirror).isEmpty)
            #expect(try mirror.writer.read { db in try !ContactMirror.hasFTSInsertTrigger(in: db) })
        }
        try Self.expectExact(mirror)
        #expect(try Self.search("ignati", in: mirror).count == 1)
        #expect(try Self.search("philip", in: mirror).count == 1)
        #expect(try mirror.count("SELECT count(*) FROM contacts_fts") == 6)
    }

    @Test func aLoadThatThrowsStillFinishesItsIndexing() throws {
        struct Stop: Error {}
        let mirror = try ContactMirror.inMemory()
        #expect(throws: Stop.self) {
            try mirror.bulkLoading {
                _ = try mirror.upsertPage(pages.page(0..<6), fetchedAt: 1)
                throw Stop()
            }
        }
        try Self.expectExact(mirror)
        #expect(try Self.search(pages.generator.contact(at: 5).email, in: mirror).count == 1)
    }

    /// A load killed part-way leaves its flags committed; the next open finishes the indexing,
    /// unless another process holds the mirror (its load may still be running).
    @Test func theNextOpenFinishesAKilledLoad() throws {
        let folder = try TemporaryDirectory()
        let path = folder.path("mirror.sqlite")
        do {
            let mirror = try ContactMirror.open(at: path, mode: .createIfMissing)
            let lock = try MirrorLock.acquire(mirror, purpose: "a load still running")
            _ = try mirror.upsertPage(pages.page(0..<3), fetchedAt: 1)
            try mirror.writer.write { db in try ContactMirror.beginBulkLoad(in: db) }
            _ = try mirror.upsertPage(pages.page(3..<9), fetchedAt: 1)
            let meanwhile = try ContactMirror.open(at: path, mode: .existing)
            #expect(try meanwhile.hasDeferredIndexing())
            #expect(try Self.search(pages.generator.contact(at: 7).email, in: meanwhile).isEmpty)
            try mirror.close()
            withExtendedLifetime(lock) {}
        }
        var told = 0
        let reopened = try ContactMirror.open(at: path, mode: .existing) { told += 1 }
        #expect(told == 1, "the open says why it waits")
        _ = try ContactMirror.open(at: path, mode: .existing) { told += 1 }
        #expect(told == 1, "and says nothing when there is nothing to finish")
        try Self.expectExact(reopened)
        #expect(try Self.search(pages.generator.contact(at: 7).email, in: reopened).count == 1)
        #expect(try reopened.count("SELECT count(*) FROM contacts_fts") == 9)
    }

    /// A mirror opened while another process held it keeps the flags; a sync or an import
    /// that takes the lock later finishes the indexing.
    @Test func aWriterTakingTheLockFinishesWhatTheOpenCouldNot() throws {
        let folder = try TemporaryDirectory()
        let path = folder.path("mirror.sqlite")
        let opened: ContactMirror
        do {
            let loader = try ContactMirror.open(at: path, mode: .createIfMissing)
            let lock = try MirrorLock.acquire(loader, purpose: "a load, then killed")
            try loader.writer.write { db in try ContactMirror.beginBulkLoad(in: db) }
            _ = try loader.upsertPage(pages.page(0..<5), fetchedAt: 1)
            opened = try ContactMirror.open(at: path, mode: .existing)
            try loader.close()
            withExtendedLifetime(lock) {}
        }
        #expect(try opened.hasDeferredIndexing())
        let lock = try MirrorLock.acquire(opened, purpose: "a sync")
        try opened.finishDeferredIndexingLeftBehind()
        try Self.expectExact(opened)
        #expect(try Self.search(pages.generator.contact(at: 4).email, in: opened).count == 1)
        withExtendedLifetime(lock) {}
    }

    @Test func emailsCompareAndHashAsTheMirrorFoldsThem() {
        #expect(EmailRows.hash("Ann.Lee@Example.COM") == EmailRows.hash("ann.lee@example.com"))
        #expect(EmailRows.hash("ann.lee@example.com") != EmailRows.hash("ann.lee@example.co"))
        #expect(EmailRows.sameEmail("Ann.Lee@Example.COM", "ann.lee@example.com"))
        #expect(!EmailRows.sameEmail("ann.lee@example.com", "ann.lee@example.co"))
        // NOCASE folds ASCII letters only: É and é are different emails to the mirror, and so
        // are "@" and "`", which differ by the same bit as a letter's case.
        #expect(!EmailRows.sameEmail("É@example.com", "é@example.com"))
        #expect(!EmailRows.sameEmail("a@b.c", "a`b.c"))
    }

    /// While the email index is dropped, the table answers as the index would: synced before
    /// pending, the oldest row first, tombstones never, any letter case; and it grows as rows come.
    @Test func theEmailTableAnswersAsTheEmailIndex() throws {
        let mirror = try ContactMirror.inMemory()
        _ = try mirror.upsertPage(pages.page(0..<40), fetchedAt: 1)
        let shared = pages.generator.contact(at: 3).email
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET state = 'tombstoned' WHERE row_id = 5")
            for (index, email) in [shared.uppercased(), "only.pending@example.org", "Only.Pending@example.org"].enumerated() {
                _ = try ContactMirror.stageContact(
                    ContactDraft(role: .lead, email: email, name: "Staged \(index)"), allowingDuplicateEmail: true, now: 1,
                    in: db)
            }
        }
        var table = try EmailRows(emailsIn: mirror, room: 0)
        let emails =
            (0..<40).map { pages.generator.contact(at: $0).email }
            + ["ONLY.PENDING@example.org", "nobody@example.org", shared.capitalized]
        try mirror.writer.write { db in
            let lookup = try ContactMirror.EmailLookup(db)
            for email in emails {
                let expected = try ContactMirror.contactID(withEmail: email, in: db)
                #expect(try table.contactID(withEmail: email, in: db) == expected, "\(email)")
                // And the prepared lookup of the plain path (run twice: its bindings are reset).
                #expect(try lookup.contactID(withEmail: email, in: db) == expected, "\(email)")
                #expect(try lookup.contactID(withEmail: email, in: db) == expected, "\(email)")
            }
            // Rows staged later join the table, past its first size.
            for index in 0..<50 {
                let email = "later\(index)@example.org"
                #expect(try table.contactID(withEmail: email, in: db) == nil)
                let staged = try ContactMirror.stageContact(
                    ContactDraft(role: .user, email: email), allowingDuplicateEmail: true, now: 1, in: db)
                table.insert(email, rowID: staged.rowID)
                #expect(try table.contactID(withEmail: email.uppercased(), in: db) == staged.localID)
            }
        }
    }

    /// An import holds the mirror's lock like a sync: two writers never load at once (a bulk
    /// load's dropped indexes depend on it). A dry run writes nothing and takes no lock.
    @Test func anImportIsRefusedWhileTheMirrorIsHeld() throws {
        let mirror = try ContactMirror.inMemory()
        let csv = Array("Email\nwinifred@example.org\n".utf8)
        do {
            let lock = try MirrorLock.acquire(mirror, purpose: "a sync")
            #expect(throws: SyncError.self) {
                var reader = CSVReader(bytes: csv)
                _ = try ContactImport(mirror: mirror).run(&reader, now: 1)
            }
            var dryRun = ContactImport.Options()
            dryRun.dryRun = true
            var reader = CSVReader(bytes: csv)
            #expect(try ContactImport(mirror: mirror, options: dryRun).run(&reader, now: 1).imported == 1)
            withExtendedLifetime(lock) {}
        }
        var reader = CSVReader(bytes: csv)
        #expect(try ContactImport(mirror: mirror).run(&reader, now: 1).imported == 1)
        #expect(try mirror.count() == 1)
    }
}
