/// What a build on a quantized base does with the quantized weights the adapters touch (part of the
/// recipe).
public enum QuantizedBuildPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Dequantize, add the deltas in F32 and quantize again in the base's scheme: the smallest output, but
    /// a delta small against the quantization step moves no code and is lost (the fidelity report says
    /// how much; ``MergeOptions/maxAdapterLoss`` guards against it).
    case requantize
    /// Write the quantized weights as floats (``MergeOptions/outputType``, else the type they were
    /// quantized from), each the dequantized base plus the deltas, rounded once.
    case dequantize
    /// Merge nothing: the quantized base as stored, plus each adapter as an untouched PEFT folder under
    /// `adapters/`, for runtimes that apply LoRA at inference.
    case separate
}
