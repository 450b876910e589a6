"""`simreal predict`: run a trained model over a dataset or an image folder."""


def predict() -> None:
    """Predict depth or masks with a trained run."""
