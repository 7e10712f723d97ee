import CZlib

/// A small wrapper over zlib's one-shot deflate and inflate on caller-owned buffers.
///
/// Streams are *raw deflate* (RFC 1951, `windowBits = -15`): no zlib header and no Adler-32 trailer. Blob
/// integrity is guaranteed by the SHA-256 digest of the logical bytes, so a second checksum would only cost
/// time; the decoder still rejects streams that do not fill their output exactly.
///
/// ``Deflater`` and ``Inflater`` own one zlib stream each and reset it between calls, so a worker compressing
/// many chunks pays zlib's state allocation once. The `z_stream` lives at a fixed heap address because zlib
/// keeps a back-pointer to it and refuses a moved stream.
enum Zlib {
    /// Why a zlib call failed.
    enum Failure: Error, Equatable, Sendable {
        /// `deflateInit2` or `inflateInit2` failed with this zlib return code (out of memory, bad parameters).
        case initializationFailed(code: Int32)
        /// A buffer is larger than zlib's 32-bit counters allow in one call.
        case bufferTooLarge(Int)
        /// The output buffer was too small for the compressed stream (it must hold ``Zlib/compressBound(_:)``).
        case outputTooSmall
        /// The compressed stream is malformed; zlib's own message.
        case corruptStream(String)
        /// The stream ended after producing `produced` of the `expected` bytes.
        case streamTooShort(produced: Int, expected: Int)
        /// The stream holds more than the `expected` bytes.
        case streamTooLong(expected: Int)
        /// The input ran out before the stream ended.
        case truncatedStream
        /// `count` bytes follow the end of the stream.
        case trailingData(count: Int)
        /// zlib reported an unexpected return code.
        case unexpected(code: Int32)
    }

    /// The largest raw-deflate output for `count` input bytes, whatever the level and strategy.
    static func compressBound(_ count: Int) -> Int {
        Int(deflateBound(nil, uLong(count)))
    }

    /// A reusable raw-deflate compressor with a fixed level.
    struct Deflater: ~Copyable {
        private let stream: UnsafeMutablePointer<z_stream>
        private let level: Int32
        private var strategy: Int32

        /// - Parameters:
        ///   - level: 0 (store) to 9 (best); see zlib's `deflateInit2`.
        ///   - strategy: the initial zlib strategy, such as `Z_DEFAULT_STRATEGY` or `Z_HUFFMAN_ONLY`.
        init(level: Int32, strategy: Int32) throws(Failure) {
            self.level = level
            self.strategy = strategy
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let code = deflateInit2_(
                stream, level, Z_DEFLATED, -MAX_WBITS, 8, strategy, zlibVersion(), Int32(MemoryLayout<z_stream>.size)
            )
            guard code == Z_OK else {
                stream.deallocate()
                throw .initializationFailed(code: code)
            }
        }

        deinit {
            deflateEnd(stream)
            stream.deallocate()
        }

        /// Compresses all of `input` as one complete stream into `output` with `strategy` and returns the
        /// stream's length.
        ///
        /// `output` should hold ``Zlib/compressBound(_:)`` bytes of `input.count`; a smaller buffer may fail
        /// with ``Failure/outputTooSmall``.
        mutating func compress(
            _ input: UnsafeRawBufferPointer,
            into output: UnsafeMutableRawBufferPointer,
            strategy: Int32
        ) throws(Failure) -> Int {
            guard let inputSize = UInt32(exactly: input.count) else { throw .bufferTooLarge(input.count) }
            guard let outputSize = UInt32(exactly: output.count) else { throw .bufferTooLarge(output.count) }
            guard let outputBase = output.baseAddress, outputSize > 0 else { throw .outputTooSmall }
            let reset = deflateReset(stream)
            guard reset == Z_OK else { throw .unexpected(code: reset) }
            if strategy != self.strategy {
                // Right after a reset no input is pending, so this only switches the strategy.
                let changed = deflateParams(stream, level, strategy)
                guard changed == Z_OK else { throw .unexpected(code: changed) }
                self.strategy = strategy
            }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = inputSize
            stream.pointee.next_out = outputBase.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = outputSize
            let code = deflate(stream, Z_FINISH)
            switch code {
            case Z_STREAM_END:
                return output.count - Int(stream.pointee.avail_out)
            case Z_OK, Z_BUF_ERROR:
                throw .outputTooSmall
            default:
                throw .unexpected(code: code)
            }
        }
    }

    /// A reusable raw-deflate decompressor.
    struct Inflater: ~Copyable {
        private let stream: UnsafeMutablePointer<z_stream>

        init() throws(Failure) {
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let code = inflateInit2_(stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard code == Z_OK else {
                stream.deallocate()
                throw .initializationFailed(code: code)
            }
        }

        deinit {
            inflateEnd(stream)
            stream.deallocate()
        }

        /// Decompresses `input`, which must be exactly one complete stream, into exactly `output.count` bytes.
        ///
        /// Fails when the stream is malformed, ends early, holds more than `output.count` bytes, or is followed by
        /// further bytes in `input`.
        mutating func decompress(
            _ input: UnsafeRawBufferPointer,
            into output: UnsafeMutableRawBufferPointer
        ) throws(Failure) {
            guard let inputSize = UInt32(exactly: input.count) else { throw .bufferTooLarge(input.count) }
            guard let outputSize = UInt32(exactly: output.count) else { throw .bufferTooLarge(output.count) }
            let reset = inflateReset(stream)
            guard reset == Z_OK else { throw .unexpected(code: reset) }
            // zlib rejects null pointers even for empty buffers; a one-byte dummy stands in for an empty side.
            var empty: UInt8 = 0
            try withUnsafeMutablePointer(to: &empty) { (dummy) throws(Failure) in
                stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? UnsafePointer(dummy)
                )
                stream.pointee.avail_in = inputSize
                stream.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? dummy
                stream.pointee.avail_out = outputSize
                let code = inflate(stream, Z_FINISH)
                let remainingInput = Int(stream.pointee.avail_in)
                let remainingOutput = Int(stream.pointee.avail_out)
                switch code {
                case Z_STREAM_END:
                    guard remainingOutput == 0 else {
                        throw .streamTooShort(produced: output.count - remainingOutput, expected: output.count)
                    }
                    guard remainingInput == 0 else { throw .trailingData(count: remainingInput) }
                case Z_OK, Z_BUF_ERROR:
                    if remainingOutput == 0 { throw .streamTooLong(expected: output.count) }
                    throw .truncatedStream
                case Z_DATA_ERROR, Z_NEED_DICT:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid deflate data"
                    throw .corruptStream(message)
                default:
                    throw .unexpected(code: code)
                }
            }
        }
    }
}
