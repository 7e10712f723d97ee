/// Moves little-endian elements between their interleaved layout and byte planes.
///
/// Plane `p` holds byte `p` of every element. The loops load and store whole elements so the compiler can
/// vectorize them; they run on chunk-sized buffers that stay in cache.
enum PlaneTransposer {
    /// Writes byte `p` of each of the `elementCount` elements at `source` to `planes[p]`.
    static func split(
        _ source: UnsafeRawPointer,
        elementCount: Int,
        width: Int,
        into planes: UnsafeMutableBufferPointer<UnsafeMutableRawPointer>
    ) {
        switch width {
        case 2: split(source, elementCount: elementCount, as: UInt16.self, into: planes)
        case 4: split(source, elementCount: elementCount, as: UInt32.self, into: planes)
        case 8: split(source, elementCount: elementCount, as: UInt64.self, into: planes)
        default: planes[0].copyMemory(from: source, byteCount: elementCount)
        }
    }

    /// Writes `elementCount` elements to `destination`, taking byte `p` of each from `planes[p]`.
    static func merge(
        _ planes: UnsafeBufferPointer<UnsafeRawPointer>,
        elementCount: Int,
        width: Int,
        into destination: UnsafeMutableRawPointer
    ) {
        switch width {
        case 2: merge(planes, elementCount: elementCount, as: UInt16.self, into: destination)
        case 4: merge(planes, elementCount: elementCount, as: UInt32.self, into: destination)
        case 8: merge(planes, elementCount: elementCount, as: UInt64.self, into: destination)
        default: destination.copyMemory(from: planes[0], byteCount: elementCount)
        }
    }

    @inline(__always)
    private static func split<Element: FixedWidthInteger & UnsignedInteger>(
        _ source: UnsafeRawPointer,
        elementCount: Int,
        as _: Element.Type,
        into planes: UnsafeMutableBufferPointer<UnsafeMutableRawPointer>
    ) {
        let width = MemoryLayout<Element>.size
        for plane in 0..<width {
            let destination = planes[plane]
            for index in 0..<elementCount {
                let element = Element(
                    littleEndian: source.loadUnaligned(fromByteOffset: index &* width, as: Element.self)
                )
                destination.storeBytes(
                    of: UInt8(truncatingIfNeeded: element &>> (plane &* 8)), toByteOffset: index, as: UInt8.self
                )
            }
        }
    }

    @inline(__always)
    private static func merge<Element: FixedWidthInteger & UnsignedInteger>(
        _ planes: UnsafeBufferPointer<UnsafeRawPointer>,
        elementCount: Int,
        as _: Element.Type,
        into destination: UnsafeMutableRawPointer
    ) {
        let width = MemoryLayout<Element>.size
        for index in 0..<elementCount {
            var element: Element = 0
            for plane in 0..<width {
                element |= Element(planes[plane].load(fromByteOffset: index, as: UInt8.self)) &<< (plane &* 8)
            }
            destination.storeBytes(of: element.littleEndian, toByteOffset: index &* width, as: Element.self)
        }
    }
}
