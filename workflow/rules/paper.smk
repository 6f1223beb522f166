rule tables:
    input:
        metrics="results/metrics.csv",
        claims="paper/claims.yaml",
    output:
        results="paper/generated/tab_results.tex",
        scorecard="paper/generated/tab_scorecard.tex",
        paired="paper/generated/tab_paired.tex",
        macros="paper/generated/macros.tex",
    params:
        preset=lambda wc: config["preset"],
    log:
        "logs/paper/tables.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.tables --metrics {input.metrics} --claims {input.claims}"
        " --preset {params.preset} --outdir $(dirname {output.results}) > {log} 2>&1"


rule paper:
    input:
        tex="paper/ms.tex",
        bib="paper/refs.bib",
        generated=rules.tables.output,
        figures=PAPER_FIGURES,
        benchmarks="paper/generated/tab_benchmarks.tex",
    output:
        "paper/ms.pdf",
    log:
        "logs/paper/latexmk.log",
    conda:
        ENV
    shell:
        "python -m fewlabels.paper --tex {input.tex} --out {output} > {log} 2>&1"
