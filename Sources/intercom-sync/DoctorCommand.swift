import ArgumentParser
import Foundation
import IntercomSync

struct DoctorCommand: ParsableCommand {
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

    func run() throws {
        // A sync or an import at work may have deferred its indexes to its end, or be creating
        // the mirror: until it ends the mirror looks damaged (or empty) though nothing is.
        let busy = { (holder: String) in
            SyncError(
                .busy,
                "\(holder) is writing the mirror \(mirror.resolvedPath), and its indexes may be unfinished until it "
                    + "ends: run doctor once it has")
        }
        if let holder = MirrorLock.holder(ofMirrorAt: mirror.resolvedPath) { throw busy(holder) }
        let store: ContactMirror
        do {
            store = try mirror.open(.existing, checkingSchema: false)
        } catch let error as MirrorError where error.kind == .readOnly && !repair {
            // Checking reads; only the full-text comparison needs write access, and is skipped.
            store = try mirror.open(.readOnly, checkingSchema: false)
        }
        // Looked at again now that it is open; a repair writes, so it takes the lock itself.
        let lock: MirrorLock?
        if repair {
            do {
                lock = try MirrorLock.acquire(store, purpose: "intercom-sync doctor --repair")
            } catch let error as SyncError where error.kind == .busy {
                throw busy(MirrorLock.holder(of: store) ?? "another intercom-sync process")
            }
        } else {
            lock = nil
            if let holder = MirrorLock.holder(of: store) { throw busy(holder) }
        }
        defer { withExtendedLifetime(lock) {} }
        let found = try store.schemaDamage()
        var rebuilt: [String] = []
        if repair, found != nil { rebuilt = try store.repairSchema() }
        let damage = try store.schemaDamage()
        // A page SQLite cannot read fails the checks' own reads: that is the finding.
        var problems: [String] = []
        do {
            problems = damage == nil ? try store.integrityProblems() : []
        } catch let error as MirrorError where error.kind == .corrupt {
            problems = ["the file is damaged: \(error.detail)"]
        }
        var exposed = ContactMirror.looseFiles(at: mirror.resolvedPath)
        var madePrivate: [String] = []
        if repair {
            for file in exposed where chmod(file.path, 0o600) == 0 { madePrivate.append(file.path) }
            exposed = ContactMirror.looseFiles(at: mirror.resolvedPath)
        }
        // Rows whose data cannot be read (a flipped byte, a write by another tool).
        var damagedContacts: [ContactMirror.DamagedContact] = []
        if damage == nil, problems.isEmpty {
            do {
                damagedContacts = try store.damagedContacts()
            } catch let error as MirrorError where error.kind == .corrupt {
                problems = ["the file is damaged: \(error.detail)"]
            }
        }
        var markedForRefetch: [ContactMirror.DamagedContact] = []
        if repair, !damagedContacts.isEmpty, !store.isReadOnly {
            markedForRefetch = try store.markDamagedForRefetch(damagedContacts)
            damagedContacts = try store.damagedContacts()
        }
        let sound = damage == nil && problems.isEmpty && exposed.isEmpty && damagedContacts.isEmpty
        if json {
            Output.data(
                JSONValue.object([
                    "sound": .bool(sound), "found": found.map { .string($0.description) } ?? .null,
                    "rebuilt": .array(rebuilt.map(JSONValue.string)),
                    "damage": damage.map { .string($0.description) } ?? .null,
                    "integrity_problems": .array(problems.map(JSONValue.string)),
                    "full_text_checked": .bool(!store.isReadOnly && damage == nil),
                    "readable_by_others": .array(
                        exposed.map {
                            .object(["path": .string($0.path), "mode": .string(String($0.mode, radix: 8))])
                        }),
                    "made_private": .array(madePrivate.map(JSONValue.string)),
                    "damaged_contacts": .array(
                        damagedContacts.map {
                            .object(["id": .string($0.id), "state": .string($0.state), "problem": .string($0.what)])
                        }),
                    "marked_for_refetch": .array(markedForRefetch.map { .string($0.id) }),
                ]).jsonText)
        } else {
            if let found { Output.line("schema: \(found)") }
            for object in rebuilt { Output.line("rebuilt \(object)") }
            for problem in problems { Output.line("integrity: \(problem)") }
            for contact in markedForRefetch {
                Output.line("contact \(contact.id): \(contact.what); marked for the next full pull to fetch again")
            }
            for contact in damagedContacts {
                Output.line("contact \(contact.id) (\(contact.state)) is damaged: \(contact.what)")
            }
            for file in madePrivate { Output.line("made \(file) readable by its owner alone (0600)") }
            for file in exposed {
                Output.line(
                    "permissions: \(file.path) can be read by other users (mode \(String(file.mode, radix: 8))), "
                        + "though it holds customers' personal data")
            }
            if store.isReadOnly, damage == nil {
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
            } else if let damage, !repair {
                Output.line(damage.isRepairable ? "run `intercom-sync doctor --repair` to rebuild it" : "it cannot be repaired")
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
