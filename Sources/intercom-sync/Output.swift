import Foundation

/// Writes to standard output and standard error, and tells whether a person is watching.
enum Output {
    static func line(_ text: String) {
        print(text)
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static var stderrIsTerminal: Bool {
        isatty(STDERR_FILENO) != 0
    }
}
