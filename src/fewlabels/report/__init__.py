"""Reporting: everything that reads finished runs and writes the study's outputs: metrics.csv
(``aggregate``), the scorecard (``claims``), LaTeX tables (``tables``, ``ablation``, ``benchmarks``),
figures (``figures/``), the PDF (``paper``), the Snakemake report's tables (``snakemake_report``), and
the time a configuration will take (``estimate``). Nothing here changes a run's numbers.
"""
