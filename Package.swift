// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "intercom-sync",
    // Linux, and macOS 15 or later (the engine's locks are `Synchronization.Mutex`). The mirror's
    // compressed bodies need the system's libzstd, which iOS and its siblings do not ship, so
    // they are not declared. `scripts/check-portability` keeps Linux-only calls guarded.
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IntercomSync", targets: ["IntercomSync"]),
        // The team store on PostgreSQL: a product of its own, so that an app that keeps only a
        // local mirror builds no PostgreSQL client, TLS or crypto.
        .library(name: "IntercomSyncTeam", targets: ["IntercomSyncTeam"]),
        .executable(name: "intercom-sync", targets: ["intercom-sync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        // The simulator's HTTP server. No traits: swift-configuration is not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        // Hummingbird's own lifecycle, named to stop the simulator gracefully.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        // The team store's PostgreSQL client.
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        // `swift package generate-documentation`: the library's DocC catalog (`scripts/test` builds it).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"),
    ],
    targets: [
        // zstd, for the mirror's compressed contact bodies: the system's (Debian: libzstd-dev).
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        // libcurl's calls the HTTP transport makes, loaded at the first request (dlopen), so
        // that a command that stays offline does not load it (`CurlTransport`).
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // JSON values and a strict reader, shared by the engine and the simulator.
        .target(name: "IntercomJSON"),
        .target(
            name: "IntercomSync",
            dependencies: [
                "IntercomJSON",
                "CCurl",
                "CZstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the query path's connection of its own (`MirrorReader`).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The team store: the team's contacts and outbox in PostgreSQL.
        .target(
            name: "IntercomSyncTeam",
            dependencies: [
                "IntercomSync",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the command-line tool adds to the engine: rendering contacts as tables, CSV and
        // JSON, terminal-safe text, and where its files live (XDG folders, environment).
        .target(name: "CLISupport", dependencies: ["IntercomSync"]),
        // Deterministic Intercom-shaped test and benchmark data. Depends on nothing, so the
        // simulator can seed from it without depending on the engine.
        .target(name: "SyntheticData"),
        // A local Intercom API over HTTP with fault injection. Depends on nothing of the engine.
        .target(
            name: "IntercomSimulator",
            dependencies: [
                "IntercomJSON",
                "SyntheticData",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "intercom-sync",
            dependencies: [
                "IntercomSync",
                "IntercomSyncTeam",
                "CLISupport",
                "IntercomSimulator",
                "SyntheticData",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "intercom-sync-bench",
            dependencies: ["IntercomSync", "SyntheticData", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // A small app that uses only the library's public facade (`scripts/test` runs it).
        .executableTarget(
            name: "MirrorTour", dependencies: ["IntercomSync", "IntercomSimulator"], path: "Examples/MirrorTour"),
        .testTarget(
            name: "IntercomSyncTests",
            dependencies: ["IntercomSync", "CLISupport", "IntercomSimulator", "SyntheticData"]
        ),
        .testTarget(name: "SyntheticDataTests", dependencies: ["SyntheticData"]),
        // Against a real PostgreSQL: `scripts/test` starts a throwaway cluster and names it in
        // INTERCOM_SYNC_TEST_STORE.
        .testTarget(
            name: "IntercomSyncTeamTests",
            dependencies: [
                "IntercomSyncTeam", "IntercomSync", "SyntheticData", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "IntercomSimulatorTests", dependencies: ["IntercomSimulator", "SyntheticData"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "IntercomSync", "IntercomSyncTeam", "CLISupport", "IntercomSimulator", "SyntheticData",
                // A database of its own for each team test.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                // Stub servers that misbehave as no simulator of Intercom should (StubServer).
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
