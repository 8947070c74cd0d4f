/// Operations per second of a workload: the median of three timed slices of `seconds / 3` each,
/// in batches that double up to 65,536 runs, so the clock is read rarely. The C baseline
/// (Benchmarks/Baseline/crypto_baseline.c) times its loops the same way.
public func operationsPerSecond<W: Workload>(_ workload: inout W, seconds: Double) throws -> Double {
    let clock = ContinuousClock()
    let slice = Duration.seconds(seconds / 3)
    var rates = [Double]()
    for _ in 0..<3 {
        var operations = 0, batch = 1
        let start = clock.now
        var elapsed = Duration.zero
        while elapsed < slice {
            for _ in 0..<batch { try workload.run() }
            operations += batch
            if batch < 1 << 16 { batch *= 2 }
            elapsed = clock.now - start
        }
        rates.append(Double(operations) / elapsed.seconds)
    }
    return rates.sorted()[1]
}
