"""The built-in attention modules, one file per paper (as ``timm/layers/`` keeps blocks), each registered with
:func:`attnsurgeon.catalog.registry.register_module` and read torch-free by :mod:`attnsurgeon.catalog.scan`;
``building_blocks`` holds the small pieces several of them share."""
