"""User-facing errors: each is one readable line; the CLI prints it and exits with code 2."""

from __future__ import annotations


class DeforgeError(Exception):
    """Base of every error caused by user input (settings, media, models, output folder)."""


class SettingsError(DeforgeError):
    """A settings file or dict is invalid. Holds one message per problem."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ScheduleError(SettingsError):
    """A keyframe schedule or expression is malformed.

    The message names the setting, quotes the text and points at the (1-based) column.
    """

    def __init__(self, reason: str, text: str, column: int | None = None, setting: str | None = None):
        self.reason = reason
        self.text = text
        self.column = column
        self.setting = setting
        super().__init__(self._format())

    def _format(self) -> str:
        where = f" at column {self.column}" if self.column is not None else ""
        name = f"{self.setting}: " if self.setting else ""
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        return f"{name}{self.reason}{where} in {shown!r}"

    def with_setting(self, setting: str) -> "ScheduleError":
        """The same error, attributed to a named setting."""
        return ScheduleError(self.reason, self.text, self.column, setting)


class ModelError(DeforgeError):
    """A model could not be found, downloaded, verified or loaded."""


class InputMediaError(DeforgeError):
    """An init image, mask, or video could not be read or is unusable."""


class OutputError(DeforgeError):
    """The output folder cannot be written (permissions, full disk, unsafe path)."""
