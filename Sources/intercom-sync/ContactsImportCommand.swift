import ArgumentParser
import CLISupport
import Foundation
import IntercomSync
import Synchronization

struct ContactsImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import contacts from a CSV file as pending creates (pushed by `outbox flush` or --push).",
        discussion: """
            The file is read as it streams (any size, flat memory): RFC 4180 quoting, delimiters \
            and line breaks inside quotes, LF or CRLF, a UTF-8 byte-order mark. The delimiter (, ; \
            tab or |) comes from --delimiter, else an Excel `sep=;` first line, else the header. The header names the \
            columns; common names are recognised whatever their case or punctuation (Email, \
            E-mail address, Full name, First name + Last name, Phone number, Type or Role, \
            User ID or external_id, Avatar). Each row is checked by the same rules as `contacts \
            create`. A row whose email the mirror already has, or that came earlier in the file, \
            is skipped: importing a file twice adds nothing, and a killed import is finished by \
            running it again. Bad rows are reported with their line number and reason, and the \
            good rows still land.

            A file written by `contacts query --format csv` imports back as it was: its \
            custom_attributes column (a JSON object) gives each contact its attributes with their \
            types, and its id, owner_id, created_at, updated_at and state columns are left to \
            the mirror it is imported into.

            Exit status: 0 every row was imported or skipped as a duplicate; 3 some rows were \
            rejected (see --errors); 4 with --push, Intercom could not be reached (the contacts \
            are imported and wait for `outbox flush`); 5 another sync, import or flush holds the \
            mirror; 1 the file could not be read or imported at all.

            Examples:
              intercom-sync contacts import leads.csv --role lead --errors rejected.csv
              intercom-sync contacts import export.csv --dry-run
              intercom-sync contacts import crm.csv --map "Work Email=email" \\
                  --map Notes=ignore --custom-attributes
              cat contacts.csv | intercom-sync contacts import - --push
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Argument(help: ArgumentHelp("The CSV file, or - for standard input.", valueName: "file.csv"))
    var file: String

    @Flag(help: "Check every row and print what would happen; write nothing.")
    var dryRun = false

    @Option(
        help: ArgumentHelp(
            "The delimiter between fields: , ; tab or |. Default: a `sep=` first line's, else found from the header.",
            valueName: "char"))
    var delimiter: String?

    @Option(
        help: ArgumentHelp(
            "Write the rejected rows, with line number and reason, to this CSV file (a new file, or an existing one with --force).",
            valueName: "path"))
    var errors: String?

    @Flag(help: "Let --errors replace an existing file (never the mirror or the file being imported).")
    var force = false

    @Option(
        help: ArgumentHelp(
            "The file's encoding: utf-8, or windows-1252 (also latin1), as Excel on Windows saves CSV.",
            valueName: "name"))
    var encoding = "utf-8"

    @Option(help: "The role of rows that give none: user or lead.")
    var role: ContactRole = .user

    @Option(
        name: .customLong("map"),
        help: ArgumentHelp(
            "Map a column to a field (repeatable): email, name, first_name, last_name, phone, role, external_id, avatar, ignore, custom_attributes (a JSON object), or custom:NAME.",
            valueName: "column=field"))
    var mappings: [String] = []

    @Flag(help: "Import the columns that match no field as custom attributes (text), named by their header.")
    var customAttributes = false

    @Option(
        help: ArgumentHelp(
            "Read phones without a country code as national numbers of this country and rewrite them: +1 turns (555) 123-4567 into +15551234567, +44 turns 020 7946 0958 into +442079460958.",
            valueName: "+code"))
    var phoneCountry: String?

    @Flag(
        help:
            "Import a contact whose phone is still invalid without the phone, instead of rejecting the row; the row is reported in --errors."
    )
    var dropInvalidPhones = false

    @Option(
        name: .customLong("batch-size"), parsing: .unconditional,
        help: "Rows per transaction: a killed import keeps the batches it committed; larger batches write less.")
    var batchSize = CSVImportOptions().batchSize

    @Flag(help: "Flush the outbox afterwards, pushing the new contacts to Intercom.")
    var push = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var wait: WaitOption

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
        if dryRun && push { throw ValidationError("--dry-run writes nothing, so there is nothing to --push") }
        if let delimiter, Self.delimiterByte(delimiter) == nil {
            throw ValidationError("--delimiter must be one of , ; tab |, not \(delimiter)")
        }
        if CSVEncoding(name: encoding) == nil {
            throw ValidationError("--encoding must be utf-8 or windows-1252 (latin1), not \(encoding)")
        }
        if let phoneCountry, NationalPhone(phoneCountry) == nil {
            throw ValidationError("--phone-country must be a country calling code such as +1 or +44, not \(phoneCountry)")
        }
        for mapping in mappings where !mapping.contains("=") {
            throw ValidationError("--map \(mapping): write it as column=field")
        }
    }

    func run() async throws {
        var options = CSVImportOptions()
        options.defaultRole = role
        options.dryRun = dryRun
        options.customAttributes = customAttributes
        options.batchSize = batchSize
        options.phoneCountry = phoneCountry.flatMap(NationalPhone.init)
        options.dropInvalidPhones = dropInvalidPhones
        options.encoding = CSVEncoding(name: encoding) ?? .utf8
        for mapping in mappings {
            let equals = mapping.lastIndex(of: "=")!
            options.mappings[String(mapping[..<equals])] = String(mapping[mapping.index(after: equals)...])
        }
        let intercom = push ? try connection.intercomConnection() : nil
        // Checked before anything is read or written: a wrong --errors path must cost nothing.
        let rejectedFile = try errors.map { path in
            try RejectedRowsFile(
                OutputFile(
                    path: path, flag: "--errors", force: force,
                    protecting: OutputFile.mirrorFiles(mirror.resolvedPath)
                        + (file == "-" ? [] : [OutputFile.ProtectedFile(path: file, role: "the file being imported")])))
        }
        // Checked here for a message that names the file; the import opens it itself.
        let input = try InputFile(path: file)
        input.release()
        options.expectedBytes = input.size
        options.delimiter = delimiter.flatMap(Self.delimiterByte).map { Character(Unicode.Scalar($0)) }
        // A dry run on a mirror that does not exist yet checks against an empty one.
        // An empty file holds no mirror either.
        let existed = ((try? FileManager.default.attributesOfItem(atPath: mirror.resolvedPath)[.size]) as? Int ?? 0) > 0
        let configuration = connection.configured(IntercomMirror.Configuration(lockWait: .seconds(wait.seconds)))
        let importer =
            dryRun && !existed
            ? try IntercomMirror.inMemory(configuration: configuration)
            : try await mirror.facade(.createIfMissing, connection: intercom, configuration: configuration)
        // The rows rejected before a failure are worth keeping too.
        defer { try? rejectedFile?.commit() }
        let progress = Mutex(ProgressBar("import", total: input.size, unit: "rows"))
        let summary: CSVImportSummary
        do {
            summary = try await importer.importCSV(
                from: URL(fileURLWithPath: file == "-" ? "/dev/stdin" : file), options: options,
                progress: { step in
                    progress.withLock { bar in
                        bar.update(step.bytesRead, count: step.rowsRead)
                        if step.indexing {
                            bar.finish()
                            Output.note("import: every row is read; building the indexes of \(step.rowsRead) rows")
                        }
                    }
                },
                onRejected: { rejection, header in try rejectedFile?.write(rejection, header: header) })
        } catch let error as ImportError {
            // Refused before any row was written: a mirror made just for this import goes too.
            if error.kind != .diskFull, !existed, let path = importer.path {
                try? importer.close()
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
            throw error
        }
        progress.withLock { $0.finish() }
        try rejectedFile?.commit()
        if json {
            Output.data(ImportRendering.json(summary).jsonText)
        } else {
            Output.line(ImportRendering.text(summary, errorsPath: errors))
        }
        var exitCode: Int32 = summary.rejected > 0 ? 3 : 0
        if push, summary.imported > 0 {
            let flush = try await OutboxFlushCommand.flush(importer, label: "push")
            if json { Output.data(OutboxRendering.json(flush).jsonText) } else { Output.line(OutboxRendering.text(flush)) }
            if let reason = flush.stoppedBy { throw CommandFailure("the push stopped: \(Advice.explained(reason))") }
            try OutboxFlushCommand.checkReached(flush)
            if flush.needsAttention { exitCode = 3 }
        }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }
}

extension ContactsImportCommand {
    static func delimiterByte(_ text: String) -> UInt8? {
        switch text.lowercased() {
        case ",", "comma": UInt8(ascii: ",")
        case ";", "semicolon": UInt8(ascii: ";")
        case "tab", "\t", "\\t": 0x09
        case "|", "pipe": UInt8(ascii: "|")
        default: nil
        }
    }

}

/// The file to import, or standard input for `-`.
struct InputFile {
    let descriptor: Int32
    /// The size of a regular file, for the progress bar.
    let size: Int?
    private let owned: Bool

    init(path: String) throws {
        if path == "-" {
            descriptor = STDIN_FILENO
            owned = false
        } else {
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw CommandFailure("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            guard (status.st_mode & S_IFMT) != S_IFDIR else { throw CommandFailure("\(path) is a folder, not a CSV file") }
            descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else { throw CommandFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
            owned = true
        }
        var status = stat()
        size = fstat(descriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG ? Int(status.st_size) : nil
    }

    /// Closes the file (standard input is left open).
    func release() {
        if owned { close(descriptor) }
    }
}

/// `--errors`: the rejected rows as CSV, with their line and reason first, then the file's own
/// columns, then `raw` for a row that could not be split into fields. Made only when a row is
/// rejected.
/// Written from the import's thread alone, one row after another.
final class RejectedRowsFile: @unchecked Sendable {
    private let file: OutputFile
    private var wroteHeader = false

    init(_ file: OutputFile) {
        self.file = file
    }

    func write(_ rejection: CSVImportRejection, header: [String]) throws {
        if !wroteHeader {
            try write(["line", "reason"] + header + ["raw"])
            wroteHeader = true
        }
        // A row that could not be split keeps the file's columns empty and its text under `raw`.
        let fields = rejection.fields ?? Array(repeating: "", count: header.count)
        try write([String(rejection.line), rejection.reason] + fields + [rejection.text ?? ""])
    }

    private func write(_ cells: [String]) throws {
        try file.write(cells.map(ContactRenderer.csvCell).joined(separator: ",") + "\r\n")
    }

    /// Puts the file in place, if any row was rejected.
    func commit() throws {
        try file.commit()
    }
}

/// How an import summary is printed.
enum ImportRendering {
    static func text(_ summary: CSVImportSummary, errorsPath: String?) -> String {
        let verb = summary.dryRun ? "would import" : "imported"
        var lines = [
            "\(summary.read) rows read: \(summary.imported) \(verb), \(summary.duplicates) skipped as duplicates, "
                + "\(summary.rejected) rejected" + String(format: " (%.1f s)", summary.seconds)
        ]
        for (category, count) in summary.rejectedByCategory.sorted(by: {
            $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key)
        }) {
            lines.append("  rejected, \(category): \(count)")
        }
        if summary.rejectedByCategory["not UTF-8"] != nil {
            lines.append(
                "  not UTF-8: the file looks like Windows-1252 or Latin-1, as Excel on Windows saves CSV; "
                    + "--encoding windows-1252 reads it (or convert it: iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv)")
        }
        if summary.rejectedByCategory["invalid phone"] != nil, summary.phonesRewritten == 0 {
            lines.append(
                "  national phones like (555) 123-4567? --phone-country +1 rewrites them; "
                    + "--drop-invalid-phones keeps such contacts without the phone")
        }
        if summary.phonesRewritten > 0 {
            lines.append("  \(summary.phonesRewritten) national phones rewritten to the international form")
        }
        if summary.phonesDropped > 0 {
            lines.append("  \(summary.phonesDropped) contacts imported without their invalid phone")
        }
        if summary.rejected > 0 || summary.phonesDropped > 0 {
            lines.append(
                errorsPath.map { "  the rejected rows and dropped phones, with line and reason, are in \($0)" }
                    ?? "  pass --errors FILE.csv to get the rejected rows with their line and reason")
        }
        for duplicate in summary.duplicateSamples.prefix(5) {
            lines.append("  line \(duplicate.line): \(duplicate.email) is already contact \(duplicate.existingID)")
        }
        if summary.duplicates > 5 { lines.append("  … and \(summary.duplicates - 5) more duplicates") }
        if !summary.ignoredColumns.isEmpty {
            lines.append(
                "ignored columns: " + summary.ignoredColumns.map { "\"\($0)\"" }.joined(separator: ", ")
                    + " (--custom-attributes keeps them, --map COLUMN=FIELD maps one)")
        }
        if !summary.dryRun && summary.imported > 0 {
            lines.append("the new contacts are pending: `intercom-sync outbox flush` pushes them to Intercom")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ summary: CSVImportSummary) -> JSONValue {
        .object([
            "read": .int(Int64(summary.read)), "imported": .int(Int64(summary.imported)),
            "duplicates": .int(Int64(summary.duplicates)), "rejected": .int(Int64(summary.rejected)),
            "rejected_by_reason": .object(summary.rejectedByCategory.mapValues { .int(Int64($0)) }),
            "ignored_columns": .array(summary.ignoredColumns.map(JSONValue.string)), "dry_run": .bool(summary.dryRun),
            "duration_seconds": .double(summary.seconds),
            "phones_rewritten": .int(Int64(summary.phonesRewritten)),
            "phones_dropped": .int(Int64(summary.phonesDropped)),
        ])
    }
}
