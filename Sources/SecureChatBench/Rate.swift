/// Operations per second: the median of three timed slices of `seconds / 3` each, in batches
/// that double up to 65,536 runs, so the clock is read rarely. The C baseline
/// (Benchmarks/Baseline/crypto_baseline.c) times its loops the same way.
///
/// `runBatch(n)` performs n runs. `BenchFigure` makes it inside its generic initialiser, which the
/// compiler specialises per workload type, so every run is a direct call into specialised code, as
/// in the peer; the earlier generic loop called each run through witness tables, which cost about
/// 10 % at 64 B. Never inlined: inlined, it kept that initialiser's closure from being specialised
/// (seen in the disassembly).
@inline(never)
public func operationsPerSecond(seconds: Double, _ runBatch: (Int) throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let slice = Duration.seconds(seconds / 3)
    var rates = [Double]()
    for _ in 0..<3 {
        var operations = 0, batch = 1
        let start = clock.now
        var elapsed = Duration.zero
        while elapsed < slice {
            try runBatch(batch)
            operations += batch
            if batch < 1 << 16 { batch *= 2 }
            elapsed = clock.now - start
        }
        rates.append(Double(operations) / elapsed.seconds)
    }
    return rates.sorted()[1]
}
