"""How steps fail: one attempt (``StepError``), or for good (``StepFailed``)."""

from __future__ import annotations


class StepError(Exception):
    """One attempt of a step failed. ``retryable`` says whether another attempt may help.

    ``inner`` is set when a nested step failed for good (in a branch, a loop body, a route),
    so the final message can name the innermost step.
    """

    def __init__(self, message: str, *, retryable: bool = True, inner: StepFailed | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.inner = inner


class StepFailed(Exception):
    """A step failed after all its attempts; it ends the steps around it, up to the run."""

    def __init__(self, path: list[str], message: str) -> None:
        super().__init__(message)
        self.path = path  # outermost step first, the failing step last
        self.message = message

    @property
    def step(self) -> str:
        return self.path[-1]

    def describe(self) -> str:
        text = f"Step {self.step!r} failed: {self.message}"
        if len(self.path) > 1:
            text += f" (in {' > '.join(repr(p) for p in self.path[:-1])})"
        return text

    @classmethod
    def of(cls, name: str, error: StepError) -> StepFailed:
        if error.inner is not None:
            return cls([name, *error.inner.path], error.inner.message)
        return cls([name], error.message)
