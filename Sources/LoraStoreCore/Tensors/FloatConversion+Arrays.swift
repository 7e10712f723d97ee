extension FloatConversion {
    /// The values of F32, F16 or BF16 tensor bytes as an F32 array (the form every merge and measurement
    /// computes on).
    public static func floats(_ bytes: UnsafeRawBufferPointer, dtype: DType) throws -> [Float] {
        let count = bytes.count / (dtype.byteWidth ?? 1)
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let source = bytes.baseAddress, let destination = buffer.baseAddress {
                try convert(source, from: dtype, to: destination, as: .f32, count: count)
            }
            initialized = count
        }
    }
}
