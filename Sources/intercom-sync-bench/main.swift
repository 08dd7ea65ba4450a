// Benchmark driver for scripts/bench-*: prints one `name: value unit` line per figure.
// Not a test: timings belong here, never in the test suite.
import Foundation
import GRDB
import IntercomSync
import SyntheticData

func option(_ name: String, default value: String) -> String {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else { return value }
    return arguments[index + 1]
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

func report(_ name: String, _ value: Double, _ unit: String, decimals: Int = 1) {
    print("\(name): \(String(format: "%.\(decimals)f", value)) \(unit)")
    fflush(nil)  // Each figure as soon as it is known, also through a pipe.
}

/// Generates `count` contacts as Intercom list pages of 150 and stores them through the bulk
/// upsert, `pagesPerCommit` pages per transaction as a pull groups them; only the upsert is timed
/// (with the indexing a bulk load defers to its end, when `deferIndexing`).
func upsert(count: Int, seed: UInt64, pagesPerCommit: Int, deferIndexing: Bool, mirror: ContactMirror) throws {
    let generator = ContactGenerator(seed: seed)
    let perPage = 150
    var upsertNanoseconds: UInt64 = 0
    var stored = 0
    var bytes = 0
    var pages: [String] = []
    func flush() throws {
        let began = now()
        stored += try mirror.upsertPages(pages, fetchedAt: generator.referenceTime).written
        upsertNanoseconds += now() - began
        pages.removeAll(keepingCapacity: true)
    }
    let links = Links(
        tags: Int(option("tags", default: "0"))!, companies: Int(option("companies", default: "0"))!, seed: seed)
    func page(at start: Int) -> String {
        IntercomPage.list(
            generator.contacts(start..<min(start + perPage, count)).map(links.apply), page: start / perPage + 1,
            perPage: perPage,
            totalCount: count, nextCursor: start + perPage < count ? "cursor-\(start + perPage)" : nil)
    }
    // Pages made beforehand (`--pregenerate yes`) leave a profile of the upsert alone, at the
    // cost of holding them all in memory.
    let made = option("pregenerate", default: "no") == "yes" ? stride(from: 0, to: count, by: perPage).map(page) : nil
    func load() throws {
        for (index, start) in stride(from: 0, to: count, by: perPage).enumerated() {
            let page = made?[index] ?? page(at: start)
            bytes += page.utf8.count
            pages.append(page)
            if pages.count == pagesPerCommit { try flush() }
        }
        if !pages.isEmpty { try flush() }
    }
    var indexingNanoseconds: UInt64 = 0
    if deferIndexing {
        // Timed with the rest: the indexes it builds at the end are part of the load.
        var indexingBegan: UInt64 = 0
        try mirror.bulkLoading(beforeIndexing: { indexingBegan = now() }, load)
        indexingNanoseconds = now() - indexingBegan
        upsertNanoseconds += indexingNanoseconds
    } else {
        try load()
    }
    if links.tags > 0 || links.companies > 0 {
        try links.store(in: mirror)
        print("relations: \(links.tags) tags and \(links.companies) companies carried by the contacts")
    }
    let seconds = Double(upsertNanoseconds) / 1e9
    print(
        "contacts upserted: \(stored) (pages of \(perPage), \(pagesPerCommit) pages per commit, "
            + (deferIndexing ? "indexing deferred to the end: \(Double(indexingNanoseconds) / 1e9) s)" : "indexed as written)"))
    report("upsert time", seconds, "s", decimals: 2)
    report("upsert rate", Double(stored) / seconds, "contacts/s", decimals: 0)
    report("upsert throughput", Double(bytes) / seconds / 1e6, "MB/s of JSON")
}

/// Tags and companies for generated contacts, shaped as a support team's workspace: tag k is
/// drawn with weight 1/(k+1), half the contacts carry none and 1 in 250 carries 12 to 15 (more
/// than a body lists); 56 % belong to one company and 4 % to two.
struct Links {
    let tags: Int
    let companies: Int
    let seed: UInt64
    private let cumulative: [Double]

    init(tags: Int, companies: Int, seed: UInt64) {
        self.tags = tags
        self.companies = companies
        self.seed = seed
        var sums: [Double] = []
        for index in 0..<tags { sums.append((sums.last ?? 0) + 1 / Double(index + 1)) }
        cumulative = sums
    }

    static func tagID(_ number: Int) -> String { String(8_000_001 + number) }
    static func tagName(_ number: Int) -> String { "bench-tag-\(number)" }
    static func companyID(_ number: Int) -> String { "bench-company-\(number)" }
    static func companyName(_ number: Int) -> String { "Company \(number) Inc" }

    func apply(_ contact: SyntheticContact) -> SyntheticContact {
        var contact = contact
        var random = SplitMix64(seed: seed ^ UInt64(contact.index) &* 0xD1B5_4A32_D192_ED03)
        if tags > 0 {
            let count =
                random.next() % 250 == 0 ? 12 + Int(random.next() % 4) : [0, 0, 0, 0, 0, 1, 1, 1, 2, 3][Int(random.next() % 10)]
            var chosen: [String] = []
            while chosen.count < min(count, tags) {
                let draw = Double(random.next() % 1_000_000) / 1_000_000 * cumulative[tags - 1]
                let id = Self.tagID(cumulative.firstIndex { $0 > draw } ?? tags - 1)
                if !chosen.contains(id) { chosen.append(id) }
            }
            contact.tagIDs = chosen
        }
        if companies > 0 {
            let draw = random.next() % 100
            let count = draw < 56 ? 1 : draw < 60 ? 2 : 0
            var chosen: [String] = []
            while chosen.count < min(count, companies) {
                let id = Self.companyID(Int(random.next() % UInt64(companies)))
                if !chosen.contains(id) { chosen.append(id) }
            }
            contact.companyIDs = chosen
        }
        return contact
    }

    /// The tag and company lists, as a sync stores them.
    func store(in mirror: ContactMirror) throws {
        try mirror.databaseForDeveloperTools.write { db in
            try ContactMirror.replaceTags((0..<tags).map { (Self.tagID($0), Self.tagName($0)) }, in: db)
            try ContactMirror.storeCompanies(
                (0..<companies).compactMap { number in
                    CompanyRecord(
                        .object([
                            "type": "company", "id": .string(Self.companyID(number)),
                            "company_id": .string("co-\(number)"), "name": .string(Self.companyName(number)),
                        ]))
                }, in: db)
        }
    }
}

/// The first page (50) of `--tag` and `--company` queries, by the default sort (newest update
/// first): the most carried tag, one in the middle, the least carried, and random companies.
func linkQueries(samples: Int, tags: Int, companies: Int, mirror: ContactMirror) throws {
    func first(_ build: (inout ContactQuery) -> Void) throws -> Int {
        var query = ContactQuery()
        build(&query)
        return try mirror.contacts(matching: query).contacts.count
    }
    for (label, number) in [("most carried", 0), ("middling", tags / 2), ("least carried", tags - 1)] where tags > 0 {
        try measure("--tag, first page of 50, \(label) tag", samples: samples) { _ in
            try first { $0.tags = [Links.tagName(number)] }
        }
    }
    if tags > 1 {
        try measure("--tag A --tag B (both), first page of 50", samples: samples) { _ in
            try first { $0.tags = [Links.tagName(0), Links.tagName(1)] }
        }
        try measure("--any-tag (two rare tags), first page of 50", samples: samples) { _ in
            try first { $0.anyTags = [Links.tagName(tags - 1), Links.tagName(tags - 2)] }
        }
    }
    if companies > 0 {
        var random = SplitMix64(seed: 7)
        let picks = (0..<samples).map { _ in Int(random.next() % UInt64(companies)) }
        try measure("--company NAME, first page of 50", samples: samples) { sample in
            try first { $0.companies = [Links.companyName(picks[sample])] }
        }
        try measure("--tag and --company, first page of 50", samples: samples) { sample in
            try first {
                $0.tags = [Links.tagName(0)]
                $0.companies = [Links.companyName(picks[sample])]
            }
        }
    }
}

/// Times `samples` queries, each for a random key, and prints the median and p99.
func measure(_ name: String, samples: Int, _ body: (Int) throws -> Int) rethrows {
    var latencies: [Double] = []
    latencies.reserveCapacity(samples)
    var found = 0
    for sample in 0..<samples {
        let began = now()
        found += try body(sample)
        latencies.append(Double(now() - began) / 1000)
    }
    latencies.sort()
    report("\(name) p50", percentile(latencies, 0.5), "µs")
    report("\(name) p99", percentile(latencies, 0.99), "µs")
    print("\(name) rows found: \(found)")
}

func lookups(count: Int, seed: UInt64, samples: Int, mirror: ContactMirror) throws {
    let generator = ContactGenerator(seed: seed)
    var random = SystemRandomNumberGenerator()
    let emails = (0..<samples).map { _ in generator.contact(at: Int.random(in: 0..<count, using: &random)).email.uppercased() }
    try measure("email lookup", samples: samples) { sample in
        var query = ContactQuery()
        query.email = emails[sample]
        query.limit = 1
        return try mirror.contacts(matching: query).contacts.count
    }
    if option("only", default: "") == "email" { return }
    let ids = (0..<samples).map { _ in generator.contact(at: Int.random(in: 0..<count, using: &random)).id }
    try measure("contact(id:) with its body", samples: samples) { sample in
        try mirror.contact(id: ids[sample])?.body == nil ? 0 : 1
    }
    try decompression(samples: samples, count: count, mirror: mirror)
    let prefixes = (0..<samples).map { _ in
        let name = generator.contact(at: Int.random(in: 0..<count, using: &random)).name
        return String(name.prefix(3))
    }
    for sort in [ContactSort(.stored), ContactSort(.relevance), ContactSort(.updatedAt, descending: true)] {
        // Ranking or sorting every match of a 3-letter prefix takes tens of milliseconds over a
        // large mirror: fewer samples keep the run in minutes.
        let sortSamples = sort.field == .stored ? samples : min(samples, 200)
        try measure("fts prefix (sort \(sort.field.rawValue)), \(sortSamples) samples", samples: sortSamples) { sample in
            var query = ContactQuery()
            query.search = prefixes[sample]
            query.sort = sort
            query.limit = 20
            return try mirror.contacts(matching: query).contacts.count
        }
    }
}

/// The time to decompress one body: a scan of 10,000 rows reading each body through
/// `contact_body`, less the same scan reading the stored bytes, per row; the median of
/// `samples / 1000` such scans at random places.
func decompression(samples: Int, count: Int, mirror: ContactMirror) throws {
    var random = SystemRandomNumberGenerator()
    let starts = (0..<max(samples / 1000, 5)).map { _ in Int64.random(in: 1...Int64(max(count - 10_000, 1)), using: &random) }
    func median(_ expression: String) throws -> Double {
        try mirror.databaseForDeveloperTools.read { db in
            let statement = try db.makeStatement(
                sql: "SELECT sum(length(\(expression))) FROM contacts WHERE row_id >= ? AND row_id < ? + 10000")
            var perRow: [Double] = []
            for start in starts {
                let began = now()
                _ = try Int.fetchOne(statement, arguments: [start, start])
                perRow.append(Double(now() - began) / 1000 / 10_000)
            }
            return percentile(perRow.sorted(), 0.5)
        }
    }
    let stored = try median("body")
    let decompressed = try median("contact_body(body)")
    report("body decompression p50", decompressed - stored, "µs", decimals: 2)
    let sizes = try mirror.databaseForDeveloperTools.read { db in
        try Row.fetchOne(
            db, sql: "SELECT avg(length(body)), avg(length(contact_body(body))) FROM contacts WHERE row_id % 100 = 0")
    }
    if let sizes {
        report("body size stored", sizes[0] as Double, "bytes")
        report("body size as JSON", sizes[1] as Double, "bytes")
    }
}

/// Writes `pages` pages of 150 changed contacts into the mirror of `count`, each page its own
/// transaction with every index and the FTS index live, as an incremental pull does: a third
/// of the changes rename the contact (new FTS terms), the rest only move `updated_at`.
func steadyUpsert(count: Int, seed: UInt64, pages: Int, mirror: ContactMirror) throws {
    let generator = ContactGenerator(seed: seed)
    var random = SystemRandomNumberGenerator()
    var elapsed: UInt64 = 0
    var written = 0
    for page in 0..<pages {
        let contacts = (0..<150).map { offset -> SyntheticContact in
            var contact = generator.contact(at: Int.random(in: 0..<count, using: &random))
            contact.updatedAt = generator.referenceTime + 1 + page * 150 + offset
            if offset % 3 == 0 { contact.name = "Renamed \(page) \(offset) \(contact.name)" }
            return contact
        }
        let text = IntercomPage.list(contacts, page: page + 1, perPage: 150, totalCount: 150 * pages, nextCursor: nil)
        let began = now()
        written += try mirror.upsertPage(text, fetchedAt: generator.referenceTime + 10).written
        elapsed += now() - began
    }
    let seconds = Double(elapsed) / 1e9
    print("steady-state pages: \(pages) of 150 into a mirror of \(count), \(written) contacts written")
    report("steady-state upsert rate", Double(written) / seconds, "contacts/s", decimals: 0)
    report("steady-state page mean", seconds / Double(pages) * 1000, "ms", decimals: 2)
}

/// Stages `count` in-app messages, spread over the mirror's synced contacts, for bench-flush.
func stageMessages(count: Int, mirror: ContactMirror) throws {
    let recipients = try mirror.databaseForDeveloperTools.read { db in
        try String.fetchAll(db, sql: "SELECT id FROM contacts WHERE state = 'synced' ORDER BY row_id LIMIT 1000")
    }
    guard !recipients.isEmpty else { throw MirrorError(.missingMirror, detail: "sync the mirror first") }
    let began = now()
    for index in 0..<count {
        let draft = MessageDraft(kind: .inApp, body: "bench message \(index)", to: recipients[index % recipients.count])
        _ = try mirror.stageMessage(draft, now: Int(Date().timeIntervalSince1970))
    }
    print("messages staged: \(count) to \(min(count, recipients.count)) contacts")
    report("staging rate", Double(count) / (Double(now() - began) / 1e9), "messages/s", decimals: 0)
}

/// Stages an edit (name, phone and a custom attribute) of each of `count` synced contacts,
/// for bench-flush's edit scenario.
func stageEdits(count: Int, mirror: ContactMirror) throws {
    let contacts = try mirror.databaseForDeveloperTools.read { db in
        try String.fetchAll(
            db, sql: "SELECT id FROM contacts WHERE state = 'synced' ORDER BY row_id LIMIT ?", arguments: [count])
    }
    guard contacts.count == count else {
        throw MirrorError(.missingMirror, detail: "the mirror has \(contacts.count) synced contacts, not \(count)")
    }
    let began = now()
    for (index, id) in contacts.enumerated() {
        let patch = ContactPatch([
            .name: .string("Bench Edit \(index)"), .phone: .string("+1555\(String(format: "%07d", index))"),
            .customAttribute("bench"): .int(Int64(index)),
        ])
        _ = try mirror.stageEdit(patch, to: id, now: Int(Date().timeIntervalSince1970))
    }
    print("edits staged: \(count) contacts, 3 fields each")
    report("staging rate", Double(count) / (Double(now() - began) / 1e9), "edits/s", decimals: 0)
}

/// An open of the mirror read-only and one `contact(id:)`, as `contacts get --offline` does
/// them, in this process: what the command costs besides starting a process.
func openAndGet(count: Int, seed: UInt64, samples: Int) throws {
    let id = ContactGenerator(seed: seed).contact(at: count / 2).id
    var latencies: [Double] = []
    for _ in 0..<samples {
        let began = now()
        let mirror = try ContactMirror.open(at: path, mode: .readOnly)
        guard try mirror.contact(id: id)?.body != nil else { throw MirrorError(.corrupt, detail: "no contact \(id)") }
        try mirror.close()
        latencies.append(Double(now() - began) / 1000)
    }
    report("open read-only and contact(id:), first in the process", latencies[0], "µs")
    if option("parts", default: "no") == "yes" {
        var configuration = Configuration()
        configuration.readonly = true
        var began = now()
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
        report("a GRDB queue and one read", Double(now() - began) / 1000, "µs")
        began = now()
        _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sync_state") }
        report("a second read through it", Double(now() - began) / 1000, "µs")
    }
    latencies.sort()
    report("open read-only and contact(id:) p50", percentile(latencies, 0.5), "µs")
}

let command = CommandLine.arguments.dropFirst().first ?? ""
let count = Int(option("count", default: "100000"))!
let seed = UInt64(option("seed", default: "42"))!
let path = option("db", default: "bench-data/mirror.sqlite")
do {
    switch command {
    case "upsert":
        try? FileManager.default.removeItem(atPath: path)
        let pagesPerCommit = Int(option("pages-per-commit", default: "10"))!
        try upsert(
            count: count, seed: seed, pagesPerCommit: pagesPerCommit,
            deferIndexing: option("defer-indexing", default: "yes") == "yes",
            mirror: try ContactMirror.open(at: path, mode: .createIfMissing))
    case "lookups":
        let samples = Int(option("samples", default: "10000"))!
        try lookups(count: count, seed: seed, samples: samples, mirror: try ContactMirror.open(at: path, mode: .existing))
    case "steady":
        let pages = Int(option("pages", default: "200"))!
        let mirror = try ContactMirror.open(at: path, mode: .existing)
        let pragmas = option("pragmas", default: "")
        if !pragmas.isEmpty {
            try mirror.databaseForDeveloperTools.writeWithoutTransaction { db in try db.execute(sql: pragmas) }
        }
        try steadyUpsert(count: count, seed: seed, pages: pages, mirror: mirror)
    case "open":
        try openAndGet(count: count, seed: seed, samples: Int(option("samples", default: "50"))!)
    case "link-queries":
        try linkQueries(
            samples: Int(option("samples", default: "1000"))!, tags: Int(option("tags", default: "20"))!,
            companies: Int(option("companies", default: "10000"))!, mirror: try ContactMirror.open(at: path, mode: .existing))
    case "stage-messages":
        try stageMessages(count: count, mirror: try ContactMirror.open(at: path, mode: .existing))
    case "stage-edits":
        try stageEdits(count: count, mirror: try ContactMirror.open(at: path, mode: .existing))
    default:
        print(
            "usage: intercom-sync-bench upsert|lookups|steady|open|link-queries|stage-messages|stage-edits [--count N] [--tags N] [--companies N] [--pages N] [--seed S] [--db PATH] [--samples N] [--only email] [--pages-per-commit N] [--defer-indexing yes|no]"
        )
        exit(2)
    }
    report("peak RSS", peakRSSMegabytes(), "MB")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
