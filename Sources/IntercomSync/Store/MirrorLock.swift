import Foundation
import Synchronization

/// Lets one pull or flush at a time work on a mirror (the guarantee of one sync, import or flush at a time per mirror). Queries do not take it.
///
/// A file mirror is locked with `flock` on `<mirror>.lock`, which the system releases when the
/// process ends however it ends, so a killed sync never leaves a stale lock. The holder writes
/// what it is doing and its pid into the file, for the refusal message. An in-memory mirror is
/// locked within the process.
package final class MirrorLock: Sendable {
    private let descriptor: Int32?
    private let memoryKey: ObjectIdentifier?

    private static let heldInMemory = Mutex(Set<ObjectIdentifier>())

    private init(descriptor: Int32?, memoryKey: ObjectIdentifier?) {
        self.descriptor = descriptor
        self.memoryKey = memoryKey
    }

    /// Takes the lock, waiting up to `seconds` for its holder to let go (checking every tenth
    /// of a second, without holding a thread), then throws `SyncError.busy` as `acquire` does.
    package static func acquire(_ mirror: ContactMirror, purpose: String, waiting seconds: Double) async throws
        -> MirrorLock
    {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let lock = try attempt(mirror, purpose: purpose, until: deadline) { return lock }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// `acquire(_:purpose:waiting:)` for synchronous work, which may block its thread.
    package static func acquireBlocking(_ mirror: ContactMirror, purpose: String, waiting seconds: Double) throws
        -> MirrorLock
    {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let lock = try attempt(mirror, purpose: purpose, until: deadline) { return lock }
            usleep(100_000)
        }
    }

    /// The lock, or nil when it is held and `deadline` has not passed (then try again).
    private static func attempt(_ mirror: ContactMirror, purpose: String, until deadline: Date) throws -> MirrorLock? {
        do {
            return try acquire(mirror, purpose: purpose)
        } catch let error as SyncError where error.kind == .busy && Date() < deadline {
            return nil
        }
    }

    /// Takes the lock for `purpose` ("sync", "outbox flush"…), or throws `SyncError.busy`
    /// naming what holds it.
    package static func acquire(_ mirror: ContactMirror, purpose: String) throws -> MirrorLock {
        guard let path = mirror.path else {
            let key = ObjectIdentifier(mirror.writer.base as AnyObject)
            let inserted = heldInMemory.withLock { $0.insert(key).inserted }
            guard inserted else { throw SyncError.busy("another pull, flush or import is running on this mirror") }
            return MirrorLock(descriptor: nil, memoryKey: key)
        }
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SyncError.busy("cannot create the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard takeExclusive(descriptor) else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(descriptor)
            let who = holder.flatMap { $0.isEmpty ? nil : $0 } ?? "another intercom-sync process"
            throw SyncError.busy(
                "\(who) is using the mirror \(path) (queries still work)")
        }
        let started = UnixTime.iso8601(Int(Date().timeIntervalSince1970))
        let note = "\(purpose) (pid \(getpid()), started \(started))\n"
        _ = ftruncate(descriptor, 0)
        _ = note.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        return MirrorLock(descriptor: descriptor, memoryKey: nil)
    }

    /// `LOCK_EX | LOCK_NB`, tried a few times over some milliseconds: `holder(ofMirrorAt:)`
    /// holds the lock shared for a moment to look, which must not turn a free mirror busy.
    private static func takeExclusive(_ descriptor: Int32) -> Bool {
        for attempt in 0..<5 {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return true }
            guard errno == EWOULDBLOCK, attempt < 4 else { return false }
            usleep(2_000)
        }
        return false
    }

    /// What holds the lock of `mirror` now, as the holder describes itself ("intercom-sync sync
    /// (pid 12, started …)"), or nil when nothing does. The lock is not taken: a free lock is
    /// held shared for an instant and let go, and a held one only read.
    package static func holder(of mirror: ContactMirror) -> String? {
        guard let path = mirror.path else {
            let key = ObjectIdentifier(mirror.writer.base as AnyObject)
            return heldInMemory.withLock { $0.contains(key) } ? "another pull, flush or import in this process" : nil
        }
        return holder(ofMirrorAt: path)
    }

    /// `holder(of:)` for the mirror file at `path`, before it is opened: a mirror a first sync
    /// or import is creating is not one to open (its migrations may be running).
    package static func holder(ofMirrorAt path: String) -> String? {
        let lockPath = ContactMirror.filePath(of: path) + ".lock"
        let descriptor = open(lockPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }  // No lock file: nothing has ever held it.
        defer { close(descriptor) }
        if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return nil
        }
        guard errno == EWOULDBLOCK else { return nil }
        let note = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return note.flatMap { $0.isEmpty ? nil : $0 } ?? "another intercom-sync process"
    }

    /// The purpose a sync's lock is taken for, which `holder(of:)` reports first.
    package static let syncPurpose = "intercom-sync sync"

    deinit {
        if let descriptor {
            _ = ftruncate(descriptor, 0)
            flock(descriptor, LOCK_UN)
            close(descriptor)
        }
        if let memoryKey {
            _ = Self.heldInMemory.withLock { $0.remove(memoryKey) }
        }
    }
}
