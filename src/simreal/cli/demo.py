"""`simreal demo`: the main job, out of the box."""


def demo() -> None:
    """Render a small labelled colonoscopy set and write a contact sheet."""
