import Foundation

/// What a check of a mirror file found, and what a repair did: the schema against the one this
/// version builds, SQLite's own integrity check and the full-text index against the contacts,
/// the contacts whose stored data cannot be read, and files other users can read
/// (``IntercomMirror/check(at:repairing:configuration:)``).
public struct MirrorCheck: Sendable, Equatable {
    /// A contact whose stored columns or body cannot be read.
    public struct DamagedContact: Sendable, Equatable {
        public var id: String
        /// Its state in the mirror (`synced`, `pending`…).
        public var state: String
        /// What cannot be read.
        public var problem: String
    }

    /// One of the mirror's files (the mirror, its `-wal`, its `-shm`) and its permission bits.
    public struct FileMode: Sendable, Equatable {
        public var path: String
        public var mode: UInt16
    }

    /// The schema damage found before any repair (a table, index or trigger missing or altered).
    public var damageFound: String?
    /// What a repair rebuilt of it.
    public var rebuilt: [String] = []
    /// The schema damage left after the repair (or found, without one).
    public var damage: String?
    /// Whether what is left can be rebuilt from the contacts (the lost tables held no data).
    public var damageIsRepairable = true
    /// SQLite's findings: its integrity check, and the full-text index against the contacts.
    public var integrityProblems: [String] = []
    /// Whether the full-text index was compared (not on a mirror opened read-only, nor with a
    /// damaged schema).
    public var fullTextChecked = false
    /// The mirror could only be opened read-only: nothing was repaired.
    public var isReadOnly = false
    /// The files other users can read, after any repair.
    public var readableByOthers: [FileMode] = []
    /// The files a repair made its owner's alone (0600).
    public var madePrivate: [String] = []
    /// The contacts still damaged after any repair.
    public var damagedContacts: [DamagedContact] = []
    /// The damaged contacts a repair marked for the next full pull to fetch again.
    public var markedForRefetch: [DamagedContact] = []

    /// Nothing wrong is left.
    public var isSound: Bool {
        damage == nil && integrityProblems.isEmpty && readableByOthers.isEmpty && damagedContacts.isEmpty
    }
}

extension IntercomMirror {
    /// Checks the mirror file at `path`, and with `repairing` repairs what can be derived: the
    /// indexes, triggers and full-text index are rebuilt from the contacts, the files are made
    /// 0600, and damaged contacts are marked for the next full pull to fetch again. The contacts
    /// and the outbox are never touched.
    ///
    /// A mirror another process is writing (a sync or an import, whose indexes may be unfinished
    /// until it ends, or which is creating the file) is not opened: that throws ``SyncError``
    /// (``SyncError/Kind-swift.struct/busy``). A file this user may not write is checked
    /// read-only; a repair then fails with ``MirrorError``. Opening it may finish a stopped load
    /// or upgrade it, which `configuration`'s hooks report.
    public static func check(
        at path: String, repairing: Bool = false, configuration: Configuration = Configuration()
    ) async throws -> MirrorCheck {
        try await WorkExecutor.shared.run { try checkNow(at: path, repairing: repairing, configuration) }
    }

    private static func checkNow(at path: String, repairing: Bool, _ configuration: Configuration) throws -> MirrorCheck {
        let busy = { (holder: String) in
            SyncError(
                .busy,
                "\(holder) is writing the mirror \(path), and its indexes may be unfinished until it ends: check the "
                    + "mirror once it has")
        }
        if let holder = MirrorLock.holder(ofMirrorAt: path) { throw busy(holder) }
        let store: ContactMirror
        do {
            store = try ContactMirror.open(
                at: path, mode: .existing, checkingSchema: false, onFinishingLoad: { configuration.onFinishingLoad?() },
                onUpgrade: { done, total in configuration.onUpgrade?(done, total) })
        } catch let error as MirrorError where error.kind == .readOnly && !repairing {
            // Checking reads; only the full-text comparison needs write access, and is skipped.
            store = try ContactMirror.open(at: path, mode: .readOnly, checkingSchema: false)
        }
        defer { try? store.close() }
        // Looked at again now that it is open; a repair writes, so it takes the lock itself.
        let lock: MirrorLock?
        if repairing {
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
        var check = MirrorCheck(isReadOnly: store.isReadOnly)
        let found = try store.schemaDamage()
        check.damageFound = found?.description
        if repairing, found != nil { check.rebuilt = try store.repairSchema() }
        let damage = try store.schemaDamage()
        check.damage = damage?.description
        check.damageIsRepairable = damage?.isRepairable ?? true
        check.fullTextChecked = !store.isReadOnly && damage == nil
        // A page SQLite cannot read fails the checks' own reads: that is the finding.
        do {
            check.integrityProblems = damage == nil ? try store.integrityProblems() : []
        } catch let error as MirrorError where error.kind == .corrupt {
            check.integrityProblems = ["the file is damaged: \(error.detail)"]
        }
        var exposed = ContactMirror.looseFiles(at: path)
        if repairing {
            for file in exposed where chmod(file.path, 0o600) == 0 { check.madePrivate.append(file.path) }
            exposed = ContactMirror.looseFiles(at: path)
        }
        check.readableByOthers = exposed.map { MirrorCheck.FileMode(path: $0.path, mode: UInt16($0.mode)) }
        // Rows whose data cannot be read (a flipped byte, a write by another tool).
        var damagedContacts: [ContactMirror.DamagedContact] = []
        if damage == nil, check.integrityProblems.isEmpty {
            do {
                damagedContacts = try store.damagedContacts()
            } catch let error as MirrorError where error.kind == .corrupt {
                check.integrityProblems = ["the file is damaged: \(error.detail)"]
            }
        }
        if repairing, !damagedContacts.isEmpty, !store.isReadOnly {
            check.markedForRefetch = try store.markDamagedForRefetch(damagedContacts).map(MirrorCheck.DamagedContact.init)
            damagedContacts = try store.damagedContacts()
        }
        check.damagedContacts = damagedContacts.map(MirrorCheck.DamagedContact.init)
        return check
    }
}

extension MirrorCheck.DamagedContact {
    init(_ contact: ContactMirror.DamagedContact) {
        self.init(id: contact.id, state: contact.state, problem: contact.what)
    }
}
