import ArgumentParser

struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Query, read, create, update, tag, annotate and import the contacts in the mirror.",
        subcommands: [
            ContactsQueryCommand.self, ContactsGetCommand.self, ContactsCreateCommand.self, ContactsImportCommand.self,
            ContactsUpdateCommand.self, ContactsTagCommand.self, ContactsUntagCommand.self, ContactsNoteCommand.self,
            ContactsArchiveCommand.self, ContactsUnarchiveCommand.self, ContactsDeleteCommand.self,
        ]
    )
}
