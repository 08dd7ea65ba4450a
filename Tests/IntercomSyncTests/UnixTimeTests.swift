import Foundation
import Testing

@testable import IntercomSync

/// Dates read from flags and printed in output: ISO 8601 as Foundation writes it, and nothing
/// a calendar does not have.
@Suite struct UnixTimeTests {

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
}
