import IntercomSyncTeam
import Testing

/// The store's URL as libpq reads one, and a password that never shows.
@Suite struct TeamStoreURLTests {
    @Test func aURLIsReadAsLibpqReadsIt() throws {
        let url = try TeamStoreURL("postgres://agent:s%40cret@db.example.com:6543/support?sslmode=verify-full")
        #expect(url.username == "agent" && url.password == "s@cret")
        #expect(url.host == "db.example.com" && url.port == 6543 && url.database == "support")
        #expect(url.sslMode == .verifyFull && url.socketFolder == nil)

        let defaults = try TeamStoreURL("postgresql://agent@localhost")
        #expect(defaults.port == 5432 && defaults.database == "agent" && defaults.sslMode == .prefer)
        #expect(defaults.password == nil)

        let socket = try TeamStoreURL("postgres://agent@/support?host=/var/run/postgresql")
        #expect(socket.socketFolder == "/var/run/postgresql" && socket.database == "support")
    }

    @Test func thePasswordNeverShows() throws {
        let url = try TeamStoreURL("postgres://agent:hunter2@db:5432/support?sslmode=require")
        #expect("\(url)" == "postgres://agent:***@db:5432/support?sslmode=require")
        #expect(!String(reflecting: url.description).contains("hunter2"))
        for bad in [
            "mysql://agent:hunter2@db/support", "postgres://agent:hunter2@db/support?sslmode=sometimes",
            "postgres://agent:hunter2@db:99999/support", "postgres://:hunter2@db/support",
            "postgres://agent:hunter2@db/support?application=x",
        ] {
            let error = try #require(throws: TeamStoreError.self) { try TeamStoreURL(bad) }
            #expect(error.kind == .badURL, "\(bad)")
            #expect(!error.description.contains("hunter2"), "\(error)")
        }
    }
}
