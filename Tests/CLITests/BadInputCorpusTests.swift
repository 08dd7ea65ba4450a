import Foundation
import Testing

/// Walks `Fixtures/bad-input/`: each file is a bad input and what must follow (its README
/// lists the fields). One test, so a new defect of this kind is one new file.
@Suite struct BadInputCorpusTests {
    struct Case: Decodable {
        var what: String
        var mirror: Int?
        var files: [String: String]?
        var links: [String: String]?
        var run: [String]
        var exit: Int32
        var stderr: [String]?
        var stdout_excludes: [String]?
        var unchanged: [String]?
        var contacts: Int?
        var devices: [String]?
        var absent: [String]?
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/bad-input")

    @Test func everyBadInputIsRefusedAndLosesNothing() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".json") }
            .sorted()
        #expect(names.count >= 10)
        for name in names {
            let file = Self.folder.appendingPathComponent(name)
            let trial = try JSONDecoder().decode(Case.self, from: Data(contentsOf: file))
            try check(trial, named: name)
        }
    }

    private func check(_ trial: Case, named name: String) throws {
        let workspace = try Workspace(contacts: 0)
        let dir = workspace.folder.path
        func path(_ relative: String) -> String { relative.hasPrefix("/") ? relative : dir + "/" + relative }
        if let count = trial.mirror {
            let made = try CLI.run(["generate", "--count", "\(count)", "--seed", "3", "--into-mirror", "--db", workspace.db])
            try #require(made.status == 0, "\(name): \(made.stderr)")
        }
        for (file, text) in trial.files ?? [:] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(file)))
        }
        for (link, target) in trial.links ?? [:] {
            try FileManager.default.createSymbolicLink(atPath: path(link), withDestinationPath: target)
        }
        let before = try (trial.unchanged ?? []).map { try Data(contentsOf: URL(fileURLWithPath: path($0))) }

        let result = try CLI.run(trial.run.map { $0.replacingOccurrences(of: "{dir}", with: dir) })

        let context = "\(name) (\(trial.what)): exit \(result.status), stderr \(result.stderr)"
        #expect(result.status == trial.exit, "\(context)")
        for text in trial.stderr ?? [] {
            #expect(result.stderr.contains(text), "\(context): stderr lacks \(text)")
        }
        for text in trial.stdout_excludes ?? [] {
            #expect(!result.stdout.contains(text), "\(context): stdout has \(text)")
        }
        for (file, bytes) in zip(trial.unchanged ?? [], before) {
            #expect(try Data(contentsOf: URL(fileURLWithPath: path(file))) == bytes, "\(context): \(file) changed")
        }
        for device in trial.devices ?? [] {
            var status = stat()
            #expect(stat(device, &status) == 0 && (status.st_mode & S_IFMT) == S_IFCHR, "\(context): \(device)")
        }
        for file in trial.absent ?? [] {
            #expect(!FileManager.default.fileExists(atPath: path(file)), "\(context): \(file) exists")
        }
        if let contacts = trial.contacts {
            let status = try CLI.run(["status", "--json", "--db", workspace.db])
            let document = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let counts = document?["contacts"] as? [String: Int]
            #expect(counts?["synced"] == contacts, "\(context): the mirror holds \(status.stdout) \(status.stderr)")
        }
    }
}
