rule fig_accuracy:
    input:
        "results/metrics.csv",
    output:
        pdf=report("paper/generated/fig_accuracy.pdf", caption="../report/fig_accuracy.rst", category="Results"),
        png="paper/generated/fig_accuracy.png",
    log:
        "logs/figures/accuracy.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.figures accuracy --metrics {input} --out {output.pdf} > {log} 2>&1"


# Every figure the paper includes; the paper rule depends on all of them.
PAPER_FIGURES = [
    rules.fig_accuracy.output.pdf,
]
