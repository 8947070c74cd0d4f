@_exported import SecureChatCore
@_exported import SecureChatCrypto
import SecureChatOpenSSL

/// The backend the fuzz targets run on (the core is generic; one backend is enough to reach
/// every path behind decryption).
public typealias FuzzBackend = OpenSSLBackend

/// The input as bytes.
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Splits the input into chunks whose lengths come from the input itself (so the fuzzer
/// controls how a stream is cut).
public func chunks(_ input: [UInt8]) -> [[UInt8]] {
    var result = [[UInt8]](), index = 0
    while index < input.count {
        let length = Int(input[index]) % 64 + 1
        index += 1
        result.append(Array(input[index..<min(input.count, index + length)]))
        index += length
    }
    return result
}

public let t0 = Instant(nanoseconds: 1_000_000_000)
