/// Standard base64 with padding (RFC 4648 §4), as keys are shown and sent (44 characters for 32 bytes).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0..<4 {
                output.append(position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 0x3F)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Strict decoding: padded, canonical (unused bits zero), nothing else; nil otherwise.
    public static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 4 == 0 else { return nil }
        var output = [UInt8]()
        output.reserveCapacity(characters.count / 4 * 3)
        for blockStart in stride(from: 0, to: characters.count, by: 4) {
            let block = characters[blockStart..<(blockStart + 4)]
            let isLast = blockStart + 4 == characters.count
            let padding = block.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            guard padding <= 2, padding == 0 || isLast else { return nil }
            var value: UInt32 = 0
            for character in block.prefix(4 - padding) {
                guard let digit = alphabet.firstIndex(of: character) else { return nil }
                value = value << 6 | UInt32(digit)
            }
            value <<= 6 * UInt32(padding)
            let produced = 3 - padding
            // Canonical: the bits that padding drops must be zero.
            guard value & ((1 << (8 * UInt32(padding))) - 1) == 0 else { return nil }
            for index in 0..<produced { output.append(UInt8(value >> (16 - 8 * UInt32(index)) & 0xFF)) }
        }
        return output
    }
}
