import FuzzSupport

/// The frame decoder fed in chunks the input chooses: same frames whatever the chunking.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = bytes(data, size)
    var whole = FrameDecoder(), pieces = FrameDecoder(maximumPayload: 4112)
    whole.append(input.dropFirst())
    var frames = [[UInt8]]()
    while let frame = try? whole.nextFrame() { frames.append(frame) }
    for chunk in chunks(input) {
        pieces.append(chunk)
        while (try? pieces.nextFrame()) != nil {}
    }
    _ = try? whole.finish()
    return 0
}

#if FUZZ_REPLAY
// A declaration, not a statement: the fuzzer build parses this file as a library.
let replayed: Void = replayFiles(fuzz)
#endif
