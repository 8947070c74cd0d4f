// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets over the protocol core (issue 12), built with `--sanitize=fuzzer` by
// scripts/fuzz.sh. A package of its own, beside the main one (as Benchmarks/ is), so that the
// main build never needs the fuzzer runtime.
let fuzzTargets = ["FuzzFrames", "FuzzJSON", "FuzzRecords", "FuzzServerSession", "FuzzCallee", "FuzzSignalling"]

let package = Package(
    name: "securechat-fuzz",
    dependencies: [.package(name: "securechat", path: "..")],
    targets: [
        .target(name: "FuzzSupport",
                dependencies: [.product(name: "SecureChatCore", package: "securechat"),
                               .product(name: "SecureChatOpenSSL", package: "securechat")],
                swiftSettings: [.swiftLanguageMode(.v6)]),
    ] + fuzzTargets.map { name in
        .executableTarget(name: name, dependencies: ["FuzzSupport"], swiftSettings: [.swiftLanguageMode(.v6)])
    }
)
