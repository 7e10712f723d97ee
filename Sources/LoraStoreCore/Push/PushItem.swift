import Foundation

/// One folder (or `.safetensors` file) of a batch push and the tag it goes to; see
/// ``Store/push(_:options:)``.
public struct PushItem: Sendable, Hashable {
    /// The adapter or model folder, or a single `.safetensors` file.
    public var path: URL
    /// Where to tag it: `NAME[:TAG]`.
    public var reference: Reference

    public init(path: URL, reference: Reference) {
        self.path = path
        self.reference = reference
    }
}
