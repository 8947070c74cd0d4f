import Glibc

/// A failure the user can act on: ArgumentParser prints it as one line, "Error: …", exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads a whole file; the error says which file and why, in the system's words.
func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var contents = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        contents += chunk.prefix(count)
        if count < chunk.count {
            guard ferror(file) == 0 else { throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))") }
            return contents
        }
    }
}
