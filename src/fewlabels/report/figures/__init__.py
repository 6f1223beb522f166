"""The paper's figures, drawn from files the workflow made; ``python -m fewlabels.report.figures <name>``.

``common`` holds what every family shares (``save``, ``accuracy_vs_labels``, the method order); the
families (``accuracy``, ``aae``, ``ae``, ``gan``, ``transfer``) import it, never each other.
"""
