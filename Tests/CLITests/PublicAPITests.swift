import Foundation
import Testing

/// The library's public API, read from the symbol graph of the build under test
/// (`scripts/check-public-api`): the facade is there, and nothing public names a GRDB type.
@Suite struct PublicAPITests {
    static func checkPublicAPI(_ arguments: [String]) throws -> PortabilityCheckTests.Outcome {
        try PortabilityCheckTests.script("check-public-api", [CLI.binary.deletingLastPathComponent().path] + arguments)
    }

    @Test func noPublicDeclarationExposesGRDB() throws {
        let result = try Self.checkPublicAPI([])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("none exposes GRDB"))
    }

    @Test func theFacadeIsPublicAndTheEngineIsNot() throws {
        let result = try Self.checkPublicAPI(["--list"])
        #expect(result.status == 0, "\(result.output)")
        let symbols = Set(result.output.split(separator: "\n").map(String.init))
        for expected in [
            "IntercomMirror.open(at:mode:connection:configuration:)", "IntercomMirror.sync(_:safety:progress:)",
            "IntercomMirror.observe(_:)", "IntercomMirror.observeStatus()", "IntercomMirror.flush(rebind:progress:)",
            "IntercomMirror.check(at:repairing:configuration:)", "MirrorCheck.isSound",
            "ContactQuery.init(email:externalID:role:nameContains:search:updatedSince:updatedBefore:states:customAttributes:tags:anyTags:companies:segments:sort:limit:cursor:)",
            "StoredContact.init(contact:state:etag:fetchedAt:validatedAt:body:rowID:)",
        ] {
            #expect(symbols.contains(expected), "\(expected) is not public")
        }
        for engine in ["ContactMirror", "ContactSync", "OutboxFlush", "ContactImport", "IntercomClient", "MirrorLock"] {
            #expect(!symbols.contains { $0 == engine || $0.hasPrefix(engine + ".") }, "\(engine) is public")
        }
    }
}
