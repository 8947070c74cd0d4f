import Benchmark
import SecureChatBench
import SecureChatCrypto
import SecureChatGcrypt
import SecureChatOpenSSL

// Each benchmark runs its workload 1,000 times per iteration (scaling factor kilo) between
// startMeasurement and stopMeasurement; the workloads come from SecureChatBench, the same code
// `securechat bench` times. Seal, open and the chat record path must not allocate: their
// mallocCountTotal threshold is 0, so one allocation fails `swift package benchmark thresholds check`.
let sizes = [16, 64, 256, 1024, 16384, 65519]

let benchmarks: @Sendable () -> Void = {
    let allocationFree = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])])
    let measured = Benchmark.Configuration(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .kilo,
                                           maxDuration: .seconds(1))
    register(OpenSSLBackend.self, allocationFree: allocationFree, measured: measured)
    register(GcryptBackend.self, allocationFree: allocationFree, measured: measured)
}

/// The benchmarks of one backend; generic and called with a concrete type, so specialised.
func register<Backend: CryptoBackend>(_: Backend.Type, allocationFree: Benchmark.Configuration, measured: Benchmark.Configuration) {
    let name = Backend.name
    for cipher in CipherKind.allCases {
        for size in sizes {
            add("seal \(name) \(cipher.configName) \(size)", allocationFree) { try SealWorkload<Backend>(cipher, size: size) }
            add("open \(name) \(cipher.configName) \(size)", allocationFree) { try OpenWorkload<Backend>(cipher, size: size) }
        }
        add("chat-record \(name) \(cipher.configName) 64", allocationFree) { try ChatRecordWorkload<Backend>(cipher, size: 64) }
        add("ik-handshake \(name) \(cipher.configName)", measured) { try HandshakeWorkload<Backend>(cipher) }
    }
    add("x25519-keygen \(name)", measured) { KeyGenerationWorkload<Backend>() }
    add("x25519-dh \(name)", measured) { try DiffieHellmanWorkload<Backend>() }
}

/// One benchmark: the workload is set up outside the measurement, then run once per scaled iteration.
func add<W: Workload>(_ name: String, _ configuration: Benchmark.Configuration, _ make: @escaping () throws -> W) {
    Benchmark(name, configuration: configuration) { benchmark in
        var workload = try make()
        try workload.run()  // first use: lazily made run-time metadata, outside the count
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try workload.run() }
        benchmark.stopMeasurement()
    }
}
