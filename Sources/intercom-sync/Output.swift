import CLISupport
import Foundation
import IntercomSync

/// Writes to standard output and standard error, and tells whether a person is watching.
///
/// Two kinds of output: `data` (JSON, NDJSON, CSV) goes out exact, for scripts; everything
/// written for people (`line`, `note`, errors) has its control characters escaped
/// (`TerminalText`), since it carries contact fields and server messages that anyone could have
/// filled with terminal escape sequences.
enum Output {
    /// A line for people on stdout (tables, summaries).
    static func line(_ text: String) {
        print(TerminalText.escaped(text, keepingNewlines: true))
    }

    /// Machine-readable output on stdout, byte for byte.
    static func data(_ text: String) {
        print(text)
    }

    /// A line for people on stderr (notes, warnings, errors).
    static func note(_ text: String) {
        FileHandle.standardError.write(Data((TerminalText.escaped(text, keepingNewlines: true) + "\n").utf8))
    }

    static var stderrIsTerminal: Bool {
        isatty(STDERR_FILENO) != 0
    }
}
