/// The version of lorastore, recorded in build provenance.
public enum LoraStoreVersion {
    public static let current = "0.1.0"
}
