"""LaTeX pieces every generated table shares: escaping text and the ``\\fl{key}`` macro definitions."""

from __future__ import annotations


def tex_escape(s: str) -> str:
    """Text made safe for a LaTeX table cell (the characters our names and claims contain)."""
    return str(s).replace("&", r"\&").replace("%", r"\%").replace("_", r"\_").replace("#", r"\#")


def macro(key: str, value) -> str:
    """The definition behind ``\\fl{key}`` (paper/ms.tex reads every generated number through it)."""
    return rf"\expandafter\def\csname fl@{key}\endcsname{{{value}}}"
