/// What `verify` found: every fault named, and what `--repair` did about it.
public struct VerifyReport: Sendable, Hashable, Codable {
    /// One problem.
    public struct Fault: Sendable, Hashable, Codable {
        public enum Kind: String, Sendable, Hashable, Codable {
            /// An indexed blob's file is not there.
            case missingBlob = "missing-blob"
            /// An indexed blob's file has another size than the index says.
            case wrongSize = "wrong-size"
            /// A blob's bytes do not hash to its digest (found with `--deep`).
            case corruptBlob = "corrupt-blob"
            /// A file under `blobs/` that the index does not know.
            case orphanFile = "orphan-file"
            /// A leftover file under `tmp/`.
            case strayTemporaryFile = "stray-temporary-file"
            /// A manifest that references a blob the index does not have.
            case danglingReference = "dangling-reference"
            /// SQLite finds the index file itself damaged (`PRAGMA integrity_check`), or cannot read it;
            /// nothing else is checked then, since every other check reads the index.
            case damagedIndex = "damaged-index"

            /// Whether the fault is only space to reclaim: a file nothing references (left by an interrupted
            /// write, or by an eviction that left its files to garbage collection while the store was busy).
            /// Every stored model is still whole; `gc` removes it after its grace period, `--repair` now.
            public var isLeftover: Bool {
                self == .orphanFile || self == .strayTemporaryFile
            }
        }

        public var kind: Kind
        /// The blob concerned, when there is one.
        public var digest: Digest?
        /// The file concerned.
        public var path: String
        /// What it is and what uses it, for people.
        public var detail: String
        /// Whether `--repair` fixed it (dropped a build tensor so the next pull rebuilds it, or removed a stray
        /// file).
        public var repaired: Bool
    }

    /// The report of a store whose index cannot be opened at all (``StoreError/damagedIndex(path:reason:)``):
    /// its one fault, so that scripts read one shape of answer whatever the damage.
    public static func damagedIndex(path: String, detail: String, deep: Bool) -> VerifyReport {
        VerifyReport(
            blobsChecked: 0, deep: deep,
            faults: [Fault(kind: .damagedIndex, digest: nil, path: path, detail: detail, repaired: false)])
    }

    public var blobsChecked: Int
    public var deep: Bool
    public var faults: [Fault]

    /// Faults that leave a stored model damaged and that repair could not fix: damaged base or adapter blobs
    /// (push them again). Leftovers are not among them.
    public var unrepairable: [Fault] { faults.filter { !$0.repaired && !$0.kind.isLeftover } }

    /// Leftover files still there (``Fault/Kind/isLeftover``).
    public var leftovers: [Fault] { faults.filter { !$0.repaired && $0.kind.isLeftover } }
}
