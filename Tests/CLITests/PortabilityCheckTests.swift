import Foundation
import Testing

/// `scripts/check-portability`, which stands in for an Apple-platform build this machine cannot
/// run: it must refuse a Linux-only call outside a guard, accept the same call guarded, and pass
/// the engine's own sources.
@Suite struct PortabilityCheckTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    struct Outcome {
        var status: Int32
        var output: String
    }

    static func check(_ folder: String) throws -> Outcome {
        try script("check-portability", [folder])
    }

    /// Runs `scripts/NAME` with `arguments` from the repository's root.
    static func script(_ name: String, _ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/\(name)").path] + arguments
        process.currentDirectoryURL = root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }

    /// A folder holding `source` as `Planted.swift`.
    static func plant(_ source: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("portability-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try source.write(to: folder.appendingPathComponent("Planted.swift"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test func anUnguardedGlibcUseFails() throws {
        let folder = try Self.plant(
            """
            import Foundation
            import Glibc

            func idle() {
                // SCHED_IDLE in a comment is not a use.
                let text = "SCHED_IDLE in a string is not one either"
                var parameters = sched_param()
                _ = pthread_setschedparam(pthread_self(), SCHED_IDLE, &parameters)
                let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                _ = (text, socket)
            }
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try Self.check(folder.path)
        #expect(outcome.status == 1)
        let lines = outcome.output.split(separator: "\n").filter { $0.contains("Planted.swift:") }
        #expect(lines.count == 4, "\(outcome.output)")
        #expect(outcome.output.contains("Planted.swift:2: Glibc unguarded"))
        #expect(outcome.output.contains("Planted.swift:8: pthread_setschedparam unguarded"))
        #expect(outcome.output.contains("Planted.swift:8: SCHED_IDLE unguarded"))
        #expect(outcome.output.contains("Planted.swift:9: SOCK_STREAM.rawValue unguarded"))
    }

    @Test func theSameUsesGuardedPass() throws {
        let folder = try Self.plant(
            """
            #if canImport(Glibc)
                import Glibc
            #elseif canImport(Darwin)
                import Darwin
            #endif

            func idle(_ thread: Thread) {
                #if os(Linux)
                    var parameters = sched_param()
                    _ = pthread_setschedparam(pthread_self(), SCHED_IDLE, &parameters)
                #else
                    thread.qualityOfService = .background
                #endif
            }
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try Self.check(folder.path)
        #expect(outcome.status == 0, "\(outcome.output)")
    }

    @Test func theElseBranchOfAGuardIsNotGuarded() throws {
        let folder = try Self.plant(
            """
            #if os(Linux)
                let policy: Int32 = 5
            #else
                let stream = Int32(SOCK_STREAM.rawValue)
            #endif
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try Self.check(folder.path)
        #expect(outcome.status == 1)
        #expect(outcome.output.contains("Planted.swift:4: SOCK_STREAM.rawValue unguarded"))
    }

    @Test func theEngineSourcesPass() throws {
        let outcome = try Self.check("Sources/IntercomSync")
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.output.contains("no unguarded Linux-only symbol"))
    }
}
