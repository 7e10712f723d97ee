/// Why a command cannot go on, for people. ArgumentParser prints it as `Error: ...` and exits with status 1;
/// a `ValidationError` thrown while a command runs would add the usage of the top-level command instead of
/// this one, so checks made in `run()` throw this.
struct CommandError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
