import CSIMDKernels

/// The code that decodes ``ExponentCodec``'s lane streams (``ANSLanes``). All give the same symbols and the
/// same errors; they differ in speed, and in the CPUs that run them.
package enum LaneDecoder: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Swift, one lane at a time, on every CPU the package builds for.
    case portable
    /// C with AVX2, eight lanes per register: gathers, and a permutation in place of an expanding load.
    case avx2
    /// C with AVX-512 VBMI2, sixteen lanes per register: gathers and expanding loads.
    case avx512

    /// The fastest decoder this CPU runs, used by default.
    package static let preferred: LaneDecoder = [.avx512, .avx2].first { $0.isAvailable } ?? .portable

    /// Whether this CPU (and its operating system) runs the decoder.
    package var isAvailable: Bool {
        switch self {
        case .portable: true
        case .avx2: Self.avx2Supported
        case .avx512: Self.avx512Supported
        }
    }

    package var description: String { rawValue }

    private static let avx2Supported = lorastore_avx2_available() != 0
    private static let avx512Supported = lorastore_avx512_vbmi2_available() != 0
}
