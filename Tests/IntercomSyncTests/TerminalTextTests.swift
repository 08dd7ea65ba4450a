import CLISupport
import Testing

/// Text from Intercom printed for a person: whatever a terminal would act on is shown escaped.
@Suite struct TerminalTextTests {

    @Test func terminalTextEscapesWhatATerminalWouldActOn() {
        #expect(TerminalText.escaped("Ana López") == "Ana López")
        #expect(TerminalText.escaped("a\u{1b}[2Jb\u{07}c\rd\te\nf") == #"a\u001b[2Jb\u0007c\rd\te\nf"#)
        #expect(TerminalText.escaped("line\nnext", keepingNewlines: true) == "line\nnext")
        #expect(TerminalText.escaped("\u{9b}31m\u{7f}") == #"\u009b31m\u007f"#)
        #expect(TerminalText.escaped("abc\u{202e}txt.exe\u{2066}") == #"abc\u202etxt.exe\u2066"#)
        #expect(TerminalText.escaped("a\u{200f}b\u{61c}c\u{2028}d") == #"a\u200fb\u061cc\u2028d"#)
        // Escaping twice changes nothing more.
        let once = TerminalText.escaped("x\u{1b}y")
        #expect(TerminalText.escaped(once) == once)
    }
}
