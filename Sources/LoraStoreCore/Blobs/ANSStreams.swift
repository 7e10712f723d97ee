/// Decodes runs of symbols from one tANS bit stream carrying eight interleaved states: the chunk streams of
/// ``ExponentCodec`` format version 1, which stores hold from before version 2 (``ANSLanes``). Nothing
/// writes this format any more.
///
/// Symbol `i` of a run is coded with state `i % 8`, so the decoder keeps eight independent table lookups in
/// flight instead of one, and all share one bit reader. One state's step is a chain of about a dozen cycles
/// (table load, bit extraction, add); measured on 32 Mi BF16 symbols, eight states decode about 20 % faster
/// than four (about 580 against 480 million symbols per second per core), and a C version of the same loop was
/// no faster than this Swift one. The shared bit reader is what ``ANSLanes`` removes.
///
/// The encoder walks the run backwards from state index 0 in all eight states, writing bits LSB-first, then
/// writes the final state indices (``ANSCode/tableLog`` bits each, state 7 first) and a closing `1` bit. The
/// decoder reads the stream backwards from that marker and must end with every state back at index 0 and every
/// bit consumed, which catches most damage that the table structure alone would not.
enum ANSStreams {
    static let stateCount = 8
}

// MARK: - Decoding

extension ANSStreams {
    /// Why a stream did not decode.
    enum Failure: Error, Sendable, CustomStringConvertible {
        /// The stream has no bytes, or its last byte is zero where the end marker should be.
        case missingMarker
        /// The symbols did not use exactly the stream's bits: positive when bits are left over, negative when
        /// the symbols needed more than the stream holds.
        case bitsLeftOver(Int)
        /// A state did not return to where the encoder started.
        case wrongFinalState

        var description: String {
            switch self {
            case .missingMarker:
                "the stream lacks its end marker"
            case .bitsLeftOver(let bits) where bits > 0:
                "\(bits) bits of the stream are left over after its last symbol"
            case .bitsLeftOver(let bits):
                "the stream ends \(-bits) bits before its last symbol"
            case .wrongFinalState:
                "the stream does not end in the encoder's initial states"
            }
        }
    }

    /// Decodes `count` symbols from `stream` into `output`.
    ///
    /// Never reads outside the stream: every state is a valid table index by construction, and the bit reader
    /// clamps its loads to the stream. Damage shows as a stream that is not consumed exactly or that ends on
    /// other states; damage that survives both decodes to wrong values, which the blob digest then catches.
    static func decode(
        _ stream: UnsafeRawBufferPointer, count: Int, table: UnsafePointer<ANSDecodingEntry>,
        into output: UnsafeMutablePointer<UInt16>
    ) throws(Failure) {
        var padding: UInt64 = 0
        try withUnsafeMutablePointer(to: &padding) { (padding) throws(Failure) in
            var reader = try BitReader(stream, padding: padding)
            reader.refill()
            var s0 = Int(reader.read(ANSCode.tableLog)), s1 = Int(reader.read(ANSCode.tableLog))
            var s2 = Int(reader.read(ANSCode.tableLog)), s3 = Int(reader.read(ANSCode.tableLog))
            reader.refill()
            var s4 = Int(reader.read(ANSCode.tableLog)), s5 = Int(reader.read(ANSCode.tableLog))
            var s6 = Int(reader.read(ANSCode.tableLog)), s7 = Int(reader.read(ANSCode.tableLog))
            // A refill leaves at least 57 bits unless the stream is ending; three symbols take at most 48.
            let lockstep = count - count % 24
            var index = 0
            while index < lockstep {
                let out = output + index
                reader.refill()
                step(&s0, &reader, table, out)
                step(&s1, &reader, table, out + 1)
                step(&s2, &reader, table, out + 2)
                reader.refill()
                step(&s3, &reader, table, out + 3)
                step(&s4, &reader, table, out + 4)
                step(&s5, &reader, table, out + 5)
                reader.refill()
                step(&s6, &reader, table, out + 6)
                step(&s7, &reader, table, out + 7)
                step(&s0, &reader, table, out + 8)
                reader.refill()
                step(&s1, &reader, table, out + 9)
                step(&s2, &reader, table, out + 10)
                step(&s3, &reader, table, out + 11)
                reader.refill()
                step(&s4, &reader, table, out + 12)
                step(&s5, &reader, table, out + 13)
                step(&s6, &reader, table, out + 14)
                reader.refill()
                step(&s7, &reader, table, out + 15)
                step(&s0, &reader, table, out + 16)
                step(&s1, &reader, table, out + 17)
                reader.refill()
                step(&s2, &reader, table, out + 18)
                step(&s3, &reader, table, out + 19)
                step(&s4, &reader, table, out + 20)
                reader.refill()
                step(&s5, &reader, table, out + 21)
                step(&s6, &reader, table, out + 22)
                step(&s7, &reader, table, out + 23)
                index &+= 24
            }
            var states = [s0, s1, s2, s3, s4, s5, s6, s7]
            while index < count {
                reader.refill()
                step(&states[index & (stateCount - 1)], &reader, table, output + index)
                index += 1
            }
            guard reader.position == 0 else { throw .bitsLeftOver(reader.position) }
            guard states.allSatisfy({ $0 == 0 }) else { throw .wrongFinalState }
        }
    }

    @inline(__always)
    private static func step(
        _ state: inout Int, _ reader: inout BitReader, _ table: UnsafePointer<ANSDecodingEntry>,
        _ output: UnsafeMutablePointer<UInt16>
    ) {
        let entry = table + state
        let bits = reader.read(Int(entry.pointee.bits))
        output.pointee = entry.pointee.value | (UInt16(truncatingIfNeeded: bits) & entry.pointee.escapeMask)
        state = Int(entry.pointee.base) &+ Int(truncatingIfNeeded: bits &>> UInt64(entry.pointee.escapeBits))
    }

    /// Reads a stream backwards from its end marker.
    private struct BitReader {
        let start: UnsafeRawPointer
        /// The stream bit at which `container` starts.
        var containerStart = 0
        /// Unread bits in `container`: the unread bits of the stream are `0..<containerStart + available`.
        var available: Int
        var container: UInt64 = 0

        /// Streams shorter than 8 bytes are copied to `padding` so that loads stay in bounds.
        init(_ stream: UnsafeRawBufferPointer, padding: UnsafeMutablePointer<UInt64>) throws(Failure) {
            guard let base = stream.baseAddress, stream.count > 0, stream[stream.count - 1] != 0 else {
                throw .missingMarker
            }
            available = (stream.count - 1) * 8 + (7 - stream[stream.count - 1].leadingZeroBitCount)
            if stream.count >= 8 {
                start = base
            } else {
                UnsafeMutableRawPointer(padding).copyMemory(from: base, byteCount: stream.count)
                start = UnsafeRawPointer(padding)
            }
        }

        /// The number of unread bits in the stream; negative after reading past its start.
        var position: Int { containerStart &+ available }

        /// Loads the 8 bytes ending at the byte that holds the next unread bit (or the stream's first 8).
        @inline(__always)
        mutating func refill() {
            let position = containerStart &+ available
            let byte = max(0, ((position &+ 7) &>> 3) &- 8)
            container = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: byte, as: UInt64.self))
            containerStart = byte &<< 3
            available = position &- containerStart
        }

        /// The `count` bits below the read position. Past the start of the stream it returns garbage without
        /// reading out of bounds, and ``position`` goes negative.
        @inline(__always)
        mutating func read(_ count: Int) -> UInt64 {
            available &-= count
            return (container &>> UInt64(truncatingIfNeeded: available)) & ((1 &<< UInt64(count)) &- 1)
        }
    }
}
