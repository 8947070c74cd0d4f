/// A chat-phase record (PROTOCOL.md §5.4): one type byte, then the body. Encoding and decoding
/// work on caller-owned buffers and allocate nothing.
public enum ChatRecordType: UInt8, Sendable {
    case text = 0x01
    case hangUp = 0x02
    case keepAlive = 0x03

    /// Written out because the synthesised one allocates in debug builds, and decoding a record
    /// must allocate nothing, in every build the tests run.
    public init?(rawValue: UInt8) {
        switch rawValue {
        case 0x01: self = .text
        case 0x02: self = .hangUp
        case 0x03: self = .keepAlive
        default: return nil
        }
    }
}

public enum ChatRecordError: Error, Equatable, Sendable {
    case empty
    case unknownType(UInt8)
    case invalidUTF8
    case lineBreakInText
    case unexpectedBody(ChatRecordType)
    case tooLong(Int)
}

public enum ChatRecord {
    /// The largest text body: one transport plaintext minus the type byte.
    public static let maximumText = 65519 - 1

    /// Writes type and body into `output`; returns the record length.
    public static func encode(_ type: ChatRecordType, body: UnsafeRawBufferPointer,
                              into output: UnsafeMutableRawBufferPointer) throws(ChatRecordError) -> Int {
        guard body.count <= maximumText, output.count >= body.count + 1 else { throw .tooLong(body.count) }
        if type != .text, body.count > 0 { throw .unexpectedBody(type) }
        output[0] = type.rawValue
        if body.count > 0 { UnsafeMutableRawBufferPointer(rebasing: output[1...]).copyMemory(from: body) }
        return body.count + 1
    }

    /// Validates a record and returns its type and body (a view into `record`).
    /// TEXT must be UTF-8 with no line break; HANGUP and KEEPALIVE must have no body.
    public static func decode(_ record: UnsafeRawBufferPointer) throws(ChatRecordError) -> (ChatRecordType, UnsafeRawBufferPointer) {
        // `record.first` would allocate in debug builds (an unspecialised generic path).
        guard record.count > 0 else { throw .empty }
        guard let type = ChatRecordType(rawValue: record[0]) else { throw .unknownType(record[0]) }
        let body = UnsafeRawBufferPointer(rebasing: record[1...])
        switch type {
        case .text:
            guard isValidUTF8(body) else { throw .invalidUTF8 }
            if body.contains(0x0A) || body.contains(0x0D) { throw .lineBreakInText }
        case .hangUp, .keepAlive:
            guard body.isEmpty else { throw .unexpectedBody(type) }
        }
        return (type, body)
    }
}
