import CLISupport
import Foundation
import Testing

@testable import IntercomSync

@Suite struct HardeningUnitTests {
    @Test func terminalTextEscapesWhatATerminalWouldActOn() {
        #expect(TerminalText.escaped("Ana López") == "Ana López")
        #expect(TerminalText.escaped("a\u{1b}[2Jb\u{07}c\rd\te\nf") == #"a\u001b[2Jb\u0007c\rd\te\nf"#)
        #expect(TerminalText.escaped("line\nnext", keepingNewlines: true) == "line\nnext")
        #expect(TerminalText.escaped("\u{9b}31m\u{7f}") == #"\u009b31m\u007f"#)
        #expect(TerminalText.escaped("abc\u{202e}txt.exe\u{2066}") == #"abc\u202etxt.exe\u2066"#)
        // Escaping twice changes nothing more.
        let once = TerminalText.escaped("x\u{1b}y")
        #expect(TerminalText.escaped(once) == once)
    }

    @Test func onlyLoopbackMayBePlainHTTP() {
        for url in [
            "http://127.0.0.1:8700", "http://127.5.6.7", "http://localhost:1", "http://[::1]:80", "https://api.intercom.io",
        ] {
            #expect(!IntercomConnection.sendsTokenInClear(to: URL(string: url)!), "\(url)")
        }
        for url in [
            "http://api.intercom.io", "http://10.0.0.1", "http://0.0.0.0:9", "http://127.0.0.1.evil.example", "http://128.0.0.1",
        ] {
            #expect(IntercomConnection.sendsTokenInClear(to: URL(string: url)!), "\(url)")
        }
    }

    @Test func datesPrintAsFoundationsFormatterPrintsThem() {
        let formatter = ISO8601DateFormatter()
        var random = SystemRandomNumberGenerator()
        let edges = [0, -1, 59, 86_399, 86_400, 951_782_400, 951_868_799, 1_709_164_800, 4_107_542_399, -2_208_988_800]
        for seconds in edges + (0..<2_000).map({ _ in Int.random(in: -2_208_988_800...7_258_118_400, using: &random) }) {
            #expect(
                UnixTime.iso8601(seconds) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))),
                "\(seconds)")
        }
        #expect(UnixTime.iso8601(1_740_825_000) == "2025-03-01T10:30:00Z")
        #expect(UnixTime.parse(UnixTime.iso8601(1_740_825_000)) == 1_740_825_000)
    }

    @Test func impossibleDatesAreRefused() {
        #expect(UnixTime.parse("2025-02-30") == nil)
        #expect(UnixTime.parse("2025-04-31") == nil)
        #expect(UnixTime.parse("2025-02-29") == nil)
        #expect(UnixTime.parse("2025-03-01T24:00:00Z") == nil)
        #expect(UnixTime.parse("2024-02-29") == 1_709_164_800)
        #expect(UnixTime.parse("2000-02-29") != nil)
        #expect(UnixTime.parse("1900-02-29") == nil)
        #expect(UnixTime.parse("2025-03-01T12:30:00+02:00") == 1_740_825_000)
    }

    @Test func aWalkThatWouldTombstoneTooMuchStopsBeforeCommitting() async throws {
        let harness = try await SimulatorHarness.start(contacts: 100)
        defer { Task { await harness.stop() } }
        _ = try await harness.sync.run()
        let ids = await harness.workspace.contactIDs()
        for id in ids.prefix(15) { try await harness.workspace.delete(id: id) }
        harness.workspace.clock.advance(by: 60)
        let fifteen = try await harness.sync.run(.full)
        #expect(fifteen.tombstoned == 15, "15 of 100 is a plausible cull")

        for id in ids.dropFirst(15).prefix(30) { try await harness.workspace.delete(id: id) }
        harness.workspace.clock.advance(by: 60)
        await #expect {
            try await harness.sync.run(.full)
        } throws: { error in
            (error as? SyncError)?.kind == .massDelete && "\(error)".contains("tombstone 30 (35%)")
        }
        #expect(try harness.mirror.status().contacts.synced == 85, "nothing of the walk's end was committed")
        let confirmed = try await harness.sync.run(.full, safety: ContactSync.Safety(allowMassDelete: true))
        #expect(confirmed.tombstoned == 30)
        #expect(try await harness.differences() == [])
    }
}
