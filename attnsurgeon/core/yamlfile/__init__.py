"""A model YAML file, torch-free: read into a round-trip tree (``model_doc``), that tree edited in place
(``tree_edits``), its text read and rewritten line by line in block and flow style (``line_layout``), the one path
from an edited tree back to text with the file's layout and line endings (``text_writer``), and the one
index-comment rule (``comments``)."""
