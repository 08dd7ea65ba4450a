import IntercomSync

/// Text from contacts and servers made safe to show on a terminal.
///
/// Anyone who can edit a contact on Intercom (its end users included) chooses its name, and a
/// server chooses its error messages. Written raw, an ESC or OSC sequence in them could clear the
/// screen, retitle the window or forge lines, and a CR could overwrite what came before. Human
/// output writes such characters out as escapes instead; JSON, NDJSON and CSV stay exact.
public enum TerminalText {
    /// `text` with every character a terminal acts on written as an escape: `\n`, `\r` and `\t`
    /// for those, `\u001b` for the other C0 and C1 controls, DEL and the bidirectional
    /// overrides and isolates (which reorder what follows them). `keepingNewlines` leaves line
    /// feeds alone, for whole messages of several lines.
    public static func escaped(_ text: String, keepingNewlines: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, keepingNewlines: keepingNewlines) }) else {
            return text
        }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, keepingNewlines: keepingNewlines) else {
                result.append(scalar)
                continue
            }
            let escape: String
            switch scalar {
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                escape = "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            }
            result.append(contentsOf: escape.unicodeScalars)
        }
        return String(result)
    }

    static func needsEscape(_ scalar: Unicode.Scalar, keepingNewlines: Bool) -> Bool {
        switch scalar.value {
        case 0x0A: !keepingNewlines
        // C0 and C1 controls; the marks, embeddings, overrides and isolates that reorder text
        // (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069); the line and paragraph
        // separators, which some terminals break lines at.
        case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E...0x200F, 0x2028...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
