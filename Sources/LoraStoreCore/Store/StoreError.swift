/// Errors of store operations, each with a message for people that names the file, tensor or reference.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The index was written by a newer lorastore whose schema this build does not know.
    case newerSchema(path: String)
    /// The index file is damaged, not a database, or missing or empty while the store holds blobs.
    case damagedIndex(path: String, reason: String)
    /// Nothing in the store answers to the reference.
    case notFound(String)
    /// The reference names a manifest of another kind than the operation needs.
    case wrongKind(reference: String, expected: ManifestKind, found: ManifestKind)
    /// A repository holds manifests of one kind only.
    case repositoryKind(repository: String, holds: ManifestKind, pushed: ManifestKind)
    /// The folder or file to push is not a model or adapter lorastore can read.
    case invalidInput(path: String, reason: String)
    /// An adapter tensor does not fit the base (or the adapter config), named by its key.
    case adapterMismatch(file: String, key: String, reason: String)
    /// A floating-point tensor holds NaN or infinity.
    case nonFinite(file: String, tensor: String)
    /// An adapter push names no base and none is recorded for the repository.
    case baseRequired(adapter: String)
    /// A merge input or option is not allowed, with the reason.
    case mergeRefused(String)
    /// An adapter was pushed against another model than the base of the merge or build asked for
    /// (``Store/checkAdapterBases(_:base:visibleTo:in:)``): the two bases have `equalTensors` of their `tensors` in
    /// common, or nil when the store no longer has the adapter's.
    case adapterForOtherBase(adapter: String, pushedFor: String, base: String, equalTensors: Int?, tensors: Int?)
    /// A merged tensor came out with NaN or infinite values (PEFT's `safe_merge` refuses these too).
    case nonFiniteResult(tensor: String)
    /// Rebuilding an evicted build gave other bytes than its first materialization recorded.
    case rebuildMismatch(build: Digest, item: String, expected: Digest, actual: Digest)
    /// Rebuilding an evicted build would make other tensors than its first materialization recorded.
    case rebuildTensorsDiffer(build: Digest, missing: [String], added: [String])
    /// Rebuilding a build recorded under another merge engine version gave other bytes.
    case engineChanged(build: Digest, recorded: String, current: String, item: String)
    /// Removing the last name of a base or adapter that builds are made from, without forcing.
    case inUse(reference: String, builds: [String])
    /// Another process evicted a build each time it was materialized to be served.
    case evictedWhileServing(build: Digest)
    /// Garbage collection or a repair held the store's maintenance lock for longer than
    /// ``Store/maintenanceWait``.
    case maintenanceBusy(waited: Duration)
    /// Garbage collection swept the index (the rows in `removed` are gone) but could not delete some of the
    /// files; they are left as stray files, which the next collection removes.
    case incompleteCollection(removed: GarbageCollectionReport, failures: [String])

    /// "an" before "adapter", "a" before the other kinds.
    private static func article(_ kind: ManifestKind) -> String {
        kind == .adapter ? "an" : "a"
    }

    /// How an adapter's own base relates to the one asked for, for ``adapterForOtherBase(adapter:pushedFor:base:equalTensors:tensors:)``.
    private static func relation(equalTensors: Int?, tensors: Int?) -> String {
        guard let equalTensors, let tensors else { return ", which this store no longer has" }
        return ", and the two bases hold different weights (\(equalTensors) of their \(tensors) tensors identical): "
            + "they look like different models (lorastore recognises a copy in another layout, type or quantization, "
            + "not a re-export with tensors added or left out)"
    }

    public var description: String {
        switch self {
        case .newerSchema(let path):
            "\(path) was written by a newer lorastore; upgrade lorastore to open this store"
        case .damagedIndex(let path, let reason):
            "the store's index \(path) is damaged (\(reason)): \(StoreIndex.damageRemedy)"
        case .notFound(let reference):
            "\(reference): not found in the store"
        case .wrongKind(let reference, let expected, let found):
            "\(reference) is \(Self.article(found)) \(found), not \(Self.article(expected)) \(expected)"
        case .repositoryKind(let repository, let holds, let pushed):
            "\(repository) holds \(holds) manifests; \(Self.article(pushed)) \(pushed) cannot be pushed or tagged there (a repository holds one kind)"
        case .invalidInput(let path, let reason):
            "\(path): \(reason)"
        case .adapterMismatch(let file, let key, let reason):
            "\(file): tensor \"\(key)\": \(reason)"
        case .nonFinite(let file, let tensor):
            "\(file): tensor \"\(tensor)\" contains NaN or infinite values"
        case .baseRequired(let adapter):
            "\(adapter): no base given (use --base REF); none is recorded from an earlier push of this repository"
        case .mergeRefused(let reason):
            "cannot merge: \(reason)"
        case .adapterForOtherBase(let adapter, let pushedFor, let base, let equal, let tensors):
            "adapter \(adapter) was pushed for base \(pushedFor), not \(base)"
                + Self.relation(equalTensors: equal, tensors: tensors)
                + "; to merge it into \(base) anyway, pass --allow-other-base (on a registry: build create --allow-other-base)"
        case .nonFiniteResult(let tensor):
            "cannot merge: the merged \(tensor) has NaN or infinite values"
        case .rebuildMismatch(let build, let item, let expected, let actual):
            "rebuilding build \(build.short) gave different bytes for \(item): recorded \(expected.short), now \(actual.short); nothing was stored (is the base or an adapter blob damaged? run `lorastore verify --deep`)"
        case .rebuildTensorsDiffer(let build, let missing, let added):
            "rebuilding build \(build.short) would make other tensors than it recorded (missing: \(missing.isEmpty ? "none" : missing.joined(separator: ", ")); new: \(added.isEmpty ? "none" : added.joined(separator: ", "))); nothing was stored (run `lorastore verify`: was the index changed?)"
        case .engineChanged(let build, let recorded, let current, let item):
            "build \(build.short) was recorded by merge engine \(recorded) and this lorastore merges by \(current), which gives other bytes for \(item); nothing was stored. Create the build again (lorastore build create, same inputs) to pull it with this engine"
        case .inUse(let reference, let builds):
            "\(reference) is used by \(builds.count) build(s): \(builds.joined(separator: ", ")); remove them first or pass --force"
        case .evictedWhileServing(let build):
            "build \(build.short) was evicted by another process each time it was materialized; try again, or raise the cache budget"
        case .maintenanceBusy(let waited):
            "the store is busy with garbage collection or a repair (waited \(String(format: "%g", waited.inSeconds)) s for it); try again when it has finished"
        case .incompleteCollection(let removed, let failures):
            "garbage collection removed \(removed.manifests.count) manifest(s) and \(removed.blobs.count) blob(s) from the index "
                + "but could not delete \(failures.count) file(s), left for the next `lorastore gc`: "
                + failures.joined(separator: "; ")
        }
    }
}
