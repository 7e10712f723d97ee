import HTTPTypes

extension HTTPField.Name {
    // Literal, valid header names: the initializer only fails on invalid tokens.
    /// The Hub's commit id of the revision a file was resolved at.
    static let xRepoCommit = Self("X-Repo-Commit")!
    /// The Hub's SHA-256 of a large (LFS) file.
    static let xLinkedEtag = Self("X-Linked-Etag")!
    /// The Hub's size of a large (LFS) file.
    static let xLinkedSize = Self("X-Linked-Size")!
    /// The Hub's error code (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).
    static let xErrorCode = Self("X-Error-Code")!
    /// The Hub's error message.
    static let xErrorMessage = Self("X-Error-Message")!
    /// The digest of a manifest sent by the registry.
    static let lorastoreDigest = Self("Lorastore-Digest")!
}
