"""The one way templates/ are rendered: jinja2 with StrictUndefined, so a
value a template needs and is not given is an error, never an empty string."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@functools.lru_cache(maxsize=None)
def _env(trim: bool, html: bool) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, autoescape=html,
                              keep_trailing_newline=not html, trim_blocks=trim, lstrip_blocks=trim)


def render(name: str, trim: bool = False, html: bool = False, **values) -> str:
    """templates/<name> with `values`; trim: jinja2's trim_blocks and
    lstrip_blocks (for line-oriented Verilog); html: autoescape."""
    return _env(trim, html).get_template(name).render(**values)
