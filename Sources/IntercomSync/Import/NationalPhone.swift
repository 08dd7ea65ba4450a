/// Turns a national phone number, as CRM exports and spreadsheets write them (`(555) 123-4567`,
/// `020 7946 0958`), into the international form Intercom takes, for one country code.
///
/// Punctuation (spaces, dots, dashes, slashes, parentheses) is stripped; a leading trunk `0`
/// is dropped (Italy's numbers keep theirs, as they are dialled with it); for the countries of
/// the North American plan (`+1`), a leading trunk `1` on an 11-digit number is dropped too.
/// A number led by `00` is already international and only gets its `+`; one led by `+` is
/// left as it is.
/// Anything else (letters, an extension, too few digits) is left alone, for the phone check to
/// reject with its reason.
public struct NationalPhone: Sendable, Equatable {
    /// The country code's digits, without the `+`.
    public let countryCode: String

    /// `code` is `+1`, `1`, `+44`, …: one to three digits, with or without the `+`.
    public init?(_ code: String) {
        let digits = code.hasPrefix("+") ? code.dropFirst() : Substring(code)
        guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0"
        else { return nil }
        countryCode = String(digits)
    }

    /// The international form of `phone`, or nil when it is not a number this can rewrite (or
    /// is already written the way it would be).
    public func international(_ phone: String) -> String? {
        var digits = ""
        for character in phone {
            if character.isASCII && character.isNumber {
                digits.append(character)
            } else if !" .-/()\u{A0}".contains(character) && !(character == "+" && digits.isEmpty) {
                return nil
            }
        }
        if phone.hasPrefix("+") { return nil }  // Already international: the phone check judges it.
        let rewritten: String
        if digits.hasPrefix("00") {
            rewritten = "+" + digits.dropFirst(2)
        } else {
            var national = Substring(digits)
            if countryCode == "1", national.count == 11, national.first == "1" {
                national = national.dropFirst()
            } else if countryCode != "39", national.first == "0" {
                national = national.dropFirst()
            }
            guard !national.isEmpty else { return nil }
            rewritten = "+" + countryCode + national
        }
        return rewritten == phone ? nil : rewritten
    }
}
