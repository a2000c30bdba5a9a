"""ProbeError: a failure with a contract error type (run.json `error.type`), e.g. invalid_config."""


class ProbeError(Exception):
    def __init__(self, type_, message):
        Exception.__init__(self, message)
        self.type = type_
        self.message = message
        self.extra = {}  # more run.json error fields (missing_file: path, missing_module: module)
