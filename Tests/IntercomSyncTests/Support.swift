import Foundation
import GRDB
import SyntheticData

@testable import IntercomSync

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
    }

    static func contact(_ name: String) throws -> Contact {
        try JSONDecoder().decode(Contact.self, from: Data(text(name).utf8))
    }
}

/// A fresh temporary folder, removed when the value goes away.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("intercom-sync-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Builds list pages of generated contacts, optionally edited first.
struct PageFactory {
    var generator = ContactGenerator(seed: 7)

    func page(_ range: Range<Int>, edit: (inout SyntheticContact) -> Void = { _ in }) -> String {
        let contacts = generator.contacts(range).map { contact -> SyntheticContact in
            var copy = contact
            edit(&copy)
            return copy
        }
        return IntercomPage.list(contacts, page: 1, perPage: max(range.count, 1), totalCount: range.count, nextCursor: nil)
    }
}

extension ContactMirror {
    func count(_ sql: String = "SELECT count(*) FROM contacts", arguments: StatementArguments = []) throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0 }
    }

    func all(_ query: ContactQuery) throws -> [StoredContact] {
        var query = query
        var result: [StoredContact] = []
        while true {
            let page = try contacts(matching: query)
            result += page.contacts
            guard let next = page.nextCursor else { return result }
            query.cursor = next
        }
    }
}
