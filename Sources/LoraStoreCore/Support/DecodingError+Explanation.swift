extension DecodingError {
    /// The failure as a person reads it: where in the document (`files[2].size`) and what was wrong there,
    /// instead of the enum dump `String(describing:)` gives.
    public var explanation: String {
        switch self {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return Self.location(context) + context.debugDescription
        case .keyNotFound(let key, let context):
            return Self.location(context) + "the field \"\(key.stringValue)\" is missing"
        @unknown default:
            return "\(self)"
        }
    }

    private static func location(_ context: Context) -> String {
        guard !context.codingPath.isEmpty else { return "" }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        return "at \(path.hasPrefix(".") ? String(path.dropFirst()) : path): "
    }
}
