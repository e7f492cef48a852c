"""`python -m debuglab.notebooks`: regenerate the committed notebooks from the catalog."""

from debuglab.notebooks.content import write

for changed in write():
    print("wrote", changed)
