import Foundation
import Testing

@testable import IntercomSync

@Suite struct JSONReaderTests {
    @Test func readsEveryKindOfValue() throws {
        let value = try JSONValue(
            jsonText: #" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d"}, "big": 12345678901234567890, "z": 0} "#)
        #expect(
            value
                == .object([
                    "a": .array([.int(1), .double(-2500), .bool(true), .bool(false), .null]),
                    "b": .object(["c": .string("d")]), "big": .double(12_345_678_901_234_567_890), "z": .int(0),
                ]))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONValue(jsonText: #""Jos\u00e9 \"O'Brien\"\n\t\/\\ \ud83d\ude00 Zoë""#)
        #expect(value == .string("José \"O'Brien\"\n\t/\\ 😀 Zoë"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{a:1}", "01", "1.", "-", "1e", "\"unterminated", "\"bad \\x escape\"",
        "\"lone \\ud83d\"", "\"\u{01}\"", "nul", "[1] 2", "{\"a\" 1}", "\"\\u12G4\"",
    ])
    func refusesMalformedText(text: String) {
        #expect(throws: JSONReadError.self) { try JSONValue(jsonText: text) }
    }

    @Test func refusesNestingBeyondTheLimit() {
        let deep =
            String(repeating: "[", count: JSONReader.maximumDepth + 1)
            + String(repeating: "]", count: JSONReader.maximumDepth + 1)
        #expect(throws: JSONReadError.self) { try JSONValue(jsonText: deep) }
    }

    @Test func errorsSayWhere() {
        do {
            _ = try JSONValue(jsonText: #"{"a": tru}"#)
            Issue.record("accepted broken JSON")
        } catch let error as JSONReadError {
            #expect(error.offset == 6)
            #expect(error.description.contains("byte 6"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func agreesWithFoundationOnFixtures() throws {
        for name in [
            "contacts/list-page-1-of-3.json", "contacts/get-contact-2.16.json", "contacts/update-contact-custom-object-2.16.json",
        ] {
            let text = try Fixtures.text(name)
            let ours = try JSONValue(jsonText: text)
            let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(ours == foundation, "\(name)")
        }
    }
}
