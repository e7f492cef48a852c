"""The student's side in Jupyter: the notebooks, their kernel, and JupyterLab.

Open first: `content` (the welcome and per-bug notebooks, generated from the catalog;
`python -m debuglab.notebooks` regenerates the committed ones), then `kernel` (the
`debuglab` kernel and the folder JupyterLab serves), `student` (the lab's own copy of the
notebooks), `jupyterlab` (the background server), `headless` (running a notebook as CI
does, answering pdb's prompts) and `devstack` (a DevStack host as the notebooks see it).
`commands` holds `debuglab notebook`.
"""
