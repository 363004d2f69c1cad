"""reclight plugin: EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

This module is what the entry point names, so it is imported every time ``reclight`` starts:
it imports neither torch nor the model, and names the model class as a ``"module:Class"``
string that reclight imports only when ``ease`` is chosen. The command's body imports what it
needs when it runs.
"""

from __future__ import annotations

from typing import Any

import reclight

__version__ = "1.0.0"


@reclight.hookimpl
def register_models(register: Any) -> None:
    """Register ``ease``; the class is imported only when the model is built."""
    register("ease", "reclight_ease.model:EASE",
             description="EASE (Steck 2019): closed-form item-item weights, implicit top-N")


@reclight.hookimpl
def register_commands(cli: Any) -> None:
    """Add ``reclight ease-similar``: the items an EASE checkpoint links most to given items."""
    from reclight_ease.commands import similar

    cli.add_command(similar)
