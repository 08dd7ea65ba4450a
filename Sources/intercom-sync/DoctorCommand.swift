import ArgumentParser
import Foundation
import IntercomSync

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the mirror's schema and data, and rebuild what can be derived.",
        discussion: """
            Checks that every table, index and trigger is the one this version's migrations \
            build, that SQLite finds the file sound (integrity_check) and that the full-text \
            index agrees with the contacts. --repair rebuilds the indexes, the triggers and the \
            full-text index from the contacts; the contacts and the outbox are never touched. \
            A lost table that held data (contacts, outbox) cannot be rebuilt: the mirror must be \
            made anew with `sync`.

            It reads every contact's stored data too: a contact whose columns or body cannot be \
            read (a flipped byte on the disk) is listed, and --repair marks it for the next \
            `sync --full` to fetch again from Intercom.

            It also checks that the mirror's files (the mirror, its -wal and -shm) are readable \
            by their owner alone: they hold customers' personal data. --repair makes them 0600.

            Exit status: 0 the mirror is sound (or was repaired); 1 it is damaged or readable \
            by other users; 5 a sync, import or flush is writing it (run doctor once it ends).

            Examples:
              intercom-sync doctor
              intercom-sync doctor --repair --json
            """
    )

    @OptionGroup var mirror: MirrorOptions

    @Flag(
        help: "Rebuild the indexes, triggers and full-text index that are missing or altered; make the files 0600.")
    var repair = false

    @Flag(help: "Print the findings as one JSON object.")
    var json = false

    func run() async throws {
        let check: MirrorCheck
        do {
            check = try await IntercomMirror.check(
                at: mirror.resolvedPath, repairing: repair, configuration: mirror.configurationReportingOpens())
        } catch let error as MirrorError where error.kind == .missingDirectory && mirror.path == nil {
            throw MirrorOptions.noMirrorYet(mirror.resolvedPath)
        }
        let found = check.damageFound
        let rebuilt = check.rebuilt
        let damage = check.damage
        let problems = check.integrityProblems
        let exposed = check.readableByOthers
        let madePrivate = check.madePrivate
        let damagedContacts = check.damagedContacts
        let markedForRefetch = check.markedForRefetch
        let sound = check.isSound
        if json {
            Output.data(
                JSONValue.object([
                    "sound": .bool(sound), "found": found.map(JSONValue.string) ?? .null,
                    "rebuilt": .array(rebuilt.map(JSONValue.string)),
                    "damage": damage.map(JSONValue.string) ?? .null,
                    "integrity_problems": .array(problems.map(JSONValue.string)),
                    "full_text_checked": .bool(check.fullTextChecked),
                    "readable_by_others": .array(
                        exposed.map {
                            .object(["path": .string($0.path), "mode": .string(String($0.mode, radix: 8))])
                        }),
                    "made_private": .array(madePrivate.map(JSONValue.string)),
                    "damaged_contacts": .array(
                        damagedContacts.map {
                            .object(["id": .string($0.id), "state": .string($0.state), "problem": .string($0.problem)])
                        }),
                    "marked_for_refetch": .array(markedForRefetch.map { .string($0.id) }),
                ]).jsonText)
        } else {
            if let found { Output.line("schema: \(found)") }
            for object in rebuilt { Output.line("rebuilt \(object)") }
            for problem in problems { Output.line("integrity: \(problem)") }
            for contact in markedForRefetch {
                Output.line("contact \(contact.id): \(contact.problem); marked for the next full pull to fetch again")
            }
            for contact in damagedContacts {
                Output.line("contact \(contact.id) (\(contact.state)) is damaged: \(contact.problem)")
            }
            for file in madePrivate { Output.line("made \(file) readable by its owner alone (0600)") }
            for file in exposed {
                Output.line(
                    "permissions: \(file.path) can be read by other users (mode \(String(file.mode, radix: 8))), "
                        + "though it holds customers' personal data")
            }
            if check.isReadOnly, damage == nil {
                Output.note("the mirror is read-only here, so its full-text index was not compared with the contacts")
            }
            if sound {
                if !markedForRefetch.isEmpty {
                    Output.line(
                        "the mirror is readable again: run `intercom-sync sync --full` to fetch the "
                            + "\(markedForRefetch.count) marked contacts again")
                } else {
                    Output.line(
                        found == nil
                            ? "the mirror is sound" : "the mirror is sound again; its contacts and outbox are as they were")
                }
            } else if damage != nil, !repair {
                Output.line(
                    check.damageIsRepairable ? "run `intercom-sync doctor --repair` to rebuild it" : "it cannot be repaired")
            } else if !problems.isEmpty {
                Output.line(
                    "SQLite finds the file damaged: keep the outbox (`intercom-sync outbox list --json > outbox.json`), "
                        + "move the file aside and run `intercom-sync sync` for a new mirror")
            } else if !damagedContacts.isEmpty {
                Output.line(
                    repair
                        ? "the damaged contacts left are pending creates: their fields are in the outbox "
                            + "(`intercom-sync outbox list`); drop and stage them again"
                        : "run `intercom-sync doctor --repair` to mark them for `intercom-sync sync --full` to fetch again")
            } else if !exposed.isEmpty {
                Output.line(
                    repair
                        ? "the files could not be made private: run `chmod 600` on them as their owner"
                        : "run `intercom-sync doctor --repair` to make the files readable by their owner alone")
            }
        }
        if !sound { throw ExitCode(1) }
    }
}
