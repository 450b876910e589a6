"""`simreal experiment NAME` and `simreal report DIR`: named protocols end to end, with an HTML report."""


def experiment() -> None:
    """Run a named experiment."""


def report() -> None:
    """Rebuild an experiment's report."""
