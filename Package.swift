// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "intercom-sync",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "IntercomSync", targets: ["IntercomSync"]),
        .executable(name: "intercom-sync", targets: ["intercom-sync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        // The simulator's HTTP server. No traits: swift-configuration is not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
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
            ]
        ),
        .executableTarget(
            name: "intercom-sync",
            dependencies: [
                "IntercomSync",
                "IntercomSimulator",
                "SyntheticData",
                // DatabaseError, to report the mirror's failures without their SQL.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "intercom-sync-bench",
            dependencies: ["IntercomSync", "SyntheticData", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "IntercomSyncTests",
            dependencies: ["IntercomSync", "IntercomSimulator", "SyntheticData"]
        ),
        .testTarget(name: "SyntheticDataTests", dependencies: ["SyntheticData"]),
        .testTarget(name: "IntercomSimulatorTests", dependencies: ["IntercomSimulator", "SyntheticData"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "IntercomSync", "IntercomSimulator", "SyntheticData",
                // Stub servers that misbehave as no simulator of Intercom should (StubServer).
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
