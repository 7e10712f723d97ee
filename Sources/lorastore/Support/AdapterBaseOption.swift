import ArgumentParser

/// `--allow-other-base`, for the commands that ask for a merge: without it, an adapter pushed against
/// another model than the base is refused (``LoraStoreCore/StoreError/adapterForOtherBase(adapter:pushedFor:base:equalTensors:tensors:)``).
struct AdapterBaseOption: ParsableArguments {
    @Flag(
        help: """
            Merge adapters even into a base other than the model they were pushed for (a fine-tune of it you \
            know the adapter suits, say). Without it they are refused: same shapes do not make the same model \
            (copies in another layout, type or quantization are recognised; a re-export with tensors added or \
            left out is not).
            """)
    var allowOtherBase = false
}
