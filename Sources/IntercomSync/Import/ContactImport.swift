import Foundation

/// Imports contacts from a CSV file as pending creates (the guarantee that an import can be run again).
///
/// Rows stream through: each is mapped (`CSVHeaderMap`), validated by the same rules as
/// `contacts create` (`ContactDraft.problems`), and checked against the emails the mirror
/// already holds, which includes the rows this import has written. Good rows become pending
/// contacts, `batchSize` rows a transaction, each batch recorded in `imported_creates`: the
/// flush that pushes them writes their `create_contact` entries first. A bad row is
/// handed to `onRejected` and the rest go on. A killed import is resumed by running it again:
/// the rows it had committed are skipped as duplicates.
package struct ContactImport: Sendable {
    package typealias Options = CSVImportOptions
    package typealias Rejection = CSVImportRejection
    package typealias Progress = CSVImportProgress
    package typealias Summary = CSVImportSummary
    package typealias DuplicateRow = CSVImportDuplicate

    /// How rows become drafts: what an import's options say about roles and phones.
    struct RowRules: Sendable {
        var defaultRole: ContactRole = .user
        var phoneCountry: NationalPhone?
        var dropInvalidPhones = false
    }

    /// What was done to a good row's phone on the way.
    enum PhoneFix: Sendable {
        case rewritten
        /// Dropped, with the report of why.
        case dropped(Rejection)
    }

    private enum Parsed: Sendable {
        /// The email's `EmailRows.hash64`, taken on the reading thread.
        case draft(line: Int, ContactDraft, emailHash: UInt64, phoneFix: PhoneFix?)
        case rejected(Rejection)
    }

    package let mirror: ContactMirror
    package let options: Options

    package init(mirror: ContactMirror, options: Options = Options()) {
        self.mirror = mirror
        self.options = options
    }

    /// Reads `reader` to its end.
    ///
    /// - Throws: `ImportError` when the file cannot be imported at all (empty, a malformed
    ///   header, no email column, a bad mapping), before anything is written; errors of the
    ///   reader or the mirror, after committing the batches before them.
    package func run(
        _ reader: inout CSVReader, now: Int, onRejected: (Rejection, _ header: [String]) throws -> Void = { _, _ in },
        onProgress: (Progress) -> Void = { _ in }
    ) throws -> Summary {
        let started = Date()
        var summary = Summary()
        summary.dryRun = options.dryRun
        let map: CSVHeaderMap
        switch try reader.next() {
        case nil:
            throw ImportError(.emptyFile, "the file is empty: a CSV import needs a header row, then one row a contact")
        case .malformed(let line, let reason, _):
            throw ImportError(.badHeader, "the header on line \(line) is malformed: \(reason)")
        case .record(_, let header):
            map = try CSVHeaderMap(
                header: header, overrides: options.mappings, customAttributes: options.customAttributes)
            summary.header = header
            summary.ignoredColumns = map.ignoredColumns
        }
        /// A dry run's emails so far, as 64-bit hashes folded as the mirror folds them (8 bytes an
        /// email, where the strings took ten times that; two emails share a hash about once in
        /// 10^13 pairs, and a dry run only counts).
        var seenInDryRun = Set<UInt64>()
        /// In a bulk load, the rows of the emails the mirror holds: the email index is dropped.
        var knownEmails: EmailRows?
        var finished = false
        /// Rows read and contacts imported as of the last committed batch.
        var committed = (read: 0, imported: 0)
        /// Whether a bulk load has moved on to building its indexes.
        var indexing = false
        // The rows are read and checked on a second thread (`ParsedRows`) while this one writes.
        let rules = RowRules(
            defaultRole: options.defaultRole, phoneCountry: options.phoneCountry,
            dropInvalidPhones: options.dropInvalidPhones)
        let rows = ParsedRows(reader: reader) { row in Self.parse(row, map: map, rules: rules) }
        defer { reader = rows.stop() }
        var chunk: [Parsed] = []
        var taken = 0
        var bytesRead = 0
        /// Takes rows until `batchSize` good ones went to `take` or the file ends; bad rows go to
        /// `onRejected` on the way. Runs inside one transaction, so rows stream straight from the
        /// file into the mirror without being held in memory.
        func readBatch(_ take: (Int, ContactDraft, UInt64) throws -> Bool) throws {
            var good = 0
            while good < options.batchSize {
                if taken == chunk.count {
                    let spent = chunk
                    chunk = []
                    rows.recycle(consume spent)
                    guard let next = try rows.next() else {
                        finished = true
                        return
                    }
                    chunk = next.items
                    bytesRead = next.bytesRead
                    taken = 0
                }
                let parsed = chunk[taken]
                taken += 1
                summary.read += 1
                switch parsed {
                case .rejected(let rejection):
                    summary.rejected += 1
                    summary.rejectedByCategory[rejection.category, default: 0] += 1
                    try onRejected(rejection, summary.header)
                case .draft(let line, let draft, let emailHash, let phoneFix):
                    good += 1
                    guard try take(line, draft, emailHash) else { break }
                    switch phoneFix {
                    case nil: break
                    case .rewritten: summary.phonesRewritten += 1
                    case .dropped(let report):
                        summary.phonesDropped += 1
                        try onRejected(report, summary.header)
                    }
                }
                if summary.read % 10_000 == 0 { onProgress(Progress(rowsRead: summary.read, bytesRead: bytesRead)) }
            }
        }
        /// Reads every batch: in a read transaction each for a dry run, else a write each.
        func readAll() throws {
            while !finished {
                if options.dryRun {
                    try mirror.dryRunBatch { batch in
                        try readBatch { line, draft, emailHash in
                            if let existing = try batch.existingContact(withEmail: draft.email, hash: emailHash) {
                                summary.noteDuplicate(line: line, email: draft.email, existingID: existing)
                            } else if !seenInDryRun.insert(emailHash).inserted {
                                summary.noteDuplicate(line: line, email: draft.email, existingID: "(earlier in the file)")
                            } else {
                                summary.imported += 1
                                return true
                            }
                            return false
                        }
                    }
                } else {
                    try mirror.importBatch(now: now, known: knownEmails) { batch in
                        try readBatch { line, draft, emailHash in
                            if let existing = try batch.existingContact(withEmail: draft.email, hash: emailHash) {
                                summary.noteDuplicate(line: line, email: draft.email, existingID: existing)
                                return false
                            }
                            try batch.stage(draft, emailHash: emailHash)
                            summary.imported += 1
                            return true
                        }
                    }
                }
                committed = (summary.read, summary.imported)
                onProgress(Progress(rowsRead: summary.read, bytesRead: bytesRead))
            }
        }
        if options.dryRun {
            try readAll()
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }
        do {
            // One import at a time, and none beside a pull or flush; a bulk load depends on it.
            let lock = try MirrorLock.acquireBlocking(
                mirror, purpose: "intercom-sync contacts import", waiting: options.lockWait)
            try withExtendedLifetime(lock) {
                try mirror.finishDeferredIndexingLeftBehind()
                if try shouldDeferIndexing() {
                    knownEmails = try EmailRows(emailsIn: mirror, room: (options.expectedBytes ?? 0) / 100)
                    try mirror.bulkLoading(
                        appending: true,
                        beforeIndexing: {
                            indexing = true
                            knownEmails = nil  // Its memory goes back before the index sorts take theirs.
                            onProgress(Progress(rowsRead: summary.read, bytesRead: bytesRead, indexing: true))
                        }, readAll)
                } else {
                    try readAll()
                }
            }
        } catch let error as MirrorError where error.kind == .diskFull {
            throw ImportError(.diskFull, Self.diskFullMessage(committed: committed, indexing: indexing))
        }
        summary.seconds = Date().timeIntervalSince(started)
        return summary
    }

    /// What a person needs to hear when the disk fills: what is kept, and how to go on.
    static func diskFullMessage(committed: (read: Int, imported: Int), indexing: Bool) -> String {
        if indexing {
            return "the disk is full: all \(committed.imported) new contacts were written, but their indexes could not be "
                + "built. Free some space; the next command that opens the mirror finishes them"
        }
        let kept =
            committed.imported == 0
            ? "no row of this file was committed"
            : "the first \(committed.read) rows of the file were committed (\(committed.imported) new contacts, kept)"
        return "the disk is full: \(kept). Free some space and run the same command again: "
            + "the rows already imported are skipped as duplicates and the import goes on from there"
    }

    /// Rows of a CSV export run near 100 bytes; a file of more rows than this defers indexing
    /// when it holds at least twice as many rows as the mirror has contacts. (A file about the
    /// mirror's size may well be the same contacts again: rebuilding every index for no new row
    /// would cost more than it saves.)
    static let bulkRows = 100_000

    private func shouldDeferIndexing() throws -> Bool {
        if let forced = options.deferIndexing { return forced }
        guard let bytes = options.expectedBytes else { return false }
        let rows = bytes / 100
        let held = try mirror.highestRowID()
        return rows >= max(Self.bulkRows, 2 * held)
    }

    private static func parse(_ row: CSVRow, map: CSVHeaderMap, rules: RowRules) -> Parsed {
        switch row {
        case .malformed(let line, let reason, let text):
            let category = reason.hasSuffix(CSVReader.notUTF8) ? "not UTF-8" : "malformed row"
            return .rejected(Rejection(line: line, reason: reason, category: category, fields: nil, text: text))
        case .record(let line, var fields):
            var phoneFix: PhoneFix?
            if let country = rules.phoneCountry, let column = map.column(of: .phone),
                let rewritten = country.international(fields[column].trimmedOfASCIISpace.undefusedCSVCell),
                ContactDraft.phoneProblem(rewritten) == nil
            {
                fields[column] = rewritten
                phoneFix = .rewritten
            }
            var result = draft(from: fields, map: map, defaultRole: rules.defaultRole)
            if rules.dropInvalidPhones, case .failure(let error) = result, let column = map.column(of: .phone),
                let phoneProblem = error.problems.first(where: { $0.field == "phone" })
            {
                var withoutPhone = fields
                withoutPhone[column] = ""
                let kept = draft(from: withoutPhone, map: map, defaultRole: rules.defaultRole)
                if case .success = kept {
                    result = kept
                    var report = Rejection(
                        line: line, reason: "imported without its phone: \(phoneProblem.reason)",
                        category: "phone dropped", fields: fields, text: nil)
                    report.contactImported = true
                    phoneFix = .dropped(report)
                }
            }
            switch result {
            case .success(let draft):
                return .draft(line: line, draft, emailHash: EmailRows.hash64(draft.email), phoneFix: phoneFix)
            case .failure(let error):
                return .rejected(
                    Rejection(
                        line: line, reason: error.problems.map(\.description).joined(separator: "; "),
                        category: "invalid \(error.problems[0].field)", fields: fields, text: nil))
            }
        }
    }

    /// A row's draft, validated by `ContactDraft`'s rules, or everything wrong with it.
    static func draft(from fields: [String], map: CSVHeaderMap, defaultRole: ContactRole) -> Result<
        ContactDraft, DraftError
    > {
        func value(_ field: CSVHeaderMap.Field) -> String? {
            guard let column = map.column(of: field) else { return nil }
            let text = fields[column].trimmedOfASCIISpace.undefusedCSVCell
            return text.isEmpty ? nil : text
        }
        var problems: [FieldProblem] = []
        var role = defaultRole
        if let text = value(.role) {
            if let parsed = ContactRole(rawValue: text.lowercased()) {
                role = parsed
            } else {
                problems.append(FieldProblem("role", "\"\(text)\" is neither user nor lead"))
            }
        }
        var name = value(.name)
        if name == nil {
            let parts = [value(.firstName), value(.lastName)].compactMap { $0 }
            if !parts.isEmpty { name = parts.joined(separator: " ") }
        }
        var attributes: [String: JSONValue] = [:]
        for column in map.attributeMapColumns {
            let text = fields[column].trimmedOfASCIISpace
            guard !text.isEmpty else { continue }
            let name = map.header[column].trimmingCharacters(in: .whitespaces)
            do {
                guard case .object(let object) = try JSONValue(jsonText: text) else {
                    problems.append(FieldProblem(name, "is not a JSON object such as {\"plan\":\"pro\"}"))
                    continue
                }
                attributes.merge(object) { _, later in later }
            } catch {
                problems.append(FieldProblem(name, "\(error)"))
            }
        }
        // A column named for one attribute (--custom-attributes, --map COLUMN=custom:NAME) is
        // an edit made beside the export's map: where it has a value, it wins.
        for (column, target) in map.targets.enumerated() {
            guard case .customAttribute(let attribute) = target else { continue }
            let text = fields[column].trimmedOfASCIISpace.undefusedCSVCell
            if !text.isEmpty { attributes[attribute] = .string(text) }
        }
        let draft = ContactDraft(
            role: role, email: value(.email) ?? "", name: name, phone: value(.phone), avatar: value(.avatar),
            externalID: value(.externalID), customAttributes: attributes)
        problems = draft.problems + problems
        return problems.isEmpty ? .success(draft) : .failure(DraftError(problems: problems))
    }
}

extension ContactImport.Summary {
    mutating func noteDuplicate(line: Int, email: String, existingID: String) {
        duplicates += 1
        if duplicateSamples.count < 20 {
            duplicateSamples.append(ContactImport.DuplicateRow(line: line, email: email, existingID: existingID))
        }
    }
}

extension String {
    /// The cell as it was before CSV output defused it (`ContactRenderer.csvCell` puts a `'`
    /// before a leading `=`, `+`, `-` or `@`, so that a spreadsheet never runs it): an import
    /// reads back what an export wrote, `'+1 555 0100` as `+1 555 0100`.
    var undefusedCSVCell: String {
        let utf8 = self.utf8
        guard utf8.count >= 2, utf8.first == UInt8(ascii: "'"),
            let second = utf8.dropFirst().first, "=+-@".utf8.contains(second)
        else { return self }
        return String(self.dropFirst())
    }

    /// Without leading and trailing spaces, tabs and line breaks; a cheap byte scan where
    /// Foundation's `trimmingCharacters` bridges through NSString.
    var trimmedOfASCIISpace: String {
        let utf8 = self.utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = utf8.lastIndex(where: { !isSpace($0) })!
        if first == utf8.startIndex && last == utf8.index(before: utf8.endIndex) { return self }
        return String(self[first...last])
    }
}

/// How ``IntercomMirror/importCSV(from:options:progress:onRejected:)`` reads a file.
public struct CSVImportOptions: Sendable, Equatable {
    /// The role of rows without a role column or with an empty one.
    public var defaultRole: ContactRole = .user
    /// Column → field mappings: a column's header to `email`, `name`, `phone`, `role`,
    /// `external_id` or `avatar`, to `ignore`, or to `custom:NAME` for a custom attribute. They
    /// win over the header names recognised by themselves.
    public var mappings: [String: String] = [:]
    /// The field delimiter: `,`, `;`, a tab or `|`; nil reads it from an Excel `sep=` first line,
    /// else takes the header's most frequent of them.
    public var delimiter: Character?
    /// Columns that match no field become custom attributes.
    public var customAttributes = false
    /// Validate and count, write nothing.
    public var dryRun = false
    /// Good rows per transaction: a killed import keeps the batches it committed. Rows
    /// stream from the file into the transaction, so a batch holds no memory of its own.
    public var batchSize = 20_000
    /// Build the indexes once at the end rather than row by row: true, false, or nil to decide
    /// by the file's size against the mirror's.
    public var deferIndexing: Bool?
    /// The file's size, when it cannot be read from the file (a pipe): a file of many rows
    /// (by its size), twice as many as the mirror has contacts, is loaded in bulk.
    public var expectedBytes: Int?
    /// Seconds to wait for a pull, flush or other import to release the mirror (0: refuse).
    /// ``IntercomMirror`` sets it from its configuration.
    public var lockWait: Double = 0
    /// Phones without a country code are read as national numbers of this country and
    /// rewritten to the international form. Nil: such phones are invalid.
    public var phoneCountry: NationalPhone?
    /// A row whose phone is still invalid keeps its contact, without the phone, and is
    /// reported (`Rejection.contactImported`), instead of being rejected whole.
    public var dropInvalidPhones = false
    /// The file's character encoding: UTF-8, or Windows-1252 (Latin-1) converted as it is read.
    public var encoding: CSVEncoding = .utf8

    public init() {}
}

/// A row that was not imported because it is wrong (a duplicate is skipped, not rejected).
public struct CSVImportRejection: Sendable, Equatable {
    /// The physical line the row starts on.
    public var line: Int
    /// Why, for a person: "email: \"ann.example.com\" has no @; phone: …".
    public var reason: String
    /// The reason's kind, for the summary: "invalid email", "malformed row", ….
    public var category: String
    /// The row's fields, or nil when the row could not be split into fields.
    public var fields: [String]?
    /// What could be recovered of a row that could not be split.
    public var text: String?
    /// True when the row is reported but its contact was imported all the same: without
    /// its invalid phone, under `Options.dropInvalidPhones`.
    public var contactImported = false

    public init(
        line: Int, reason: String, category: String, fields: [String]? = nil, text: String? = nil,
        contactImported: Bool = false
    ) {
        self.line = line
        self.reason = reason
        self.category = category
        self.fields = fields
        self.text = text
        self.contactImported = contactImported
    }
}

/// How far an import has read.
public struct CSVImportProgress: Sendable, Equatable {
    public var rowsRead: Int
    public var bytesRead: Int
    /// Every row is read, and the indexes deferred by a bulk load are being built.
    public var indexing = false

    public init(rowsRead: Int, bytesRead: Int, indexing: Bool = false) {
        self.rowsRead = rowsRead
        self.bytesRead = bytesRead
        self.indexing = indexing
    }
}

/// What an import did.
public struct CSVImportSummary: Sendable, Equatable {
    /// Data rows read (the header and blank lines not counted).
    public var read = 0
    public var imported = 0
    public var duplicates = 0
    public var rejected = 0
    public var rejectedByCategory: [String: Int] = [:]
    /// Columns that fed nothing, named once.
    public var ignoredColumns: [String] = []
    /// The file's header, as read.
    public var header: [String] = []
    /// A few rows skipped as duplicates: the line and the id of the contact it matched.
    public var duplicateSamples: [CSVImportDuplicate] = []
    public var dryRun = false
    public var seconds = 0.0
    /// Phones rewritten from the national form (`Options.phoneCountry`), of imported contacts.
    public var phonesRewritten = 0
    /// Contacts imported without their invalid phone (`Options.dropInvalidPhones`).
    public var phonesDropped = 0

    public init() {}
}

/// A row an import skipped because the mirror has a contact with its email.
public struct CSVImportDuplicate: Sendable, Equatable {
    public var line: Int
    public var email: String
    public var existingID: String

    public init(line: Int, email: String, existingID: String) {
        self.line = line
        self.email = email
        self.existingID = existingID
    }
}
