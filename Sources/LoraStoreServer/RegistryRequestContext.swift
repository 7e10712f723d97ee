import Hummingbird
import LoraStoreCore

/// The request context of the registry: Hummingbird's core storage plus the token the request presented.
public struct RegistryRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The live token of the `Authorization: Bearer` header, set by ``AuthenticationMiddleware``.
    public var token: AccessToken?

    public init(source: Source) {
        coreContext = .init(source: source)
        token = nil
    }
}
