import Foundation

/// Predicts, from one pass over the data, how much deflate could shrink each byte plane.
///
/// For each plane it counts the byte histogram and how many bytes repeat their predecessor. The
/// order-0 entropy bounds what Huffman coding alone can save; runs are what run-length and LZ matches add
/// on top. A plane whose predicted gain is below the caller's threshold is not worth deflate's time.
struct PlaneStatistics {
    /// Per plane, the predicted fraction saved: the order-0 entropy's saving plus the fraction of repeated bytes,
    /// at most 1. Zero for empty planes.
    let estimatedGains: [Double]
    /// Per plane, the fraction of bytes equal to the byte before them in the plane.
    let repeatFractions: [Double]

    init(_ bytes: UnsafeRawBufferPointer, width: Int) {
        let elementCount = bytes.count / width
        guard elementCount > 0, let base = bytes.baseAddress else {
            estimatedGains = Array(repeating: 0, count: width)
            repeatFractions = Array(repeating: 0, count: width)
            return
        }
        let histogram = UnsafeMutableBufferPointer<Int>.allocate(capacity: width * 256)
        defer { histogram.deallocate() }
        histogram.initialize(repeating: 0)
        let repeats: [Int] = switch width {
        case 2: Self.count(base, elementCount: elementCount, as: UInt16.self, into: histogram)
        case 4: Self.count(base, elementCount: elementCount, as: UInt32.self, into: histogram)
        case 8: Self.count(base, elementCount: elementCount, as: UInt64.self, into: histogram)
        default: Self.count(base, elementCount: elementCount, as: UInt8.self, into: histogram)
        }
        let total = Double(elementCount)
        let repeatFractions = repeats.map { Double($0) / total }
        self.repeatFractions = repeatFractions
        estimatedGains = (0..<width).map { plane in
            var bits = 0.0
            for count in histogram[plane * 256..<(plane + 1) * 256] where count > 0 {
                let frequency = Double(count) / total
                bits -= frequency * log2(frequency)
            }
            return min(1, (1 - bits / 8) + repeatFractions[plane])
        }
    }

    /// Adds every plane's byte counts to `histogram` (256 entries per plane) and returns the repeats per plane.
    private static func count<Element: FixedWidthInteger & UnsignedInteger>(
        _ base: UnsafeRawPointer,
        elementCount: Int,
        as _: Element.Type,
        into histogram: UnsafeMutableBufferPointer<Int>
    ) -> [Int] {
        let width = MemoryLayout<Element>.size
        var repeats = [Int](repeating: 0, count: width)
        var previous = ~Element(littleEndian: base.loadUnaligned(as: Element.self))
        for index in 0..<elementCount {
            let element = Element(littleEndian: base.loadUnaligned(fromByteOffset: index &* width, as: Element.self))
            let equal = ~(element ^ previous)
            for plane in 0..<width {
                let shift = plane &* 8
                histogram[plane &<< 8 | Int(truncatingIfNeeded: element &>> shift) & 0xFF] &+= 1
                if UInt8(truncatingIfNeeded: equal &>> shift) == 0xFF { repeats[plane] &+= 1 }
            }
            previous = element
        }
        return repeats
    }
}
