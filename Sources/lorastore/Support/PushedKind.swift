import ArgumentParser
import LoraStoreCore

/// What `push --kind` may name: builds are created with `build create`, never pushed.
enum PushedKind: String, ExpressibleByArgument, CaseIterable {
    case base
    case adapter

    var manifestKind: ManifestKind { self == .base ? .base : .adapter }
}
