"""A model YAML file, torch-free: read into a round-trip tree (``model_doc``), its rows edited in that tree
(``tree_edits``, ``row_edits``), its text read line by line in block and flow style (``line_layout``), and the one
path from an edited tree back to text (``text_writer``), with the one index-comment rule (``comments``)."""
