import FuzzSupport

/// Chat records, as decoded after decryption, and endpoints as candidates carry them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    _ = input.withUnsafeBytes { try? ChatRecord.decode($0) }
    let text = String(decoding: input, as: UTF8.self)
    if let endpoint = Endpoint(text) { precondition(Endpoint(endpoint.description) == endpoint) }
    if let address = IPAddress(text) { precondition(IPAddress(address.description) == address) }
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
