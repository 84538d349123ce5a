"""Where a module class comes from: the catalog, a plugin file that registers (``plugins``), a plain ``nn.Module``
class in a file or a library behind a generated adapter (``plain_classes``, ``named_classes``, ``libraries``), and
what a YAML records under ``attnsurgeon_plugins`` (``recorded``). Files are read as syntax trees (``source_tree``)
and imported only to build a model (``file_import``)."""

from attnsurgeon.sources import plain_plugins, plugins

__all__ = ["plain_plugins", "plugins"]
