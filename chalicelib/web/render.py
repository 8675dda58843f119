"""The templates of every page (``templates/``), rendered by Jinja2 with autoescaping.

One ``Environment``, built on the first page request and kept: the token endpoint
and JWT checks never import Jinja2 (SPEC §9). Every value a template prints is
escaped (``autoescape``), and a name a template uses but the page did not pass is
an error (``StrictUndefined``), never an empty string. The plain-text bodies of
mails (``mail/*.txt``) are the one exception to escaping: text is not HTML.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    from chalicelib.web.scope_words import SCOPE_TEXT

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",), disabled_extensions=("txt",),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.globals["scope_text"] = SCOPE_TEXT
    return env


def render(template: str, /, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def trusted(text: str) -> Markup:
    """Our own file's text (the stylesheet, the script), printed as it is."""
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 - static/ files of this package, never request data
