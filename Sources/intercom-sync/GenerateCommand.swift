import ArgumentParser
import Foundation
import IntercomSync
import SyntheticData

/// Deterministic test and benchmark data; hidden from the main help.
///
/// A developer tool, and the one command that uses the engine's package API: `--into-mirror`
/// stores contacts through the bulk upsert a pull uses (`ContactMirror`), which the public
/// facade rightly does not offer, so a filled mirror costs no simulated sync.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate realistic synthetic contacts (test and benchmark data).",
        discussion: """
            The same --seed always gives the same contacts. --into-mirror stores them in the mirror \
            through the same bulk upsert a pull uses; --format writes Intercom list pages (one JSON \
            page per line) or a CRM-style CSV export to --out (or stdout).

            Examples:
              intercom-sync generate --count 5000 --into-mirror --db /tmp/demo.sqlite
              intercom-sync generate --count 1000000 --format csv --out contacts.csv
            """,
        shouldDisplay: false
    )

    enum Format: String, ExpressibleByArgument {
        case pages, csv
    }

    @OptionGroup var mirror: MirrorOptions

    @Option(
        parsing: .unconditional, help: "How many contacts.")
    var count = 1_000

    @Option(help: "The seed; the same seed gives the same contacts.")
    var seed: UInt64 = 42

    @Flag(name: .customLong("into-mirror"), help: "Store the contacts in the mirror (--db).")
    var intoMirror = false

    @Option(help: "pages (Intercom list pages, one per line) or csv.")
    var format: Format = .pages

    @Option(help: "Where to write --format output (a new file); - or nothing for stdout.")
    var out: String?

    @Flag(help: "Let --out replace an existing file.")
    var force = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
        if intoMirror && out != nil { throw ValidationError("--into-mirror writes to --db; drop --out.") }
    }

    func run() throws {
        let generator = ContactGenerator(seed: seed)
        if intoMirror {
            try fillMirror(generator)
        } else {
            try write(generator)
        }
    }

    private func fillMirror(_ generator: ContactGenerator) throws {
        try mirror.makeDefaultFolder()
        let store = try ContactMirror.open(at: mirror.resolvedPath, mode: .createIfMissing)
        let perPage = 150
        let pagesPerTransaction = 20
        var progress = ProgressBar("generate", total: count)
        var written = 0
        for batchStart in stride(from: 0, to: count, by: perPage * pagesPerTransaction) {
            let pages = stride(from: batchStart, to: min(count, batchStart + perPage * pagesPerTransaction), by: perPage)
                .map { start in
                    IntercomPage.list(
                        generator.contacts(start..<min(start + perPage, count)), page: start / perPage + 1,
                        perPage: perPage, totalCount: count, nextCursor: nil)
                }
            written += try store.upsertPages(pages, fetchedAt: generator.referenceTime).written
            progress.update(min(count, batchStart + perPage * pagesPerTransaction))
        }
        progress.finish()
        Output.note("Stored \(written) new or changed contacts of \(count) in \(mirror.resolvedPath).")
    }

    private func write(_ generator: ContactGenerator) throws {
        let file = try out.flatMap { out in
            out == "-" ? nil : try OutputFile(path: out, flag: "--out", force: force, protecting: [])
        }
        let write: (String) throws -> Void = { text in
            if let file { try file.write(text) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
        }
        let chunk = 150
        if format == .csv {
            try write(SyntheticContact.csvHeader.joined(separator: ",") + "\r\n")
        }
        for start in stride(from: 0, to: count, by: chunk) {
            let contacts = generator.contacts(start..<min(start + chunk, count))
            let text: String
            switch format {
            case .csv:
                text = contacts.map { $0.csvRow() + "\r\n" }.joined()
            case .pages:
                let next = start + chunk < count ? "page-\(start / chunk + 2)" : nil
                text =
                    IntercomPage.list(contacts, page: start / chunk + 1, perPage: chunk, totalCount: count, nextCursor: next)
                    + "\n"
            }
            try write(text)
        }
        try file?.commit(keepEmpty: true)
    }
}
