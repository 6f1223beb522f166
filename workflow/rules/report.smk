# The appendix's cost table, and the tables of the Snakemake report (`snakemake --report report.html`).


rule tab_benchmarks:
    input:
        "results/benchmarks.csv",
    output:
        "paper/generated/tab_benchmarks.tex",
    log:
        "logs/paper/tab_benchmarks.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.benchmarks table --benchmarks {input} --out {output} > {log} 2>&1"


rule report_tables:
    input:
        metrics="results/metrics.csv",
        benchmarks="results/benchmarks.csv",
    output:
        metrics=report("results/report/metrics.html", caption="../report/metrics.rst", category="Tables"),
        benchmarks=report("results/report/benchmarks.html", caption="../report/benchmarks.rst", category="Tables"),
    log:
        "logs/report/tables.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m fewlabels.report.snakemake_report --metrics {input.metrics} --benchmarks {input.benchmarks}"
        " --out-metrics {output.metrics} --out-benchmarks {output.benchmarks} > {log} 2>&1"
