import FuzzSupport

/// Control-message JSON: parse, decode, and what decodes round-trips through the encoder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    _ = try? JSONValue.parse(input)
    if let message = try? ControlMessage.decode(input) {
        let again = try? ControlMessage.decode(message.encoded())
        precondition(again == message, "a decoded message must survive encoding")
    }
    _ = VisibleText.make(String(decoding: input, as: UTF8.self), .terminal)
    _ = VisibleText.make(String(decoding: input, as: UTF8.self), .log)
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
