import SecureChatCrypto
import Synchronization

/// The DH done by the task that runs `countingDiffieHellman`: a task local, so tests that count
/// in parallel do not see each other's.
final class DiffieHellmanCount: Sendable {
    @TaskLocal static var current: DiffieHellmanCount?
    let count = Atomic<Int>(0)
}

/// `body`'s result and the X25519 operations `CountingBackend` did in it.
func countingDiffieHellman<T>(_ body: () throws -> T) rethrows -> (T, Int) {
    let counter = DiffieHellmanCount()
    let result = try DiffieHellmanCount.$current.withValue(counter) { try body() }
    return (result, counter.count.load(ordering: .relaxed))
}

/// `Base` with its X25519 calls counted inside `countingDiffieHellman`: which DH a handshake
/// does itself, and which it took ready-made.
enum CountingBackend<Base: CryptoBackend>: CryptoBackend {
    typealias AEAD = Base.AEAD
    typealias PrivateKey = Base.PrivateKey
    typealias PeerKey = Base.PeerKey
    static var name: String { Base.name }
    static var libraryDescription: String { Base.libraryDescription }

    static func importPrivateKey(_ scalar: UnsafeRawBufferPointer, publicKey: UnsafeMutableRawBufferPointer) throws -> PrivateKey {
        try Base.importPrivateKey(scalar, publicKey: publicKey)
    }

    static func generatePrivateKey(scalar: UnsafeMutableRawBufferPointer?, publicKey: UnsafeMutableRawBufferPointer) throws -> PrivateKey {
        try Base.generatePrivateKey(scalar: scalar, publicKey: publicKey)
    }

    static func importPeerKey(_ point: UnsafeRawBufferPointer) throws -> PeerKey { try Base.importPeerKey(point) }

    static func x25519(_ key: PrivateKey, peer: PeerKey, into output: UnsafeMutableRawBufferPointer) throws {
        DiffieHellmanCount.current?.count.add(1, ordering: .relaxed)
        try Base.x25519(key, peer: peer, into: output)
    }

    static func sha256(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try Base.sha256(first, second, into: output)
    }

    static func scrypt(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer, parameters: ScryptParameters,
                       into output: UnsafeMutableRawBufferPointer) throws {
        try Base.scrypt(password: password, salt: salt, parameters: parameters, into: output)
    }

    static func randomBytes(into output: UnsafeMutableRawBufferPointer) throws { try Base.randomBytes(into: output) }
}
