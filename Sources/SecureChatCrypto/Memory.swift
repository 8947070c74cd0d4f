#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Overwrites `buffer` with zeros in a way the optimiser may not remove.
@inlinable
public func secureWipe(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    explicit_bzero(base, buffer.count)
}

/// Stack memory for a secret, zeroed when `body` returns or throws: no heap allocation.
@inlinable
public func withSecretScratch<R>(byteCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    try withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 16) { (scratch) in
        defer { secureWipe(scratch) }
        return try body(scratch)
    }
}

/// Compares two byte strings in time that depends only on their lengths, never on their contents.
public func constantTimeEquals(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<lhs.count {
        difference |= lhs[index] ^ rhs[index]
    }
    return difference == 0
}

public func constantTimeEquals<A: Collection<UInt8>, B: Collection<UInt8>>(_ lhs: A, _ rhs: B) -> Bool {
    let left = Array(lhs), right = Array(rhs)
    return left.withUnsafeBytes { l in right.withUnsafeBytes { r in constantTimeEquals(l, r) } }
}

/// True when every byte is zero, in constant time (used to refuse an all-zero X25519 result).
public func constantTimeIsZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var accumulated: UInt8 = 0
    for byte in bytes { accumulated |= byte }
    return accumulated == 0
}

/// Secret bytes on the heap, zeroed when the last reference goes. Never printed.
public final class SecretBytes: @unchecked Sendable {
    // @unchecked: the storage is written only during init (and by `withUnsafeMutableBytes`,
    // which callers use before sharing); afterwards it is read-only.
    private let storage: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        storage = .allocate(byteCount: Swift.max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
    }

    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count)
        if let base = bytes.baseAddress { storage.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
    }

    public convenience init<C: Collection<UInt8>>(_ bytes: C) {
        let array = Array(bytes)
        self.init(count: array.count)
        UnsafeMutableRawBufferPointer(rebasing: storage[..<array.count]).copyBytes(from: array)
    }

    public let count: Int

    deinit {
        secureWipe(storage)
        storage.deallocate()
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[..<count]))
    }

    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(rebasing: storage[..<count]))
    }

    /// A copy of the bytes, for tests and known-answer checks only.
    public var unsafeBytesCopy: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension SecretBytes: CustomStringConvertible {
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
}
