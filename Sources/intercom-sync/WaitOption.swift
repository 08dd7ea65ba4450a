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
        guard seconds >= 0 else { throw ValidationError("--wait must be 0 or more seconds, not \(seconds)") }
    }
}
