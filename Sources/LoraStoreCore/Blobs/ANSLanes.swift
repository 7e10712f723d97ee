import CSIMDKernels

/// Encodes and decodes runs of symbols as 64 interleaved tANS lanes, each with its own bit container, fed
/// 16-bit words from one shared stream (``ExponentCodec`` format version 2).
///
/// Version 1 (``ANSStreams``) kept eight states on one bit reader, so every read waited for the previous
/// symbol's bit count and the loop ran at about 580 million symbols per second per core. Here no lane waits
/// for another: sixteen lanes fill one AVX-512 register, and the vector decoder gathers their table entries,
/// takes new words for the lanes short of bits in one expanding load and reads sixteen bit fields with two
/// shifts. The lanes' only shared state is the word position, one population count per register. See
/// ``LaneDecoder`` for the decoders.
///
/// ## Stream
///
/// Symbol `i` of a run belongs to lane `i % 64`. The decoder works in steps: a first step in which every lane
/// reads its initial state (``ANSCode/tableLog`` bits), then one step per 64 symbols in which lanes
/// `0 ..< min(64, symbols left)` read one symbol each. In a step, lane by lane in increasing order:
/// 1. when the lane's container holds fewer unread bits than its state reads (at most 16), the next word of
///    the stream (little-endian) becomes its low 16 bits, below the unread ones;
/// 2. the lane reads its state's bit count from the top of its unread bits;
/// 3. it emits the state's symbol and moves to the state's base plus the bits read.
///
/// A lane takes a word only when it needs some of its bits, so a stream carries no word of padding; a lane
/// wastes only the rest of its last word.
///
/// The encoder starts every lane in state 0 and codes the run backwards, as in ``ANSStreams``, then lays the
/// words out in the order the decoder will ask for them. A stream is valid only if the decoder ends with every
/// lane in state 0, every word taken and only zero bits left in the containers.
///
/// A symbol's bits are its state bits followed by the low bits its code entry escapes (see ``ANSCode``), as in
/// version 1: the lane splits the field it read into the next state's offset and the symbol's low bits.
enum ANSLanes {
    static let laneCount = 64
    /// Bits per word of the stream, and the most bits one symbol reads.
    static let wordBits = 16

    /// The bytes ``encode(_:count:tables:scratch:into:)`` may write for a run of `count` symbols: at most 16
    /// bits per symbol (state and escaped bits), ``ANSCode/tableLog`` per initial state, per lane the rest of
    /// its last word, and a word the encoder writes past the end and then drops.
    static func bound(_ count: Int) -> Int {
        2 * count + (laneCount * ANSCode.tableLog + 7) / 8 + 2 * laneCount + 2
    }
}

// MARK: - Encoding

extension ANSLanes {
    /// Encodes `values[0..<count]` into `output`, which holds at least ``bound(_:)`` bytes; returns the length.
    /// `scratch` holds ``scratchSize(_:)`` bytes.
    static func encode(
        _ values: UnsafePointer<UInt16>, count: Int, tables: borrowing ANSEncodingTables,
        scratch: UnsafeMutableRawPointer, into output: UnsafeMutableRawPointer
    ) -> Int {
        let fields = scratch.bindMemory(to: UInt32.self, capacity: count)
        let laneWords = (scratch + 4 * count).bindMemory(to: UInt16.self, capacity: laneCount * laneStride(count))
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: laneCount) { states in
            codeBackwards(values, count: count, tables: tables, fields: fields, finalStates: states)
            packLanes(fields: fields, count: count, initialStates: states, into: laneWords)
            return 2 * interleave(fields: fields, count: count, laneWords: laneWords, into: output)
        }
    }

    /// Scratch bytes ``encode(_:count:tables:scratch:into:)`` needs for a run of `count` symbols.
    static func scratchSize(_ count: Int) -> Int {
        4 * count + 2 * laneCount * laneStride(count)
    }

    /// Words set aside for each lane's own bits: its initial state and at most 16 bits per symbol, rounded
    /// up, and one more word, which the branch-free ``interleave`` reads ahead.
    private static func laneStride(_ count: Int) -> Int {
        (ANSCode.tableLog + wordBits * ((count + laneCount - 1) / laneCount) + wordBits - 1) / wordBits + 1
    }

    /// Codes the run backwards from state 0 in every lane, leaving per symbol the bits the decoder will read
    /// (`field | bitCount << 16`) in `fields`, and each lane's last state (the decoder's first) in `finalStates`.
    private static func codeBackwards(
        _ values: UnsafePointer<UInt16>, count: Int, tables: borrowing ANSEncodingTables,
        fields: UnsafeMutablePointer<UInt32>, finalStates states: UnsafeMutableBufferPointer<UInt32>
    ) {
        tables.symbolOfValue.withUnsafeBufferPointer { symbolOfValue in
            tables.symbols.withUnsafeBufferPointer { symbols in
                tables.nextState.withUnsafeBufferPointer { nextState in
                    states.initialize(repeating: UInt32(ANSCode.tableSize))
                    var index = count
                    while index > 0 {
                        index &-= 1
                        let value = UInt32(values[index])
                        let symbol = symbols[Int(symbolOfValue[Int(value)])]
                        let lane = index & (laneCount - 1)
                        let state = states[lane]
                        let stateBits = symbol.maximumStateBits &- (state < symbol.threshold ? 1 : 0)
                        let escapeMask = (UInt32(1) &<< symbol.escapeBits) &- 1
                        let field = (state & ((1 &<< stateBits) &- 1)) &<< symbol.escapeBits | value & escapeMask
                        fields[index] = field | (stateBits &+ symbol.escapeBits) &<< 16
                        let slot = symbol.start &+ (state &>> stateBits) &- symbol.count
                        states[lane] = UInt32(ANSCode.tableSize) | UInt32(nextState[Int(slot)])
                    }
                    for lane in 0..<laneCount { states[lane] &= UInt32(ANSCode.tableSize - 1) }
                }
            }
        }
    }

    /// Writes each lane's bits, in the order the decoder reads them (its initial state, then its symbols'
    /// fields), as 16-bit words at `laneWords + lane · laneStride`, the last one padded with zeros.
    private static func packLanes(
        fields: UnsafePointer<UInt32>, count: Int, initialStates: UnsafeMutableBufferPointer<UInt32>,
        into laneWords: UnsafeMutablePointer<UInt16>
    ) {
        let stride = laneStride(count)
        for lane in 0..<laneCount {
            var words = laneWords + lane &* stride
            var pending = UInt64(initialStates[lane])
            var pendingBits = ANSCode.tableLog
            var index = lane
            while index < count {
                let field = fields[index]
                let bits = Int(field &>> 16)
                pending = pending &<< bits | UInt64(field & 0xFFFF)
                // Branch-free: the word is stored either way, and overwritten unless it was whole.
                let whole = pendingBits &+ bits >= wordBits ? 1 : 0
                pendingBits &+= bits &- whole &<< 4
                words.pointee = UInt16(truncatingIfNeeded: pending &>> pendingBits)
                words += whole
                index &+= laneCount
            }
            words.pointee = UInt16(truncatingIfNeeded: pending &<< (wordBits &- pendingBits))
        }
    }

    /// Lays the lanes' words out in the order the decoder takes them; returns the number of words.
    private static func interleave(
        fields: UnsafePointer<UInt32>, count: Int, laneWords: UnsafePointer<UInt16>,
        into output: UnsafeMutableRawPointer
    ) -> Int {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * laneCount) { buffer in
            // Per lane: the next of its words to hand out, and the unread bits in the decoder's container.
            let taken = buffer.baseAddress.unsafelyUnwrapped
            let unread = taken + laneCount
            let stride = laneStride(count)
            for lane in 0..<laneCount { (taken[lane], unread[lane]) = (lane &* stride, 0) }
            var wordCount = 0
            // Branch-free, as whether a lane takes a word is close to a coin toss: the lane's next word is
            // stored either way, and overwritten unless the lane took it.
            func take(_ bits: Int, lane: Int) {
                let takes = unread[lane] < bits ? 1 : 0
                output.storeBytes(
                    of: laneWords[taken[lane]].littleEndian, toByteOffset: 2 &* wordCount, as: UInt16.self)
                wordCount &+= takes
                taken[lane] &+= takes
                unread[lane] &+= takes &<< 4 &- bits
            }
            for lane in 0..<laneCount { take(ANSCode.tableLog, lane: lane) }
            for first in Swift.stride(from: 0, to: count, by: laneCount) {
                for lane in 0..<min(laneCount, count &- first) {
                    take(Int(fields[first &+ lane] &>> 16), lane: lane)
                }
            }
            return wordCount
        }
    }
}

// MARK: - Decoding

extension ANSLanes {
    /// Why a lane stream did not decode.
    enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The lane stream is not a whole number of words.
        case oddLength
        /// The lanes did not take exactly the stream's words: positive when words are left over, negative when
        /// they asked for more than the stream holds.
        case wordsLeftOver(Int)
        /// A lane ended with a set bit it never read.
        case nonZeroPadding
        /// A lane did not return to where the encoder started.
        case wrongFinalState

        var description: String {
            switch self {
            case .oddLength:
                "the lane stream is not a whole number of 16-bit words"
            case .wordsLeftOver(let words) where words > 0:
                "\(words) words of the lane stream are left over after the last symbol"
            case .wordsLeftOver(let words):
                "the lane stream ends \(-words) words before the last symbol"
            case .nonZeroPadding:
                "a lane ends with set bits it never reads"
            case .wrongFinalState:
                "the lanes do not end in the encoder's initial states"
            }
        }
    }

    /// Decodes `count` symbols from the lane stream `stream` into `output`.
    ///
    /// `table` is ``ANSCode/laneDecodingTable()``. Never reads outside the stream; damage shows as a stream not
    /// consumed exactly or ending in other states, and damage that survives both decodes to wrong values, which
    /// the blob digest then catches. `decoder` decodes the whole steps (the portable decoder finishes each
    /// run); one this CPU does not run falls back to the portable decoder.
    static func decode(
        _ stream: UnsafeRawBufferPointer, count: Int, table: UnsafePointer<UInt32>,
        into output: UnsafeMutablePointer<UInt16>, decoder: LaneDecoder = .preferred
    ) throws(Failure) {
        guard stream.count % 2 == 0 else { throw .oddLength }
        // Every lane takes a word before reading its initial state.
        guard let words = stream.baseAddress, stream.count / 2 >= laneCount else {
            throw .wordsLeftOver(stream.count / 2 - laneCount)
        }
        let wordCount = stream.count / 2
        let failure: Failure? = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 3 * laneCount) { buffer in
            buffer.initialize(repeating: 0)
            let lanes = Lanes(base: buffer.baseAddress.unsafelyUnwrapped, words: words, wordCount: wordCount)
            var next = 0
            for lane in 0..<laneCount {
                lanes.takeWordIfShort(lane, of: UInt32(ANSCode.tableLog), next: &next, checked: true)
                lanes.filled[lane] &-= UInt32(ANSCode.tableLog)
                lanes.state[lane] = lanes.container[lane] &>> lanes.filled[lane] & UInt32(ANSCode.tableSize - 1)
            }
            var first = 0
            if decoder != .portable && decoder.isAvailable {
                // A copy for C, so that `next` itself is never address-taken and stays in a register below.
                var taken = next
                let steps = (decoder == .avx512 ? lorastore_ans_lanes_decode_avx512 : lorastore_ans_lanes_decode_avx2)(
                    lanes.state, lanes.container, lanes.filled, words.assumingMemoryBound(to: UInt16.self),
                    wordCount, &taken, table, output, count / laneCount)
                first = laneCount &* steps
                next = taken
            }
            // A step takes at most one word per lane: while that many remain, no word needs a bounds check.
            while count &- first >= laneCount && wordCount &- next >= laneCount {
                lanes.step(laneCount, table: table, output: output + first, next: &next, checked: false)
                first &+= laneCount
            }
            while first < count {
                lanes.step(min(laneCount, count &- first), table: table, output: output + first, next: &next, checked: true)
                first &+= laneCount
            }
            guard next == wordCount else { return .wordsLeftOver(wordCount - next) }
            for lane in 0..<laneCount {
                let unread = lanes.filled[lane]
                guard lanes.container[lane] & ((1 &<< unread) &- 1) == 0 else { return .nonZeroPadding }
                guard lanes.state[lane] == 0 else { return .wrongFinalState }
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// The portable decoder's lanes: 64 states, containers and unread bit counts, and the stream they read.
    private struct Lanes {
        let state: UnsafeMutablePointer<UInt32>
        let container: UnsafeMutablePointer<UInt32>
        let filled: UnsafeMutablePointer<UInt32>
        let words: UnsafeRawPointer
        /// The stream's last word, read in place of any past the end.
        let lastWord: Int

        init(base: UnsafeMutablePointer<UInt32>, words: UnsafeRawPointer, wordCount: Int) {
            (state, container, filled) = (base, base + laneCount, base + 2 * laneCount)
            (self.words, lastWord) = (words, wordCount - 1)
        }

        /// Decodes one step: lanes `0..<active` each read one symbol into `output[lane]`.
        @inline(__always)
        func step(
            _ active: Int, table: UnsafePointer<UInt32>, output: UnsafeMutablePointer<UInt16>, next: inout Int,
            checked: Bool
        ) {
            for lane in 0..<active {
                let entry = table[Int(state[lane])]
                let bits = (entry &>> 12) & 0x1F
                takeWordIfShort(lane, of: bits, next: &next, checked: checked)
                let unread = filled[lane] &- bits
                filled[lane] = unread
                let field = (container[lane] &>> unread) & ((1 &<< bits) &- 1)
                let escapeBits = (entry &>> 17) & 0x7
                state[lane] = (entry & 0xFFF) &+ field &>> escapeBits
                output[lane] = UInt16(truncatingIfNeeded: entry &>> 20 | field & ((1 &<< escapeBits) &- 1))
            }
        }

        /// Takes the next word into the lane's container if it holds fewer than `bits` unread bits, without a
        /// branch: whether a lane takes a word is close to a coin toss. `checked` reads the last word again in
        /// place of any past the end of the stream (while `next` still advances, so the caller sees the
        /// overrun); unchecked, the caller guarantees the word exists.
        @inline(__always)
        func takeWordIfShort(_ lane: Int, of bits: UInt32, next: inout Int, checked: Bool) {
            let word = UInt32(UInt16(littleEndian: words.loadUnaligned(
                fromByteOffset: 2 &* (checked ? min(next, lastWord) : next), as: UInt16.self)))
            let takes = (filled[lane] &- bits) &>> 31
            let shift = takes &<< 4
            container[lane] = container[lane] &<< shift | word & (0 &- takes)
            filled[lane] &+= shift
            next &+= Int(takes)
        }
    }
}
