/// How two base manifests relate, tensor by tensor, as far as their manifests tell: whether they can be one
/// model (pushed in another shard layout or with other small files, one a quantized copy of the other, or
/// one cast to other floating-point types) or are two.
///
/// An adapter records the base it was pushed against. Merging it into another base of the same shapes
/// gives a model nobody trained (a chat fine-tune's adapter on the pretrained weights, say), so builds
/// compare the two bases first (``Store/checkAdapterBases(_:base:visibleTo:in:)``). Tensors of one type are
/// compared by digest; a weight that either base holds quantized, by its logical shape (its codes differ
/// from the weights they were made from while the model is the same); tensors of two floating-point types
/// are left to the store to compare by value (``castTensors``).
struct BaseComparison: Sendable {
    /// Tensors both bases hold unquantized with the same digest.
    let equalTensors: Int
    /// Tensors of either base, each counted once (a quantized weight's scale companion left out).
    let tensors: Int
    /// Whether some tensor is in one base only, or differs: other bytes in the same type, or another shape.
    let hasDifference: Bool
    /// Unquantized tensors of one name and shape held in two floating-point types (F32, F16, BF16), as
    /// (first base's, second base's): the same values if one was cast from the other.
    let castTensors: [(first: TensorEntry, second: TensorEntry)]

    init(_ first: Manifest, _ second: Manifest) {
        let firstTensors = Self.tensorsByName(first)
        let secondTensors = Self.tensorsByName(second)
        var equal = 0
        var different = false
        var cast: [(first: TensorEntry, second: TensorEntry)] = []
        for (name, one) in firstTensors {
            guard let other = secondTensors[name] else {
                different = true
                continue
            }
            if one.quantized || other.quantized {
                // A quantized weight stands for the weight it was made from, which may have been cast too.
                different = different || one.signature.shape != other.signature.shape
            } else if one.entry.digest == other.entry.digest {
                equal += 1
            } else if one.entry.shape == other.entry.shape, one.entry.dtype != other.entry.dtype,
                      one.entry.dtype.isMergeable, other.entry.dtype.isMergeable {
                cast.append((one.entry, other.entry))
            } else {
                different = true
            }
        }
        let onlyInSecond = secondTensors.keys.filter { firstTensors[$0] == nil }.count
        equalTensors = equal
        tensors = firstTensors.count + onlyInSecond
        hasDifference = different || onlyInSecond > 0
        castTensors = cast.sorted { $0.first.name < $1.first.name }
    }

    /// A tensor as the comparison sees it.
    private struct Tensor {
        let entry: TensorEntry
        let signature: AdapterLayout.Signature
        let quantized: Bool
    }

    /// The manifest's logical tensors by name (the first of a repeated name).
    private static func tensorsByName(_ manifest: Manifest) -> [String: Tensor] {
        let entries = Dictionary(manifest.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let quantized = manifest.quantization ?? [:]
        var tensors: [String: Tensor] = [:]
        for (name, signature) in manifest.logicalTensors where tensors[name] == nil {
            guard let entry = entries[name] else { continue }
            tensors[name] = Tensor(entry: entry, signature: signature, quantized: quantized[name] != nil)
        }
        return tensors
    }
}
