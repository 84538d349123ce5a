"""The scaffold ``attnsurgeon new-module`` fills in: a catalog module and its test (installed as
``attnsurgeon.templates``; :func:`attnsurgeon.ops.scaffold.template_dir` finds it)."""
