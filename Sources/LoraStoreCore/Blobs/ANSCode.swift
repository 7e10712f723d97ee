import Foundation

/// A static tANS (tabled asymmetric numeral systems) code for symbols of up to 12 bits.
///
/// tANS codes each symbol in close to `-log2(p)` bits, fractions of a bit included, where Huffman rounds every
/// code to whole bits: on the exponent field of N(0, 0.02) weights, whose most frequent value has p ≈ 0.32,
/// Huffman spends about 2 % more than the entropy and tANS 0.1 %. Decoding is one table lookup, one bit read and
/// one add per symbol.
///
/// A code may *escape* the low `escapeBits` bits of rare symbols: such a table entry stands for every value
/// sharing its high bits, and the low bits travel raw in the bit stream. This lets the code model the top
/// mantissa bits together with the exponent where samples are plentiful, without giving each of the many rare
/// combinations a table slot it would waste.
struct ANSCode: Sendable {
    /// log2 of the number of states. 4096 states of 4 bytes keep the decoding table in L1.
    static let tableLog = 12
    static let tableSize = 1 << tableLog
    /// The widest symbol a code can carry: table entries hold 12 bits of value.
    static let maximumSymbolBits = 12
    /// The most low bits a code may escape: table entries hold 3 bits of escape count.
    static let maximumEscapeBits = 7

    /// One coded symbol.
    struct Entry: Sendable, Hashable {
        /// The symbol's value; its low `escapeBits` bits are zero.
        var value: Int
        /// How many low bits of the value travel raw (0 for an exact symbol).
        var escapeBits: Int
        /// The number of states given to the symbol, at least 1; all counts add up to ``tableSize``.
        var count: Int
    }

    /// The coded symbols, by increasing value.
    let entries: [Entry]
    /// The number of bits in a symbol value.
    let symbolBits: Int

    init(entries: [Entry], symbolBits: Int) {
        self.entries = entries
        self.symbolBits = symbolBits
    }
}

// MARK: - Building a code from a histogram

extension ANSCode {
    /// The code that best fits `histogram` (occurrences of every value of `symbolBits` bits), letting rare values
    /// escape their low `escapableBits` bits. Returns `nil` for an empty histogram.
    ///
    /// A group of values sharing their high bits is coded exactly (one entry per value) only when that saves more
    /// bits than the group's extra table entries cost and the group is frequent enough for each of its values to
    /// earn states of its own; otherwise the group is one escaped entry.
    static func fitting(histogram: [Int], symbolBits: Int, escapableBits: Int) -> ANSCode? {
        precondition(symbolBits <= maximumSymbolBits && escapableBits <= min(symbolBits, maximumEscapeBits))
        let total = histogram.reduce(0, +)
        guard total > 0 else { return nil }
        let groupSize = 1 << escapableBits
        var entries: [Entry] = []
        var frequencies: [Int] = []
        for group in 0..<(histogram.count / groupSize) {
            let members = histogram[group * groupSize..<(group + 1) * groupSize]
            let groupCount = members.reduce(0, +)
            guard groupCount > 0 else { continue }
            if escapableBits == 0 || isWorthSplitting(members, groupCount: groupCount, total: total) {
                for (value, count) in zip(members.indices, members) where count > 0 {
                    entries.append(Entry(value: value, escapeBits: 0, count: 0))
                    frequencies.append(count)
                }
            } else {
                entries.append(Entry(value: group * groupSize, escapeBits: escapableBits, count: 0))
                frequencies.append(groupCount)
            }
        }
        for (index, count) in normalize(frequencies, total: total).enumerated() {
            entries[index].count = count
        }
        return ANSCode(entries: entries, symbolBits: symbolBits)
    }

    /// Whether coding a group's values exactly beats escaping their low bits.
    private static func isWorthSplitting(_ members: ArraySlice<Int>, groupCount: Int, total: Int) -> Bool {
        // A group needs about 64 states for its values to be coded near their frequencies (fewer states round
        // the rare ones up to one state each, which costs more than the raw bits it saves).
        guard groupCount * tableSize >= 64 * total else { return false }
        var savedBits = 0.0
        let escapeBits = log2(Double(members.count))
        for count in members where count > 0 {
            savedBits += Double(count) * (escapeBits - log2(Double(groupCount) / Double(count)))
        }
        let present = members.count { $0 > 0 }
        return savedBits > Double(present - 1) * 32
    }

    /// Scales `frequencies` (all positive, adding up to `total`) to counts of at least 1 that add up to
    /// ``tableSize``, spending the rounding where it costs least. Integer arithmetic only, so every machine
    /// makes the same choice.
    private static func normalize(_ frequencies: [Int], total: Int) -> [Int] {
        var counts = frequencies.map { max(1, $0 * tableSize / total) }
        var sum = counts.reduce(0, +)
        // Giving a state to symbol i saves about frequency / (count + 1/2) bits; taking one costs about
        // frequency / (count - 1/2). Compare f_i / (2c_i ± 1) by cross-multiplication.
        while sum < tableSize {
            var best = 0
            for index in counts.indices.dropFirst()
            where frequencies[index] * (2 * counts[best] + 1) > frequencies[best] * (2 * counts[index] + 1) {
                best = index
            }
            counts[best] += 1
            sum += 1
        }
        while sum > tableSize {
            var best = -1
            for index in counts.indices where counts[index] > 1 {
                if best < 0
                    || frequencies[index] * (2 * counts[best] - 1) < frequencies[best] * (2 * counts[index] - 1)
                {
                    best = index
                }
            }
            counts[best] -= 1
            sum -= 1
        }
        return counts
    }
}

// MARK: - Tables

extension ANSCode {
    /// Assigns every state a symbol, spreading each symbol's states evenly over the table (FSE's walk with an
    /// odd step, which visits every slot once).
    private func spread() -> [Int] {
        var table = [Int](repeating: 0, count: Self.tableSize)
        let mask = Self.tableSize - 1
        let step = (Self.tableSize >> 1) + (Self.tableSize >> 3) + 3
        var position = 0
        for (symbol, entry) in entries.enumerated() {
            for _ in 0..<entry.count {
                table[position] = symbol
                position = (position + step) & mask
            }
        }
        return table
    }

    /// Per state, in table order, `entry(state's entry, state bits to read, base they are added to)`.
    ///
    /// The entries are made as the states are walked, without an intermediate array of tuples: a merge decodes
    /// a few hundred small factor blobs, and building their tables through one took a third of the time (a
    /// 128 KiB F32 blob decoded in 114 µs with it, 73 µs without). Inlined, so that each table's closure is
    /// too: as a generic call per state it cost as much again (79–81 µs against 39–50 µs for the whole decode).
    @inline(__always)
    private func transitions<Table>(_ entry: (Entry, _ stateBits: Int, _ base: Int) -> Table) -> [Table] {
        var next = entries.map(\.count)
        return spread().map { symbol in
            let successor = next[symbol]
            next[symbol] = successor + 1
            let stateBits = Self.tableLog - (Int.bitWidth - 1 - successor.leadingZeroBitCount)
            return entry(entries[symbol], stateBits, (successor << stateBits) - Self.tableSize)
        }
    }

    /// The decoding table of format version 1 (``ANSStreams``): per state, the symbol and how to reach the next
    /// state.
    func decodingTable() -> [ANSDecodingEntry] {
        transitions { entry, stateBits, base in
            ANSDecodingEntry(
                bits: UInt8(stateBits + entry.escapeBits), escapeBits: UInt8(entry.escapeBits),
                value: UInt16(entry.value), escapeMask: UInt16((1 << entry.escapeBits) - 1), base: UInt16(base)
            )
        }
    }

    /// The decoding table of ``ANSLanes``, one 32-bit word per state: the base of the next state in bits 0–11,
    /// the bits to read (state and escaped bits) in bits 12–16, the escaped bits in 17–19 and the symbol's
    /// value in 20–31. The next state stays below ``tableSize`` whatever bits are read, which the vector
    /// decoder relies on to index the table unchecked.
    func laneDecodingTable() -> [UInt32] {
        transitions { entry, stateBits, base in
            UInt32(truncatingIfNeeded: base) | UInt32(truncatingIfNeeded: stateBits + entry.escapeBits) << 12
                | UInt32(truncatingIfNeeded: entry.escapeBits) << 17 | UInt32(truncatingIfNeeded: entry.value) << 20
        }
    }

    /// The encoder's tables.
    func encodingTables() -> ANSEncodingTables {
        var symbolOfValue = [UInt16](repeating: 0, count: 1 << symbolBits)
        var symbols: [ANSEncodingTables.Symbol] = []
        var start = 0
        for (index, entry) in entries.enumerated() {
            for value in entry.value..<(entry.value + (1 << entry.escapeBits)) {
                symbolOfValue[value] = UInt16(index)
            }
            let countBits = Int.bitWidth - 1 - entry.count.leadingZeroBitCount
            let maximumStateBits = Self.tableLog - countBits
            symbols.append(
                ANSEncodingTables.Symbol(
                    count: UInt32(entry.count), maximumStateBits: UInt32(maximumStateBits),
                    threshold: UInt32(entry.count << maximumStateBits), escapeBits: UInt32(entry.escapeBits),
                    start: UInt32(start)
                )
            )
            start += entry.count
        }
        var seen = [Int](repeating: 0, count: entries.count)
        var nextState = [UInt16](repeating: 0, count: Self.tableSize)
        for (state, symbol) in spread().enumerated() {
            nextState[Int(symbols[symbol].start) + seen[symbol]] = UInt16(state)
            seen[symbol] += 1
        }
        return ANSEncodingTables(symbolOfValue: symbolOfValue, symbols: symbols, nextState: nextState)
    }
}

/// What the encoder looks up per symbol.
struct ANSEncodingTables: Sendable {
    struct Symbol: Sendable {
        /// The symbol's number of states.
        var count: UInt32
        /// State bits emitted when the state is at or above `threshold`; one fewer below it.
        var maximumStateBits: UInt32
        var threshold: UInt32
        var escapeBits: UInt32
        /// Where the symbol's states start in `nextState`.
        var start: UInt32
    }

    /// The coded symbol of every value.
    let symbolOfValue: [UInt16]
    let symbols: [Symbol]
    /// Per symbol (from its `start`), the table state of its successive occurrences.
    let nextState: [UInt16]
}

/// One state of the decoding table, laid out so that each field is one load.
struct ANSDecodingEntry: Sendable {
    /// Bits to read: the state bits, then the escaped bits below them.
    var bits: UInt8
    var escapeBits: UInt8
    /// The symbol's value, its escaped bits zero.
    var value: UInt16
    /// Selects the escaped bits of what was read.
    var escapeMask: UInt16
    /// Added to the state bits to give the next state.
    var base: UInt16
}
