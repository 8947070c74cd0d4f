extension Dictionary where Value == Int {
    /// Changes `key`'s count by `change`; a count that falls to zero takes its key out, so the
    /// table holds only what is counted now (the limiters' tables of what is in use).
    mutating func adjustCount(of key: Key, by change: Int) {
        let count = self[key, default: 0] + change
        self[key] = count > 0 ? count : nil
    }
}
