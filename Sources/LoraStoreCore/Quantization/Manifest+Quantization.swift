import Foundation

extension Manifest {
    /// The quantized weights a base's safetensors files record in their `lorastore.quantization` metadata
    /// (what `pull` writes for a quantized base), so that pushing a pulled quantized base gives it back as it
    /// was; nil when no file records any.
    /// - Throws: ``StoreError/invalidInput(path:reason:)`` naming the file when the record is not readable.
    static func recordedQuantization(in fileMetadata: [String: [String: String]]) throws -> [String: QuantizedWeight]? {
        var weights: [String: QuantizedWeight] = [:]
        for (file, metadata) in fileMetadata.sorted(by: { $0.key < $1.key }) {
            guard let text = metadata[BaseQuantization.metadataKey] else { continue }
            do {
                weights.merge(try JSONDecoder().decode([String: QuantizedWeight].self, from: Data(text.utf8))) { first, _ in first }
            } catch {
                throw StoreError.invalidInput(path: file, reason: "its \(BaseQuantization.metadataKey) metadata is not readable: \(error)")
            }
        }
        return weights.isEmpty ? nil : weights
    }

    /// What is wrong with ``quantization`` against the tensors, or nil: each quantized weight must be a
    /// tensor of its scheme's stored type and shape for its logical `[rows, columns]`, with its `.scale`
    /// companion (F32 `[rows]`) where the scheme has one, and a float logical type.
    func quantizationProblem() -> String? {
        guard let quantization else { return nil }
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, weight) in quantization.sorted(by: { $0.key < $1.key }) {
            guard weight.shape.count == 2, weight.rows >= 0, weight.columns >= 0, weight.dtype.isMergeable else {
                return "quantized weight \"\(name)\" must be a 2-D F32, F16 or BF16 weight, not \(weight.dtype) \(weight.shape)"
            }
            guard let stored = weight.scheme.storedShape(rows: weight.rows, columns: weight.columns) else {
                return "quantized weight \"\(name)\": \(weight.scheme.rawValue) cannot store rows of \(weight.columns) values"
            }
            guard let tensor = byName[name], tensor.dtype == weight.scheme.storedDType, tensor.shape == stored else {
                return "quantized weight \"\(name)\" must be a \(weight.scheme.storedDType) \(stored) tensor for \(weight.scheme.rawValue) \(weight.shape)"
            }
            let scaleShape = weight.scheme.scaleShape(rows: weight.rows)
            guard (weight.scaleTensor == nil) == (scaleShape == nil) else {
                return "quantized weight \"\(name)\": \(weight.scheme.rawValue) \(scaleShape == nil ? "has no" : "needs a") scale tensor"
            }
            if let scaleName = weight.scaleTensor {
                guard let scale = byName[scaleName], scale.dtype == .f32, scale.shape == scaleShape else {
                    return "the scales of \"\(name)\" must be an F32 \(scaleShape ?? []) tensor \"\(scaleName)\""
                }
            }
        }
        return nil
    }
}
