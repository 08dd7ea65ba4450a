import ArgumentParser

/// `--wait SECONDS`, for the commands that take the mirror's lock (sync, import, flush).
struct WaitOption: ParsableArguments {
    @Option(
        name: .customLong("wait"), parsing: .unconditional,
        help: ArgumentHelp(
            "Wait up to this many seconds for another sync, import or flush to finish, instead of exiting 5 at once.",
            valueName: "seconds"))
    var seconds: Double = 0

    func validate() throws {
        try SecondsFlag.check(seconds, "--wait")
    }
}

/// A number of seconds given to a flag: finite, not negative (or above 0 where 0 means
/// nothing), and at most a year. Every wait the tool does fits in a year, and a larger number
/// (or `inf`) would overflow the clocks that count it.
enum SecondsFlag {
    static let maximum: Double = 365 * 86_400

    /// The least a wait that must be above 0 may be: a millisecond, what the transport counts in
    /// (less would round to 0, which it reads as no limit at all).
    static let least: Double = 0.001

    static func check(_ value: Double, _ flag: String, aboveZero: Bool = false) throws {
        guard value.isFinite else { throw ValidationError("\(flag) must be a finite number of seconds, not \(value)") }
        guard aboveZero ? value >= least : value >= 0 else {
            throw ValidationError(
                "\(flag) must be \(aboveZero ? "at least \(least)" : "0 or more") seconds, not \(value)")
        }
        guard value <= maximum else {
            throw ValidationError("\(flag) must be at most \(Int(maximum)) seconds (a year), not \(value)")
        }
    }
}

extension Duration {
    /// The duration in seconds, as the tool's flags give times.
    var asSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, as the tool prints short times.
    var asMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

}
