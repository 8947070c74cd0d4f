import SecureChatCrypto

/// Everything that can go wrong in a Noise handshake or transport. No case carries key material.
public enum NoiseError: Error, Equatable, Sendable {
    /// A handshake or transport message failed to decrypt: tampered, replayed, reordered, wrong key.
    case decryptionFailed
    case messageTooShort
    /// Over the 65535-byte Noise limit, or over the caller's buffer.
    case messageTooLong
    case notMyTurn
    case handshakeAlreadyComplete
    case handshakeNotComplete
    /// A key the pattern needs was not given (e.g. the responder's static key for IK).
    case missingKey(String)
    /// This direction carries no messages (one-way patterns).
    case directionNotAllowed
    /// An ephemeral key was handed over when the handshake already had one (or had sent it).
    case ephemeralAlreadyChosen
    case nonceExhausted
    case unsupportedProtocol(String)
    case crypto(CryptoError)
}

@inline(__always)
func mapCrypto<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch CryptoError.authenticationFailed {
        throw NoiseError.decryptionFailed
    } catch let error as CryptoError {
        throw NoiseError.crypto(error)
    } catch let error as NoiseError {
        throw error
    } catch {
        // Backends throw only CryptoError; anything else is reported, never a crash.
        throw NoiseError.crypto(.backendFailure(operation: "unexpected error"))
    }
}
