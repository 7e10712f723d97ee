/// Which tensors a store compresses, per manifest kind.
///
/// Adapter tensors are small and read once per merge, so they are compressed by default. Base tensors are
/// read by every merge and pull, so by default they stay raw and are memory-mapped at disk speed; a store
/// short of disk can compress them too. Build tensors follow the base's setting.
public struct CodecPolicy: Sendable, Hashable, Codable {
    public var compressBase: Bool
    public var compressAdapters: Bool

    public init(compressBase: Bool = false, compressAdapters: Bool = true) {
        self.compressBase = compressBase
        self.compressAdapters = compressAdapters
    }

    /// The encoding for a new tensor blob of `dtype` in a manifest of `kind`: ``ExponentCodec`` for F32, F16 and
    /// BF16 (smaller and several times faster to decode than byte-grouped zlib), byte-grouped zlib for the rest.
    public func encoding(for kind: ManifestKind, dtype: DType) -> BlobEncoding {
        let compress = kind == .adapter ? compressAdapters : compressBase
        guard compress, let width = dtype.byteWidth else { return .raw }
        if let layout = FloatLayout(dtype) { return .floatingPoint(layout) }
        return .compressed(elementWidth: width)
    }

    /// Small files (configs, tokenizers) are compressed whenever it gains, byte by byte.
    public static let fileEncoding = BlobEncoding.compressed(elementWidth: 1)

    static let settingKey = "codec_policy"
}
