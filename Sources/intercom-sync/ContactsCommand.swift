import ArgumentParser

struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Query and read the contacts in the mirror.",
        subcommands: [ContactsQueryCommand.self, ContactsGetCommand.self]
    )
}
