#if canImport(Glibc)
import Glibc
#endif

/// A file problem, said in the system's words with the path. Never carries file contents.
public struct FileError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func system(_ what: String, _ path: String) -> FileError {
        FileError("cannot \(what) \(path): \(String(cString: strerror(errno)).lowercased())")
    }
}

/// The little POSIX file handling securechat needs, with the durability rules the store relies on.
public enum Files {
    /// The whole file, or nil when it does not exist. With `followingLinks` false a symbolic
    /// link is refused (the server's own files are never links: one would point elsewhere).
    public static func readIfPresent(_ path: String, followingLinks: Bool = true) throws(FileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | (followingLinks ? 0 : O_NOFOLLOW))
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw .system("read", path)
        }
        defer { close(descriptor) }
        var contents = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system("read", path)
            }
            if count == 0 { return contents }
            contents += chunk.prefix(count)
        }
    }

    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        guard let contents = try readIfPresent(path) else { throw FileError("cannot read \(path): no such file") }
        return contents
    }

    /// Replaces `path` with `bytes` so that a crash at any moment leaves either the old file or
    /// the new one, complete: write a temporary file, fsync it, rename it over, fsync the folder.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(FileError) {
        let temporary = path + ".tmp"
        // A left-over temporary file (a crash) goes; O_EXCL | O_NOFOLLOW then makes sure the
        // file written is a new one of ours, never a link planted to make us write elsewhere.
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw .system("create", temporary) }
        do throws(FileError) {
            try writeAll(bytes, to: descriptor, path: temporary)
            // O_CREAT's mode is masked by the umask: set it exactly.
            guard fchmod(descriptor, mode) == 0, fsync(descriptor) == 0 else { throw FileError.system("flush", temporary) }
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .system("replace", path) }
        try syncDirectory(of: path)
    }

    static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .system("write", path) }
            written += count
        }
    }

    /// Creates the private directory `path` if missing (mode 0700). An existing one must be a
    /// directory of this user that nobody else can write to: otherwise another user could
    /// replace what we keep there (keys, accounts), and it is refused, saying how to fix it.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(FileError) {
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw .system("create directory", path) }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw FileError("\(path) exists and is not a directory")
        }
        guard status.st_uid == geteuid() else {
            throw FileError("refusing to use \(path): it belongs to another user (uid \(status.st_uid)); use a directory of your own")
        }
        guard status.st_mode & 0o022 == 0 else {
            throw FileError("refusing to use \(path): other users can write to it (mode \(String(status.st_mode & 0o777, radix: 8))); run: chmod go-w \(path)")
        }
    }

    /// Whether `path` exists (as anything).
    public static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    /// The permission bits of `path`, nil if it does not exist.
    public static func permissions(_ path: String) -> mode_t? {
        var status = stat()
        return stat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
    }

    public static func remove(_ path: String) { unlink(path) }

    static func syncDirectory(of path: String) throws(FileError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let descriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system("open", directory) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system("flush", directory) }
    }
}

/// An exclusive lock on a file, held while the value lives: one process per data directory.
public final class DirectoryLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock; held by another process, fails at once (`waiting` false) or waits for it.
    public init(path: String, purpose: String, waiting: Bool = false) throws(FileError) {
        descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system("open", path) }
        while flock(descriptor, LOCK_EX | (waiting ? 0 : LOCK_NB)) != 0 {
            if waiting, errno == EINTR { continue }
            close(descriptor)
            throw FileError("\(purpose): another securechat process holds \(path)")
        }
    }

    deinit { close(descriptor) }
}

/// A file that only grows: each `append` is written and flushed to disk before it returns, so
/// what was appended survives a crash at any later moment. A torn last line (a crash during
/// the write) is the reader's to cut off (`truncate`).
final class AppendOnlyFile {
    let path: String
    private let descriptor: Int32

    init(path: String, mode: mode_t = 0o600) throws(FileError) {
        self.path = path
        let existed = Files.exists(path)
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw .system("open", path) }
        if !existed { try Files.syncDirectory(of: path) }
    }

    deinit { close(descriptor) }

    func append(_ bytes: [UInt8]) throws(FileError) {
        try Files.writeAll(bytes, to: descriptor, path: path)
        guard fdatasync(descriptor) == 0 else { throw .system("flush", path) }
    }

    /// Cuts the file to `length` bytes (a torn last line; or empty, after a compaction).
    func truncate(to length: Int) throws(FileError) {
        guard ftruncate(descriptor, off_t(length)) == 0, fdatasync(descriptor) == 0 else { throw .system("truncate", path) }
    }
}
