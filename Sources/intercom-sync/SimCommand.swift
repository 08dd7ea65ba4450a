import ArgumentParser
import Foundation
import IntercomSimulator
import SyntheticData

struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a local Intercom API simulator on 127.0.0.1 until interrupted.",
        discussion: """
            Serves the Intercom REST API subset intercom-sync uses (contacts, search, messages, \
            admins, OAuth), with Intercom's error envelopes, rate-limit headers, ETags and \
            optional faults. It prints its base URL and an access token, then runs until Ctrl-C. \
            A control API under /_sim/ changes contacts and exports state (see the README).

            Examples:
              intercom-sync sim --seed-contacts 1000
              curl -i -H "Authorization: Bearer sim-access-token" \\
                  "http://127.0.0.1:8700/contacts?per_page=2"
              intercom-sync sim --port 8700 --error-rate 0.05 --latency-ms 40 \\
                  --jitter-ms 20
            """
    )

    @Option(
        parsing: .unconditional, help: "Port on 127.0.0.1 (0 picks a free one).")
    var port = 0

    @Option(
        parsing: .unconditional, help: "Generate this many contacts at start.")
    var seedContacts = 0

    @Option(help: "Seed for the generated contacts.")
    var seed: UInt64 = 1

    @Option(help: "The access token the simulator accepts.")
    var token = SimulatorConfiguration().accessToken

    @Option(help: "Requests allowed per 10-second window (Intercom's default: 1667).")
    var rateLimit = SimulatorConfiguration().rateLimit

    @Option(help: "The workspace timezone, which search date filters follow.")
    var timezone = SimulatorConfiguration().timezone

    @Flag(help: "Send no ETags (as live Intercom may not).")
    var noEtags = false

    @Option(help: "Fault: milliseconds added to every request.")
    var latencyMs = 0

    @Option(help: "Fault: up to this many random extra milliseconds.")
    var jitterMs = 0

    @Option(help: "Microseconds added for each contact an answer carries (a page of 150 costs more than a GET).")
    var perContactUs = 0

    @Option(
        name: .customLong("search-lag-s"),
        help: "Seconds before a created or edited contact shows in search (list and GET see it at once).")
    var searchLag = 0

    @Option(help: "Tags the seeded contacts carry: about half are tagged, a few tags on many, 1 in 250 with over 10.")
    var seedTags = 0

    @Option(help: "Companies the seeded contacts belong to: about 60% in one, 4% in two.")
    var seedCompanies = 0

    @Option(help: "Share of the seeded contacts created on one day, as a bulk import makes (0...1).")
    var bulkDayShare = 0.0

    @Option(help: "Fault: share of requests answered 500/502/503 (0...1).")
    var errorRate = 0.0

    @Option(help: "Fault: share of requests that start a burst of 429s (0...1).")
    var burstRate = 0.0

    @Option(help: "Fault: how many 429s a burst lasts.")
    var burstLength = 5

    @Option(help: "Fault: share of writes committed whose answer is lost (0...1).")
    var lostRate = 0.0

    @Option(help: "Fault: seconds a lost answer is held before the connection closes.")
    var lostDelay = 30.0

    @Option(help: "Fault: share of answers whose JSON is cut in half (0...1).")
    var truncateRate = 0.0

    @Option(help: "Seed for the fault generator.")
    var faultSeed: UInt64 = 1

    @Option(
        name: .customLong("fault-route"),
        help: "Limit faults to requests starting with this \"METHOD /path\" (repeatable), e.g. \"POST /messages\".")
    var faultRoutes: [String] = []

    func validate() throws {
        for (name, rate) in [
            ("--error-rate", errorRate), ("--burst-rate", burstRate), ("--lost-rate", lostRate),
            ("--truncate-rate", truncateRate), ("--bulk-day-share", bulkDayShare),
        ] where !(0...1).contains(rate) {
            throw ValidationError("\(name) must be between 0 and 1, not \(rate).")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535.") }
        guard seedContacts >= 0 else { throw ValidationError("--seed-contacts cannot be negative.") }
        guard seedTags >= 0, seedCompanies >= 0 else {
            throw ValidationError("--seed-tags and --seed-companies cannot be negative.")
        }
        guard rateLimit > 0 else { throw ValidationError("--rate-limit must be positive.") }
        guard TimeZone(identifier: timezone) != nil else { throw ValidationError("unknown --timezone \(timezone).") }
    }

    func run() async throws {
        var configuration = SimulatorConfiguration()
        configuration.port = port
        configuration.seedContacts = seedContacts
        configuration.seed = seed
        configuration.seedTags = seedTags
        configuration.seedCompanies = seedCompanies
        configuration.accessToken = token
        configuration.rateLimit = rateLimit
        configuration.timezone = timezone
        configuration.etags = !noEtags
        configuration.faults.latencyMilliseconds = latencyMs
        configuration.faults.jitterMilliseconds = jitterMs
        configuration.faults.perContactMicroseconds = perContactUs
        configuration.searchLagSeconds = searchLag
        if bulkDayShare > 0 {
            // 200 days before the data set's reference time, at midnight UTC.
            configuration.bulkDay = ContactGenerator.BulkDay(start: 1_767_225_600 - 200 * 86_400, share: bulkDayShare)
        }
        configuration.faults.serverErrorRate = errorRate
        configuration.faults.rateLimitBurstRate = burstRate
        configuration.faults.rateLimitBurstLength = burstLength
        configuration.faults.lostResponseRate = lostRate
        configuration.faults.lostResponseDelaySeconds = lostDelay
        configuration.faults.truncatedBodyRate = truncateRate
        configuration.faults.seed = faultSeed
        configuration.faults.routes = faultRoutes
        let simulator = try await IntercomSimulator.start(configuration)
        let banner = """
            Intercom simulator listening on \(simulator.baseURL)
            base URL: \(simulator.baseURL)
            access token: \(simulator.accessToken)
            contacts: \(seedContacts) (seed \(seed)); OAuth client id \(configuration.clientID), secret \(configuration.clientSecret)
            Press Ctrl-C to stop.

            """
        FileHandle.standardOutput.write(Data(banner.utf8))
        try await simulator.wait()
    }
}
