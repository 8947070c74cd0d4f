#if canImport(Glibc)
import Glibc
#endif

/// A file problem, said in the system's words with the path. Never carries file contents.
public struct FileError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func system(_ what: String, _ path: String) -> FileError {
        FileError("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}

/// The little POSIX file handling securechat needs, with the durability rules the store relies on.
public enum Files {
    /// The whole file, or nil when it does not exist.
    public static func readIfPresent(_ path: String) throws(FileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
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
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw .system("create", temporary) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let error = FileError.system("write", temporary)
                close(descriptor)
                throw error
            }
            written += count
        }
        // O_CREAT's mode is masked by the umask and ignored for an existing file: set it exactly.
        guard fchmod(descriptor, mode) == 0, fsync(descriptor) == 0 else {
            let error = FileError.system("flush", temporary)
            close(descriptor)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .system("replace", path) }
        try syncDirectory(of: path)
    }

    /// Creates `path` if missing, with `mode`; an existing directory is left as it is.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(FileError) {
        if mkdir(path, mode) == 0 || errno == EEXIST {
            var status = stat()
            guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw FileError("\(path) exists and is not a directory")
            }
            return
        }
        throw .system("create directory", path)
    }

    /// The permission bits of `path`, nil if it does not exist.
    public static func permissions(_ path: String) -> mode_t? {
        var status = stat()
        return stat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
    }

    public static func remove(_ path: String) { unlink(path) }

    private static func syncDirectory(of path: String) throws(FileError) {
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

    public init(path: String, purpose: String) throws(FileError) {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system("open", path) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw FileError("\(purpose): another securechat process holds \(path)")
        }
    }

    deinit { close(descriptor) }
}
