import Testing

@testable import IntercomSync

@Suite struct CSVHeaderMapTests {
    @Test func commonExportHeadersMapWhateverTheirCaseAndPunctuation() throws {
        let map = try CSVHeaderMap(header: [
            "E-mail Address", "Full name", "Phone Number", "Type", "User ID", "Avatar", "Notes",
        ])
        #expect(
            map.targets == [
                .field(.email), .field(.name), .field(.phone), .field(.role), .field(.externalID), .field(.avatar), .ignored,
            ])
        #expect(map.ignoredColumns == ["Notes"])
        #expect(try CSVHeaderMap(header: ["external_id", "EMAIL"]).targets == [.field(.externalID), .field(.email)])
    }

    @Test func overridesWinAndUnknownColumnsCanBecomeAttributes() throws {
        let map = try CSVHeaderMap(
            header: ["Work Email", "Email", "Plan", "Seats"],
            overrides: ["work email": "email", "Email": "ignore", "Seats": "custom:seat_count"],
            customAttributes: true)
        #expect(map.targets == [.field(.email), .ignored, .customAttribute("Plan"), .customAttribute("seat_count")])
    }

    @Test func badMappingsAndAMissingEmailAreRefused() throws {
        #expect(throws: ImportError.self) { try CSVHeaderMap(header: ["name"]) }
        #expect(throws: ImportError.self) { try CSVHeaderMap(header: ["email"], overrides: ["nope": "email"]) }
        #expect(throws: ImportError.self) { try CSVHeaderMap(header: ["email", "x"], overrides: ["x": "colour"]) }
        // An override takes the field from a column that only matched by name.
        #expect(try CSVHeaderMap(header: ["email", "x"], overrides: ["x": "email"]).targets == [.ignored, .field(.email)])
        do {
            _ = try CSVHeaderMap(header: ["email", "x"], overrides: ["x": "email", "email": "email"])
        } catch let error as ImportError {
            #expect(error.kind == .badMapping)
            #expect(error.description.contains("\"email\" and \"x\" both map to email"))
        } catch {
            Issue.record("\(error)")
        }
    }
}
