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

#if FUZZ_REPLAY
import Glibc

/// An uninstrumented replay (`scripts/fuzz.sh --replay-plain`, built without the fuzzer
/// runtime; each target's `main.swift` calls this then): each input file named on the command
/// line is run three times and its fastest run printed in microseconds, so the cost of an input
/// is our code's, not the coverage instrumentation's or AddressSanitizer's (libFuzzer's own
/// replay gives whole milliseconds).
public func replayFiles(_ target: (UnsafePointer<UInt8>?, Int) -> Int32) {
    for path in CommandLine.arguments.dropFirst() {
        guard let file = fopen(path, "rb") else { continue }
        var input = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = fread(&chunk, 1, chunk.count, file), count > 0 { input += chunk[..<count] }
        fclose(file)
        var fastest = Duration.seconds(1_000)
        for _ in 0..<3 {
            let started = ContinuousClock.now
            _ = input.withUnsafeBufferPointer { target($0.baseAddress, $0.count) }
            fastest = min(fastest, ContinuousClock.now - started)
        }
        let (seconds, attoseconds) = fastest.components
        print("Replayed \(path) in \(seconds * 1_000_000 + attoseconds / 1_000_000_000_000) us")
    }
}
#endif
