// swift-tools-version:6.1
import PackageDescription

/// Merge kernels and half-precision conversions need AVX2/FMA/F16C; the x86_64 default (SSE2) turns them
/// into library calls. Haswell is the oldest x86_64 level every machine we run on has; never `native`,
/// which would make the binary depend on the build host.
var optimizationSettings: [SwiftSetting] = []
#if arch(x86_64)
optimizationSettings.append(.unsafeFlags(["-target-cpu", "haswell"]))
#endif

/// The AVX-512 kernels (merge, tANS lane decoding) are optimised in every configuration: debug builds (the
/// tests) would otherwise keep their registers in memory. Their 512-bit functions carry their own target
/// attributes and are only called after a CPUID check, so the rest of the target needs no CPU flags; it is
/// tuned (not restricted) for Haswell, the Swift code's level. -O3 with that tuning made the merge kernel's
/// low-rank loops faster than -O2 did: in lorastore-bench on a 1 GiB BF16 base (AMD EPYC Zen 5, 2 threads,
/// time inside the kernel summed over a merge), rank 8 31.6 → 24.4 ms and rank 16 44.3 → 36.4 ms; ranks 32
/// to 64, bound by their multiply-adds, within 2%. Either flag alone gained less than half of that.
var kernelSettings: [CSetting] = [.unsafeFlags(["-O3"])]
#if arch(x86_64)
kernelSettings.append(.unsafeFlags(["-mtune=haswell"]))
#endif

let package = Package(
    name: "lorastore",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LoraStoreCore", targets: ["LoraStoreCore"]),
        .library(name: "LoraStoreServer", targets: ["LoraStoreServer"]),
        .library(name: "LoraStoreClient", targets: ["LoraStoreClient"]),
        .executable(name: "lorastore", targets: ["lorastore"]),
        .executable(name: "lorastore-bench", targets: ["LoraStoreBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .executableTarget(
            name: "EmbedMigrationsTool",
            path: "Sources/EmbedMigrationsTool"
        ),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["EmbedMigrationsTool"]
        ),
        .target(
            name: "CSIMDKernels",
            cSettings: kernelSettings
        ),
        .target(
            name: "LoraStoreCore",
            dependencies: [
                "CZlib",
                "CSIMDKernels",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: optimizationSettings,
            plugins: ["EmbedMigrations"]
        ),
        .target(
            name: "LoraStoreServer",
            dependencies: [
                "LoraStoreCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: optimizationSettings
        ),
        .target(
            name: "LoraStoreClient",
            dependencies: [
                "LoraStoreCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: optimizationSettings
        ),
        .executableTarget(
            name: "lorastore",
            dependencies: [
                "LoraStoreCore",
                "LoraStoreServer",
                "LoraStoreClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimizationSettings
        ),
        .executableTarget(
            name: "LoraStoreBenchmarks",
            dependencies: ["LoraStoreCore", "CZlib", "CSIMDKernels"],
            swiftSettings: optimizationSettings
        ),
        .testTarget(
            name: "LoraStoreCoreTests",
            dependencies: ["LoraStoreCore", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Blobs/ExponentCodecV1"],
            swiftSettings: optimizationSettings
        ),
        .testTarget(
            name: "LoraStoreServerTests",
            dependencies: [
                "LoraStoreServer",
                "LoraStoreClient",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: optimizationSettings
        ),
    ]
)
