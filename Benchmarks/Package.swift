// swift-tools-version:6.1
import PackageDescription

// The developers' benchmarks (ordo-one/benchmark): seal and open for each backend × cipher ×
// size, X25519, the Noise IK handshake and the chat record path, with allocation budgets.
// A package of its own so that the main package never links the malloc interposer.
// Run: cd Benchmarks && swift package benchmark   (scripts/bench-crypto.sh compares with C)
let package = Package(
    name: "securechat-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "securechat", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Crypto",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SecureChatBench", package: "securechat"),
                .product(name: "SecureChatBackends", package: "securechat"),
                .product(name: "SecureChatCrypto", package: "securechat"),
            ],
            path: "Benchmarks/Crypto",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
