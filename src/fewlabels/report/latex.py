"""LaTeX pieces every generated table shares: escaping text and the ``\\fl{key}`` macro definitions."""

from __future__ import annotations


def tex_escape(s: str) -> str:
    """Text made safe for a LaTeX table cell (the characters our names and claims contain)."""
    return str(s).replace("&", r"\&").replace("%", r"\%").replace("_", r"\_").replace("#", r"\#")


def macro(key: str, value) -> str:
    """The definition behind ``\\fl{key}`` (paper/ms.tex reads every generated number through it)."""
    return rf"\expandafter\def\csname fl@{key}\endcsname{{{value}}}"


def styled(df, column_format: str, escape: list[str] = (), environment: str | None = None, **kw) -> str:
    """``df`` as a booktabs table through pandas' ``Styler.to_latex`` (``hrules=True``); the columns in
    ``escape`` are plain text that Styler escapes for LaTeX, the others are LaTeX already. The index
    is hidden: put the row names in a column."""
    st = df.style.hide(axis="index")
    if escape:
        st = st.format(escape="latex", subset=list(escape))
    return st.to_latex(column_format=column_format, hrules=True, environment=environment, **kw)


def fit(tabular: str) -> str:
    """A tabular shrunk to the text width when it is wider (adjustbox's ``max width``; ms.tex loads
    adjustbox): a wide generated table never runs into the margin."""
    return "\\begin{adjustbox}{max width=\\linewidth}\n" + tabular.rstrip("\n") + "\n\\end{adjustbox}\n"
