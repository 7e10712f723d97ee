/// Why a synthetic model or adapter cannot be generated.
public enum SyntheticError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Synthetic tensors are F32, F16 or BF16 (adapters: F32 or BF16).
    case unsupportedDType(DType)
    /// The dimensions do not describe a valid model or adapter.
    case invalidConfiguration(String)
    /// The destination exists and is not an empty folder.
    case destinationNotEmpty(path: String)

    public var description: String {
        switch self {
        case .unsupportedDType(let dtype): "synthetic tensors cannot be \(dtype.rawValue)"
        case .invalidConfiguration(let reason): "invalid synthetic configuration: \(reason)"
        case .destinationNotEmpty(let path): "\(path) exists and is not an empty folder"
        }
    }
}
