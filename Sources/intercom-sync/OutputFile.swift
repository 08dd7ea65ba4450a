import Foundation

/// A file this tool writes at a path the user names (`--errors`, `generate --out`), written so
/// that naming the wrong path can never cost data.
///
/// The target is checked before anything is written: it must be a new path or an existing
/// regular file, an existing file is replaced only with `--force`, and the files the command
/// works on (the mirror and its `-wal`, `-shm`, `-journal` and lock files, the file being read)
/// are refused even then, whether named by the same path, another path or a link. The content
/// goes to a temporary file beside the target, renamed over it once complete: until then the
/// old file is intact, and a command that dies leaves at most that temporary file. A new file
/// is readable by its owner alone.
final class OutputFile {
    let path: String
    private let temporaryPath: String
    private let handle: FileHandle
    private var finished = false
    /// Whether anything was written; a file that received nothing is not created.
    private(set) var isEmpty = true

    /// Checks `path` and opens its temporary file. `flag` names the option in errors.
    init(path: String, flag: String, force: Bool, protecting protected: [ProtectedFile]) throws {
        let target = try Self.checkedTarget(path, flag: flag, force: force, protecting: protected)
        let folder = (target as NSString).deletingLastPathComponent
        var template = Array(
            ((folder.isEmpty ? "." : folder) + "/." + (target as NSString).lastPathComponent + ".XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw CommandFailure("\(flag) \(path): cannot write in its folder: \(String(cString: strerror(errno)))")
        }
        // mkstemp makes the file 0600, which a new file keeps: what these files hold (rejected
        // rows of contacts, generated contacts) is personal data. A file replaced keeps the
        // mode its owner gave it.
        var existing = stat()
        if stat(target, &existing) == 0 { fchmod(descriptor, existing.st_mode & 0o7777) }
        self.path = target
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }

    deinit {
        if !finished { discard() }
    }

    func write(_ text: String) throws {
        isEmpty = false
        try handle.write(contentsOf: Data(text.utf8))
    }

    /// Moves the complete file into place (or, when nothing was written and `keepEmpty` is
    /// false, removes it: no file is made).
    func commit(keepEmpty: Bool = false) throws {
        guard !finished else { return }
        finished = true
        try? handle.synchronize()
        try? handle.close()
        if isEmpty && !keepEmpty {
            unlink(temporaryPath)
            return
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw CommandFailure("cannot write \(path): \(reason)")
        }
    }

    /// Drops what was written; the target is left as it was.
    func discard() {
        guard !finished else { return }
        finished = true
        try? handle.close()
        unlink(temporaryPath)
    }

    /// The path to write, after the checks (a link is followed to the file it names).
    static func checkedTarget(_ path: String, flag: String, force: Bool, protecting protected: [ProtectedFile]) throws
        -> String
    {
        guard !path.isEmpty else { throw CommandFailure("\(flag): give a file's path") }
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        for file in protected where sameFile(target, file.path) {
            throw CommandFailure("\(flag) \(path) is \(file.role) (\(file.path)): name another file")
        }
        var status = stat()
        if stat(target, &status) == 0 {
            guard (status.st_mode & S_IFMT) == S_IFREG else {
                throw CommandFailure("\(flag) \(path) is \(kind(status.st_mode)), not a regular file: give a new file's path")
            }
            guard force else { throw CommandFailure("\(flag) \(path) exists: pass --force to replace it") }
        } else {
            let folder = (target as NSString).deletingLastPathComponent
            var folderStatus = stat()
            guard stat(folder.isEmpty ? "." : folder, &folderStatus) == 0, (folderStatus.st_mode & S_IFMT) == S_IFDIR else {
                throw CommandFailure("\(flag) \(path): the folder \(folder) does not exist")
            }
        }
        return target
    }

    /// A file no output may replace, and what it is, for the error.
    struct ProtectedFile {
        var path: String
        var role: String
    }

    /// The files of the mirror at `mirrorPath`, which no output may replace.
    static func mirrorFiles(_ mirrorPath: String) -> [ProtectedFile] {
        [
            ProtectedFile(path: mirrorPath, role: "the mirror"),
            ProtectedFile(path: mirrorPath + "-wal", role: "the mirror's write-ahead log"),
            ProtectedFile(path: mirrorPath + "-shm", role: "the mirror's shared-memory index"),
            ProtectedFile(path: mirrorPath + "-journal", role: "the mirror's rollback journal"),
            ProtectedFile(path: mirrorPath + ".lock", role: "the mirror's lock file"),
        ]
    }

    /// The same file: the same inode when both exist, else the same resolved path.
    private static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        if stat(a, &first) == 0, stat(b, &second) == 0 {
            return first.st_dev == second.st_dev && first.st_ino == second.st_ino
        }
        return URL(fileURLWithPath: a).resolvingSymlinksInPath().standardizedFileURL.path
            == URL(fileURLWithPath: b).resolvingSymlinksInPath().standardizedFileURL.path
    }

    private static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a folder"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFIFO: "a pipe"
        case S_IFSOCK: "a socket"
        default: "a special file"
        }
    }
}
