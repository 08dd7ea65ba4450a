import IntercomSync

/// The command-line tool's words for what would fix an engine error: the engine says what
/// failed and which remedy applies (`ErrorRemedy`); this names the command or flag.
enum Advice {
    static func text(for remedy: ErrorRemedy) -> String {
        switch remedy {
        case .sync: "run `intercom-sync sync` first, or pass --db to pick another mirror"
        case .fullSync: "run a full pull first (`intercom-sync sync --full`)"
        case .repairSchema: "`intercom-sync doctor --repair` rebuilds it from the contacts"
        case .newMirror: "move the file aside and run `intercom-sync sync` for a new mirror"
        case .openWritable:
            "reading works (`status`, `contacts query`, `contacts get --offline`, `outbox list`, `doctor`); "
                + "this command writes, so it needs write access"
        case .upgrade: "upgrade intercom-sync to use it"
        case .allowDuplicateEmail:
            "stage it anyway with --allow-duplicate-email (Intercom will then adopt that contact instead of creating one)"
        case .createContact(let email):
            "run `intercom-sync sync`, or create it with `intercom-sync contacts create --email \(email)`"
        case .cascade: "pass --cascade to drop the waiting entries with it"
        case .waitForLock: "wait for it to finish, or pass --wait SECONDS"
        case .allowMassDelete:
            "if that many contacts really were deleted on Intercom, run the sync again with --allow-mass-delete"
        case .rebind:
            "use another mirror (--db) for another workspace, or rebind this one to the server "
                + "(`intercom-sync sync --rebind`, or `outbox flush --rebind`) if it really should mirror it now"
        case .checkBaseURL: "check --base-url"
        case .reconnect:
            "log in again (`intercom-sync auth login`) or give a valid token with --token or INTERCOM_ACCESS_TOKEN"
        case .connect: "log in (`intercom-sync auth login`) or give a token with --token or INTERCOM_ACCESS_TOKEN"
        case .mapColumns: "say which column holds what with --map COLUMN=FIELD"
        case .otherMirror: "pass --db to pick another mirror"
        case .repairContacts:
            "`intercom-sync doctor` lists the damaged contacts (or says the file itself is damaged, and what to do), "
                + "and `intercom-sync doctor --repair` marks them for `intercom-sync sync --full` to fetch again"
        case .tryLater: "nothing is lost: run the same command again later, and it goes on from where it stopped"
        case .checkMirror: "`intercom-sync doctor` checks it and says what can be saved"
        case .freeSpace: "free some space and run the same command again to go on"
        }
    }

    /// What the engine's errors say should be done about `error`, if anything.
    static func remedy(of error: any Error) -> ErrorRemedy? {
        switch error {
        case let error as MirrorError: error.remedy
        case let error as SyncError: error.remedy
        case let error as OutboxError: error.remedy
        case let error as ImportError: error.remedy
        case let error as IntercomError: error.remedy
        default: nil
        }
    }

    /// `error` as a person reads it on this tool: what failed, then what to do about it.
    static func explained(_ error: any Error) -> String {
        guard let remedy = remedy(of: error) else { return "\(error)" }
        return "\(error); \(text(for: remedy))"
    }
}
