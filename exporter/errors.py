"""The one exception hierarchy of smswatch; the CLI maps it to exit codes."""


class SmswatchError(Exception):
    """Base of every error smswatch raises on purpose."""

    exit_code = 1


class ConfigError(SmswatchError):
    """The configuration (file, flag or environment) is invalid: exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        self.field_path = path
        self.source_file = source
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class SourceError(SmswatchError):
    """A poll of an upstream API failed; `kind` is the `error` label value."""

    def __init__(self, source: str, kind: str, message: str) -> None:
        self.source = source
        self.kind = kind
        super().__init__(f"source={source} error={kind}: {message}")


class StateError(SmswatchError):
    """The state store cannot be opened or is inconsistent."""


class ReportError(SmswatchError):
    """A report cannot be produced: Prometheus unreachable or failing, or no data in the
    period (exit code 1). Bad report options are a `ConfigError`."""
