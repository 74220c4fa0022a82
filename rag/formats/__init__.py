"""Partitioners of our own for formats `unstructured` reads poorly or not at all; each module's
function takes a file's path and returns `rag.models.Element`s (registered in
`rag.parsing.OWN_PARTITIONERS`)."""
