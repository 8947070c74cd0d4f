// swift-tools-version:6.1
import PackageDescription

// Layers, one direction of dependency:
//   securechat (CLI) → SecureChatNetwork (SwiftNIO) → SecureChatCore → SecureChatCrypto
//                    → SecureChatBackends ────────────────────────────→ SecureChatCrypto ← SecureChatOpenSSL / SecureChatGcrypt ← C shims
// See docs/ARCHITECTURE.md.
// Full cross-module optimisation in release builds: the per-message code is generic over the
// backend across modules (core → network), and without it each call goes through unspecialised
// generics (measured: 41k → see CHANGELOG lookups/s on the server benchmark).
// No implicit _StringProcessing: its regex engine and tables cost about 1.2 MB of the static
// binary, so a stray `contains("…")` on strings is a compile error here, not a silent megabyte.
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"]),
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

// For code off the hot paths (the command line, the self-test, the benchmark driver): the binary
// has a 24 MB budget.
let sizeOptimised = strictSwift + [.unsafeFlags(["-Osize"], .when(configuration: .release))]

/// The commit being built (with "+changes" for a dirty tree), or "unknown" outside a git checkout.
let buildCommit: String = {
    guard let git = Context.gitInformation else { return "unknown" }
    return String(git.currentCommit.prefix(12)) + (git.hasUncommittedChanges ? "+changes" : "")
}()

let package = Package(
    name: "securechat",
    products: [
        .executable(name: "securechat", targets: ["securechat"]),
        .library(name: "SecureChatCrypto", targets: ["SecureChatCrypto"]),
        .library(name: "SecureChatBackends", targets: ["SecureChatBackends"]),
        .library(name: "SecureChatOpenSSL", targets: ["SecureChatOpenSSL"]),
        .library(name: "SecureChatCore", targets: ["SecureChatCore"]),
        .library(name: "SecureChatNetwork", targets: ["SecureChatNetwork"]),
        .library(name: "SecureChatBench", targets: ["SecureChatBench"]),
    ],
    // ScaleOut: several `serve` nodes on one PostgreSQL (docs/DEPLOYING.md). Off by default: the
    // default binary does not link the database driver (and its TLS and crypto) and keeps its
    // size budget. `scripts/build-static.sh --scale-out` builds the larger one.
    traits: [
        .trait(name: "ScaleOut", description: "Several server nodes sharing accounts, the directory and signalling through PostgreSQL"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // libcrypto (apt: libssl-dev), imported as a system library.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // libgcrypt (apt: libgcrypt20-dev); a tiny C shim because gcry_control is variadic.
        .target(name: "CGcrypt",
                linkerSettings: [.linkedLibrary("gcrypt"), .linkedLibrary("gpg-error")]),

        // The crypto API: protocols and backend-independent code, no C import in its public API.
        .target(name: "SecureChatCrypto", swiftSettings: strictSwift),
        .target(name: "SecureChatOpenSSL",
                dependencies: ["SecureChatCrypto", "COpenSSL"], swiftSettings: strictSwift),
        .target(name: "SecureChatGcrypt",
                dependencies: ["SecureChatCrypto", "CGcrypt"], swiftSettings: strictSwift),
        // The protocol core: Noise, frames, messages and state machines. Imports the crypto API only.
        .target(name: "SecureChatCore", dependencies: ["SecureChatCrypto"], swiftSettings: strictSwift),
        // Sockets, files and timers: the server and the peer over SwiftNIO, driving the core's state machines.
        .target(name: "SecureChatNetwork",
                dependencies: [
                    "SecureChatCore", "SecureChatCrypto",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                swiftSettings: strictSwift),
        // The server's accounts, directory and signalling on PostgreSQL (trait ScaleOut; empty without it).
        .target(name: "SecureChatCluster",
                dependencies: [
                    "SecureChatNetwork", "SecureChatCore", "SecureChatCrypto",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "Logging", package: "swift-log"),
                    .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["ScaleOut"])),
                    .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["ScaleOut"])),
                ],
                swiftSettings: strictSwift),
        // The command line: options, --help, shell completions and the man page from one table. Pure, no I/O.
        .target(name: "SecureChatCommandLine", swiftSettings: sizeOptimised),
        // The peer's line editor: keys, widths, the line being typed. Pure, no I/O.
        .target(name: "SecureChatTerminal", swiftSettings: sizeOptimised),
        // What `securechat bench` and Benchmarks/ time: workloads over the core, their timing and report.
        // Optimised for speed, not size: the core's generic code it times is specialised into this
        // module and compiled with its flags, so -Osize here would time other code than the peer runs.
        .target(name: "SecureChatBench", dependencies: ["SecureChatCore", "SecureChatCrypto"], swiftSettings: strictSwift),
        // Names the backends, picks one at start, and checks them (selftest).
        .target(name: "SecureChatBackends",
                dependencies: ["SecureChatCrypto", "SecureChatOpenSSL", "SecureChatGcrypt"],
                swiftSettings: sizeOptimised),

        .executableTarget(name: "securechat",
                          dependencies: [
                              "SecureChatBackends",
                              "SecureChatCore",
                              "SecureChatNetwork",
                              .target(name: "SecureChatCluster", condition: .when(traits: ["ScaleOut"])),
                              "SecureChatBench",
                              "SecureChatTerminal",
                              "CBuildInfo",
                              "SecureChatCommandLine",
                              .product(name: "Logging", package: "swift-log"),
                          ],
                          swiftSettings: sizeOptimised),
        // The commit the binary was built from, for `securechat version` (from the manifest's git information).
        .target(name: "CBuildInfo", cSettings: [.define("SECURECHAT_COMMIT", to: "\"\(buildCommit)\"")]),

        // Developer tool: the load generator of scripts/bench-server.sh (not in the shipped binary).
        .executableTarget(name: "securechat-load",
                          dependencies: [
                              "SecureChatNetwork", "SecureChatCore", "SecureChatCrypto", "SecureChatBackends",
                              "SecureChatCommandLine",
                              .product(name: "NIOCore", package: "swift-nio"),
                              .product(name: "NIOPosix", package: "swift-nio"),
                          ],
                          swiftSettings: strictSwift),

        // Test-only: counts this thread's heap allocations, to hold the allocation budget.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(name: "SecureChatCoreTests",
                    dependencies: ["SecureChatCore", "SecureChatCrypto", "SecureChatBackends", "SecureChatBench", "CAllocationCounter"],
                    swiftSettings: strictSwift),
        .testTarget(name: "SecureChatNetworkTests",
                    dependencies: ["SecureChatNetwork", "SecureChatCore", "SecureChatCrypto", "SecureChatBackends",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strictSwift),
        .testTarget(name: "SecureChatTerminalTests", dependencies: ["SecureChatTerminal"], swiftSettings: strictSwift),
        .testTarget(name: "SecureChatCommandLineTests", dependencies: ["SecureChatCommandLine"], swiftSettings: strictSwift),
        .testTarget(name: "SecureChatCryptoTests",
                    dependencies: ["SecureChatCrypto", "SecureChatBackends"],
                    swiftSettings: strictSwift),
    ]
)
