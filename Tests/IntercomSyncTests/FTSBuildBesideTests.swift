import Foundation
import GRDB
import Testing

@testable import IntercomSync

/// The FTS index of a bulk load built on a second connection and copied in
/// (`FTSBuildBeside`): exact when it is copied, refused when the mirror changed under it.
@Suite struct FTSBuildBesideTests {
    let pages = PageFactory()

    /// A file mirror with 4 contacts indexed, then 36 loaded with indexing deferred.
    func loadedMirror(in folder: TemporaryDirectory) throws -> ContactMirror {
        let mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        _ = try mirror.upsertPage(pages.page(0..<4), fetchedAt: 1)
        try mirror.writer.write { db in try ContactMirror.beginBulkLoad(in: db) }
        _ = try mirror.upsertPage(pages.page(4..<40), fetchedAt: 2)
        return mirror
    }

    /// A file mirror with 4 contacts indexed, a load begun, and a build following it.
    func followedLoad(in folder: TemporaryDirectory) throws -> (ContactMirror, FTSBuildBeside) {
        let mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        _ = try mirror.upsertPage(pages.page(0..<4), fetchedAt: 1)
        try mirror.writer.write { db in try ContactMirror.beginBulkLoad(in: db) }
        return (mirror, try FTSBuildBeside(mirrorPath: folder.path("mirror.sqlite"), followingLoad: true))
    }

    func search(_ text: String, in mirror: ContactMirror) throws -> [String] {
        try BulkLoadTests.search(text, in: mirror)
    }

    @Test func aFileMirrorsLoadGetsItsFTSIndexBuiltBesideAndExact() throws {
        let folder = try TemporaryDirectory()
        let mirror = try loadedMirror(in: folder)
        #expect(try search(pages.generator.contact(at: 30).email, in: mirror).isEmpty)
        #expect(try mirror.finishDeferredIndexing(ftsBesideMinimumRows: 1) == .beside)
        try BulkLoadTests.expectExact(mirror)
        for index in [1, 4, 30, 39] {
            let contact = pages.generator.contact(at: index)
            #expect(try search(contact.email, in: mirror) == [contact.id])
        }
        #expect(try mirror.count("SELECT count(*) FROM contacts_fts_docsize") == 40)

        // The writer, which cached the index's structure before the copy, keeps it exact.
        try mirror.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET name = 'Zébulon Quistreau' WHERE row_id IN (2, 30)")
            try db.execute(sql: "DELETE FROM contacts WHERE row_id = 36")
        }
        _ = try mirror.upsertPage(pages.page(40..<45), fetchedAt: 3)
        try BulkLoadTests.expectExact(mirror)
        #expect(try search("zebul", in: mirror).count == 2)
        #expect(try search(pages.generator.contact(at: 35).email, in: mirror).isEmpty)
        #expect(try search(pages.generator.contact(at: 44).email, in: mirror).count == 1)
        // And a second process sees the same.
        let other = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .existing)
        #expect(try search("zebul", in: other).count == 2)
    }

    /// An import's load is followed pass by pass as it commits.
    @Test func aBuildFollowingALoadIndexesItsRowsAsTheyCommit() throws {
        let folder = try TemporaryDirectory()
        let (mirror, beside) = try followedLoad(in: folder)
        for batch in 0..<4 {
            _ = try mirror.upsertPage(pages.page((4 + batch * 9)..<(13 + batch * 9)), fetchedAt: 2)
            Thread.sleep(forTimeInterval: 0.06)  // a pass or so between batches
        }
        beside.loadEnded()
        #expect(try mirror.finishDeferredIndexing(besideBuild: beside) == .beside)
        try BulkLoadTests.expectExact(mirror)
        for index in [0, 4, 20, 39] {
            let contact = pages.generator.contact(at: index)
            #expect(try search(contact.email, in: mirror) == [contact.id])
        }
    }

    /// A row a pass indexed that changes afterwards, from the load or from another process,
    /// makes the build start again: the copy holds every row as it ends.
    @Test func aFollowedBuildStartsAgainWhenAnIndexedRowChanges() throws {
        let folder = try TemporaryDirectory()
        let (mirror, beside) = try followedLoad(in: folder)
        _ = try mirror.upsertPage(pages.page(4..<20), fetchedAt: 2)
        #expect(beside.waitUntilIndexed(through: 20, seconds: 30) == (true, 0))

        // A loaded row renamed by another connection, and one deleted by the load's.
        let other = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .existing)
        try other.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET name = 'Zébulon Quistreau' WHERE row_id = 10")
        }
        #expect(beside.waitUntilIndexed(through: 20, restarts: 1, seconds: 30) == (true, 1))
        try mirror.writer.write { db in try db.execute(sql: "DELETE FROM contacts WHERE row_id = 12") }
        _ = try mirror.upsertPage(pages.page(20..<30), fetchedAt: 2)
        #expect(beside.waitUntilIndexed(through: 30, restarts: 2, seconds: 30) == (true, 2))
        // A row the mirror indexed before the load.
        try other.writer.write { db in
            try db.execute(sql: "UPDATE contacts SET name = 'Zéphyrine Quistreau' WHERE row_id = 2")
        }
        _ = try mirror.upsertPage(pages.page(30..<40), fetchedAt: 2)
        beside.loadEnded()
        #expect(try mirror.finishDeferredIndexing(besideBuild: beside) == .beside)
        #expect(beside.waitUntilIndexed(through: 0, seconds: 0).restarts == 3)
        try BulkLoadTests.expectExact(mirror)
        #expect(try search("zebul", in: mirror).count == 1)
        #expect(try search("zephyr", in: mirror).count == 1)
        #expect(try search(pages.generator.contact(at: 11).email, in: mirror).isEmpty)
        #expect(try search(pages.generator.contact(at: 9).name ?? "", in: mirror).isEmpty == false)
        #expect(try mirror.syncState(.ftsRewrites) == nil)
    }

    /// The whole path of an import: a file big enough to load in bulk, followed as it loads.
    @Test func aBulkImportOfAFileMirrorEndsExact() throws {
        let folder = try TemporaryDirectory()
        let mirror = try ContactMirror.open(at: folder.path("mirror.sqlite"), mode: .createIfMissing)
        let csv = "Email,Name\n" + (0..<3_000).map { "person\($0)@example.org,Person Number\($0)" }.joined(separator: "\n")
        var options = ContactImport.Options()
        options.deferIndexing = true
        options.batchSize = 500
        var reader = CSVReader(bytes: Array(csv.utf8))
        let summary = try ContactImport(mirror: mirror, options: options).run(&reader, now: 1) { _, _ in }
        #expect(summary.imported == 3_000)
        try BulkLoadTests.expectExact(mirror)
        #expect(try search("person2999", in: mirror).count == 1)
    }

    @Test func smallLoadsAndMemoryMirrorsBuildInPlace() throws {
        let folder = try TemporaryDirectory()
        let mirror = try loadedMirror(in: folder)
        #expect(try mirror.finishDeferredIndexing(ftsBesideMinimumRows: 37) == .inPlace)
        try BulkLoadTests.expectExact(mirror)
        #expect(try mirror.finishDeferredIndexing(ftsBesideMinimumRows: 1) == .none)

        let memory = try ContactMirror.inMemory()
        try memory.writer.write { db in try ContactMirror.beginBulkLoad(in: db) }
        _ = try memory.upsertPage(pages.page(0..<10), fetchedAt: 1)
        #expect(try memory.finishDeferredIndexing(ftsBesideMinimumRows: 1) == .inPlace)
        try BulkLoadTests.expectExact(memory)
    }

    enum Change: CaseIterable {
        /// A row the index already held: the FTS index changes.
        case indexedRowRenamed
        /// A row of the load removed (its FTS trigger stands aside).
        case loadedRowDeleted
        /// The last row removed and its row_id taken again by another contact.
        case lastRowIDReused
        /// New contacts: the only change the copy follows, indexing them itself.
        case contactsAdded
    }

    @Test(arguments: Change.allCases)
    func theCopyIsRefusedWhenTheMirrorChangedUnderTheBuild(_ change: Change) throws {
        let folder = try TemporaryDirectory()
        let mirror = try loadedMirror(in: folder)
        let beside = try FTSBuildBeside(mirrorPath: folder.path("mirror.sqlite"))
        beside.waitUntilBuilt()
        try mirror.writer.write { db in
            switch change {
            case .indexedRowRenamed:
                try db.execute(sql: "UPDATE contacts SET name = 'Zébulon Quistreau' WHERE row_id = 2")
            case .loadedRowDeleted:
                try db.execute(sql: "DELETE FROM contacts WHERE row_id = 20")
            case .lastRowIDReused:
                try db.execute(sql: "DELETE FROM contacts WHERE row_id = 40")
                try db.execute(
                    sql: """
                        INSERT INTO contacts (row_id, id, role, name, created_at, updated_at, body, state)
                        VALUES (40, 'local-40', 'lead', 'Zébulon Quistreau', 1, 1, '{}', 'pending')
                        """)
            case .contactsAdded:
                _ = try ContactMirror.upsertPage(pages.page(40..<43), fetchedAt: 3, in: db)
            }
        }
        let copied = try beside.finish()
        #expect(copied == (change == .contactsAdded))
        #expect(try mirror.hasDeferredIndexing(), "the indexes are still to build")
        if !copied {
            #expect(try mirror.syncState(.ftsDeferred) != nil, "a refused copy writes nothing")
        }
        try mirror.finishDeferredIndexing(ftsBesideMinimumRows: .max)
        try BulkLoadTests.expectExact(mirror)
        switch change {
        case .indexedRowRenamed, .lastRowIDReused: #expect(try search("zebul", in: mirror).count == 1)
        case .loadedRowDeleted: #expect(try search(pages.generator.contact(at: 19).email, in: mirror).isEmpty)
        case .contactsAdded: #expect(try search(pages.generator.contact(at: 42).email, in: mirror).count == 1)
        }
    }
}
