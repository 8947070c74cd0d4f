import Glibc
import SecureChatCrypto
import SecureChatNetwork
import Testing

@Suite("Files, keys and config")
struct FileTests {
    @Test("a key file is created 0600, read back the same, and refused when others can read it")
    func keyFile() throws {
        let path = makeTemporaryDirectory() + "/id.key"
        let (created, isNew) = try KeyFile.loadOrCreate(path, backend: TestBackend.self)
        #expect(isNew)
        #expect(Files.permissions(path) == 0o600)
        let (loaded, isNewAgain) = try KeyFile.loadOrCreate(path, backend: TestBackend.self)
        #expect(!isNewAgain && loaded.publicKey == created.publicKey)
        chmod(path, 0o644)
        #expect { try KeyFile.loadOrCreate(path, backend: TestBackend.self) } throws: { "\($0)".contains("chmod 600") }
        chmod(path, 0o600)
        try Files.writeAtomically(Array("not a key\n".utf8), to: path, mode: 0o600)
        #expect { try KeyFile.loadOrCreate(path, backend: TestBackend.self) } throws: { "\($0)".contains("does not hold a securechat key") }
    }

    @Test("atomic writes replace the file whole and set its mode")
    func atomicWrite() throws {
        let path = makeTemporaryDirectory() + "/file"
        try Files.writeAtomically([1, 2, 3], to: path, mode: 0o600)
        try Files.writeAtomically([4, 5], to: path, mode: 0o640)
        #expect(try Files.read(path) == [4, 5])
        #expect(Files.permissions(path) == 0o640)
        #expect(Files.permissions(path + ".tmp") == nil, "no temporary file is left")
    }

    @Test("a second process cannot take a held data directory")
    func directoryLock() throws {
        let path = makeTemporaryDirectory() + "/lock"
        let held = try DirectoryLock(path: path, purpose: "test")
        #expect(throws: FileError("test: another securechat process holds \(path)")) { try DirectoryLock(path: path, purpose: "test") }
        withExtendedLifetime(held) {}
    }

    @Test("config files: values, comments, quotes, and errors with file, line and key")
    func configFile() throws {
        var config = try ConfigFile(path: "c.conf", text: """
            # comment
            listen = 0.0.0.0:7400   # trailing comment
            name = "quoted # not a comment"
            idle-timeout = 30m
            signup = no
            threads = 4
            """)
        #expect(try config.string("listen") == "0.0.0.0:7400")
        #expect(try config.string("name") == "quoted # not a comment")
        #expect(try config.duration("idle-timeout") == .seconds(1800))
        #expect(try config.boolean("signup") == false)
        #expect(throws: FileError("c.conf:6: unknown key threads")) { try config.requireAllUsed() }
        #expect(try config.integer("threads", in: 0...8) == 4)
        try config.requireAllUsed()

        #expect(throws: FileError("c.conf:2: expected key = value")) { try ConfigFile(path: "c.conf", text: "\njust words") }
        #expect(throws: FileError("c.conf:2: a is set twice")) { try ConfigFile(path: "c.conf", text: "a = 1\na = 2") }
        var bad = try ConfigFile(path: "c.conf", text: "n = 99")
        #expect(throws: FileError("c.conf:1: n must be a whole number from 0 to 8, not \"99\"")) { try bad.integer("n", in: 0...8) }
        #expect(ConfigFile.parseDuration("500ms") == .milliseconds(500))
        #expect(ConfigFile.parseDuration("2h") == .seconds(7200))
        #expect(ConfigFile.parseDuration("10") == nil && ConfigFile.parseDuration("0s") == nil && ConfigFile.parseDuration("1d") == nil)
    }

    @Test("HOST:PORT, IPv4, IPv6 and names")
    func hostPort() {
        #expect(HostPort("127.0.0.1:7400") == HostPort(host: "127.0.0.1", port: 7400))
        #expect(HostPort("[::1]:80") == HostPort(host: "::1", port: 80))
        #expect(HostPort("example.org:1")?.description == "example.org:1")
        #expect(HostPort(host: "::1", port: 80).description == "[::1]:80")
        for bad in ["7400", ":7400", "host:", "host:70000", "host:-1", "a b:1"] { #expect(HostPort(bad) == nil, "\(bad)") }
    }
}
